import CKernels
import Foundation

/// The forward pass for a batch of tokens from any number of sequences: each token carries its
/// position and its sequence's block table, writes its key and value into the paged cache and
/// attends to its sequence's positions up to its own. Tokens of one sequence in one batch must
/// come in position order (a prompt chunk); tokens of different sequences are independent.
///
/// Every number a token produces is computed the same way whatever else is in the batch, and
/// whatever the thread count: products accumulate each element in a fixed order, activations
/// are quantized per token, attention is per token and head. So a sequence's tokens do not
/// depend on what it is batched with.
final class Evaluator: @unchecked Sendable {
    let model: LlamaModel
    /// Tokens per batch at most.
    let capacity: Int
    /// Positions a sequence may have at most.
    let maxPositions: Int
    let products: Products
    /// Attention scratch per thread: every query head of a group over every position.
    let scoreStride: Int

    struct Slot {
        var token: Int32
        var position: Int
        /// Where the sequence's block table starts in the batch's table buffer.
        var tableOffset: Int
        /// Whether this token's logits are wanted (they land in `logits` in slot order).
        var wantsLogits: Bool
        /// The adapters this token's sequence runs with (nil: the base model).
        var adapters: AdapterStack? = nil
    }

    let x, xn, q, k, v, att, proj, gate, up, scores, ropeCos, ropeSin: UnsafeMutablePointer<Float>
    /// The global layers' rope scaling for sequences of `maxPositions` (Phi-3: long or short factors).
    let ropeScaling: RopeScaling
    /// The local layers' rotary angles (their own rope base); nil when every layer is global.
    let localCos, localSin: UnsafeMutablePointer<Float>?
    /// The logits of the tokens that asked for them, `vocabSize` apart, in slot order. Grown to
    /// the most rows a batch has asked for (a 262k vocabulary makes a row 1 MB).
    private(set) var logits: UnsafeMutablePointer<Float>
    private var logitRows: Int
    /// Each layer's matrices grouped by input, and the outputs they write, built once.
    let qkv, gateUp, wo, down: [[WeightMatrix]]
    let qkvOut, gateUpOut, projOut: [UnsafeMutablePointer<Float>]
    let output: [WeightMatrix]

    init(model: LlamaModel, capacity: Int, maxPositions: Int, threads: Int) {
        let c = model.config
        self.model = model
        self.capacity = max(1, capacity)
        self.maxPositions = maxPositions
        ropeScaling = c.ropeScaling.forContext(maxPositions)
        let b = self.capacity
        let kvDim = c.kvHeads * c.headDim
        x = .allocate(capacity: b * c.dim)
        xn = .allocate(capacity: b * c.dim)
        q = .allocate(capacity: b * c.qDim)
        k = .allocate(capacity: b * kvDim)
        v = .allocate(capacity: b * kvDim)
        att = .allocate(capacity: b * c.qDim)
        proj = .allocate(capacity: b * c.dim)
        gate = .allocate(capacity: b * c.hiddenDim)
        up = .allocate(capacity: b * c.hiddenDim)
        ropeCos = .allocate(capacity: b * c.ropeDim / 2)
        ropeSin = .allocate(capacity: b * c.ropeDim / 2)
        let hasLocal = (0..<c.layers).contains { c.isLocal($0) }
        localCos = hasLocal ? .allocate(capacity: b * c.ropeDim / 2) : nil
        localSin = hasLocal ? .allocate(capacity: b * c.ropeDim / 2) : nil
        logitRows = min(self.capacity, 8)
        logits = .allocate(capacity: logitRows * c.vocabSize)
        products = Products(maxCols: max(c.dim, c.hiddenDim, c.qDim), threads: threads, maxBatch: b)
        scoreStride = (c.heads / c.kvHeads) * (maxPositions + 1)
        scores = .allocate(capacity: products.threads * scoreStride)
        qkv = model.layers.map { [$0.wq, $0.wk, $0.wv] }
        gateUp = model.layers.map { [$0.gate, $0.up] }
        wo = model.layers.map { [$0.wo] }
        down = model.layers.map { [$0.down] }
        output = [model.output]
        qkvOut = [q, k, v]
        gateUpOut = [gate, up]
        projOut = [proj]
    }

    deinit {
        for p in [x, xn, q, k, v, att, proj, gate, up, scores, ropeCos, ropeSin, logits] { p.deallocate() }
        localCos?.deallocate()
        localSin?.deallocate()
        loraScratch.deallocate()
    }

    /// Rank-sized scratch for adapters.
    let loraScratch = UnsafeMutablePointer<Float>.allocate(capacity: 4096)

    /// Adds each adapted slot's LoRA terms for `projections` (indices as AdapterStack's) of layer `l`,
    /// inputs `x` (`inDim` apart), outputs `outs` (each `outDims[i]` apart).
    func addAdapters(
        _ slots: [Slot], layer l: Int, _ projections: [Int], _ x: UnsafePointer<Float>, inDim: Int,
        _ outs: [UnsafeMutablePointer<Float>], _ outDims: [Int]
    ) {
        for (b, slot) in slots.enumerated() {
            guard let stack = slot.adapters else { continue }
            for (i, p) in projections.enumerated() where stack.has(layer: l, projection: p) {
                stack.apply(
                    layer: l, projection: p, x: x + b * inDim, y: outs[i] + b * outDims[i], scratch: loraScratch)
            }
        }
    }

    /// Evaluates `slots` (at most `capacity`), their block tables in `tables`.
    func run(_ slots: [Slot], tables: [Int32], cache: KVCache) {
        precondition(slots.count <= capacity && !slots.isEmpty)
        let m = model
        let c = m.config
        let batch = slots.count
        let dim = c.dim
        let hd = c.headDim
        let qDim = c.qDim
        let kvDim = c.kvHeads * hd
        let hidden = c.hiddenDim
        let half = c.ropeDim / 2
        let bs = KVCache.blockSize
        for (b, slot) in slots.enumerated() {
            m.embedding.row(Int(slot.token), into: x + b * dim)
            if let s = c.embeddingScale { for j in 0..<dim { x[b * dim + j] *= s } }
            angles(slot.position, base: c.ropeBase, scaling: ropeScaling, into: ropeCos + b * half, ropeSin + b * half)
            // Local (sliding-window) layers turn unscaled, as llama.cpp's freq_scale_swa = 1.
            if let localCos, let localSin {
                angles(
                    slot.position, base: c.localRopeBase, scaling: nil, into: localCos + b * half, localSin + b * half)
            }
        }
        let preScale = c.scalesQuery
        let scale = preScale ? 1 : c.attentionScale
        let adapted = slots.contains { $0.adapters != nil }
        tables.withUnsafeBufferPointer { tableBuffer in
            func attnSlots(window: Int?) -> [lm_attn_slot] {
                slots.enumerated().map { b, slot in
                    lm_attn_slot(
                        q: q + b * qDim, table: tableBuffer.baseAddress! + slot.tableOffset,
                        n_pos: Int32(slot.position + 1), out: att + b * qDim,
                        first: Int32(window.map { max(0, slot.position + 1 - $0) } ?? 0))
                }
            }
            let globalSlots = attnSlots(window: nil)
            let localSlots = c.slidingWindow.map { attnSlots(window: $0) } ?? globalSlots
            // The last layer's output, not yet added into the residual stream: the next norm's
            // prelude adds it.
            var pending: UnsafePointer<Float>? = nil
            for (l, layer) in m.layers.enumerated() {
                let local = c.isLocal(l)
                let cosines = local ? localCos! : ropeCos
                let sines = local ? localSin! : ropeSin
                applyNormed(qkv[l], batch: batch, add: pending, layer.attnNorm, qkvOut)
                if adapted { addAdapters(slots, layer: l, [0, 1, 2], xn, inDim: dim, qkvOut, [qDim, kvDim, kvDim]) }
                for (b, slot) in slots.enumerated() {
                    let qb = q + b * qDim
                    let kb = k + b * kvDim
                    let vb = v + b * kvDim
                    if let bias = layer.bq { for j in 0..<qDim { qb[j] += bias[j] } }
                    if let bias = layer.bk { for j in 0..<kvDim { kb[j] += bias[j] } }
                    if let bias = layer.bv { for j in 0..<kvDim { vb[j] += bias[j] } }
                    if let w = layer.sandwich?.qNorm {
                        for h in 0..<c.heads { rmsNorm(qb + h * hd, w, into: qb + h * hd, hd) }
                    }
                    if let w = layer.sandwich?.kNorm {
                        for h in 0..<c.kvHeads { rmsNorm(kb + h * hd, w, into: kb + h * hd, hd) }
                    }
                    rope(qb, heads: c.heads, cosines + b * half, sines + b * half)
                    rope(kb, heads: c.kvHeads, cosines + b * half, sines + b * half)
                    if preScale { for j in 0..<qDim { qb[j] *= c.attentionScale } }
                    let block = Int(tableBuffer[slot.tableOffset + slot.position / bs])
                    let row = (block * bs + slot.position % bs) * kvDim
                    let kc = cache.keys[l] + row
                    let vc = cache.values[l] + row
                    for j in 0..<kvDim {
                        kc[j] = lm_f32_to_f16(kb[j])
                        vc[j] = lm_f32_to_f16(vb[j])
                    }
                }
                (local ? localSlots : globalSlots).withUnsafeBufferPointer { attnBuffer in
                    var job = lm_attn_job(
                        slots: attnBuffer.baseAddress!, count: Int32(batch), heads: Int32(c.heads),
                        kv_heads: Int32(c.kvHeads), hd: Int32(hd), k: cache.keys[l], v: cache.values[l],
                        stride: kvDim, block: Int32(bs), scale: scale, softcap: c.attentionSoftcap,
                        scores: scores, max_pos: Int32(scoreStride))
                    lm_pool_attention(products.pool, &job)
                }
                products.apply(wo[l], batch: batch, att, projOut)
                if adapted { addAdapters(slots, layer: l, [3], att, inDim: qDim, projOut, [dim]) }
                if let w = layer.sandwich?.postAttention {
                    for b in 0..<batch { rmsNorm(proj + b * dim, w, into: proj + b * dim, dim) }
                }
                applyNormed(gateUp[l], batch: batch, add: proj, layer.ffnNorm, gateUpOut)
                if adapted { addAdapters(slots, layer: l, [4, 5], xn, inDim: dim, gateUpOut, [hidden, hidden]) }
                let activation: Products.Prelude =
                    switch c.activation {
                    case .silu: .silu(up: up)
                    case .geluTanh: .geglu(up: up)
                    }
                products.apply(down[l], batch: batch, gate, projOut, prelude: activation)
                if adapted { addAdapters(slots, layer: l, [6], gate, inDim: hidden, projOut, [dim]) }
                if let w = layer.sandwich?.postFFN {
                    for b in 0..<batch { rmsNorm(proj + b * dim, w, into: proj + b * dim, dim) }
                }
                pending = UnsafePointer(proj)
            }
            if let pending { for j in 0..<(batch * dim) { x[j] += pending[j] } }
        }
        let rows = slots.count { $0.wantsLogits }
        guard rows > 0 else { return }
        if rows > logitRows {
            logits.deallocate()
            logitRows = rows
            logits = .allocate(capacity: rows * c.vocabSize)
        }
        var row = 0
        for (b, slot) in slots.enumerated() where slot.wantsLogits {
            rmsNorm(x + b * dim, m.outputNorm, into: xn + row * dim, dim)
            row += 1
        }
        products.apply(output, batch: rows, xn, [logits])
        if c.finalLogitSoftcap > 0 {
            // Gemma 2: cap · tanh(logit / cap), as llama.cpp scales, takes tanh and scales back.
            let cap = c.finalLogitSoftcap
            let inv = 1 / cap
            for j in 0..<(rows * c.vocabSize) { logits[j] = cap * tanhf(logits[j] * inv) }
        }
    }

    /// y = x / sqrt(mean(x²) + eps) · w, the sum of squares in double as ggml does.
    func rmsNorm(_ x: UnsafeMutablePointer<Float>, _ w: [Float], into y: UnsafeMutablePointer<Float>, _ n: Int) {
        lm_rms_norm(x, w, model.config.normEps, y, Int32(n))
    }

    /// `x += add` (when given), `xn = rms_norm(x) · weights` and the products of xn, the first
    /// two in the products' pool job.
    func applyNormed(
        _ ws: [WeightMatrix], batch: Int, add: UnsafePointer<Float>?, _ weights: [Float],
        _ outs: [UnsafeMutablePointer<Float>]
    ) {
        weights.withUnsafeBufferPointer { w in
            products.apply(
                ws, batch: batch, xn, outs,
                prelude: .rmsNorm(residual: x, add: add, weights: w.baseAddress!, eps: model.config.normEps))
        }
    }

    /// The rotary angles of a position, built by repeated multiplication in F32 as ggml's rope cache
    /// does, then scaled (`RopeScaling`: rope_freqs factors, linear, YaRN) unless that is the identity.
    func angles(
        _ pos: Int, base: Float, scaling: RopeScaling?, into cosines: UnsafeMutablePointer<Float>,
        _ sines: UnsafeMutablePointer<Float>
    ) {
        let c = model.config
        let thetaScale = powf(base, -2 / Float(c.ropeDim))
        var theta = Float(pos)
        if let scaling, !scaling.isIdentity {
            let corr = scaling.correctionDims(ropeDim: c.ropeDim, base: base)
            for i in 0..<(c.ropeDim / 2) {
                (cosines[i], sines[i]) = scaling.rotation(theta, pair: i, corr: corr)
                theta *= thetaScale
            }
            return
        }
        for i in 0..<(c.ropeDim / 2) {
            cosines[i] = cosf(theta)
            sines[i] = sinf(theta)
            theta *= thetaScale
        }
    }

    /// Rotary embedding: on adjacent pairs (ggml's normal mode) or on the two halves of the
    /// rotated dimensions (NEOX mode).
    func rope(
        _ v: UnsafeMutablePointer<Float>, heads: Int, _ cosines: UnsafeMutablePointer<Float>,
        _ sines: UnsafeMutablePointer<Float>
    ) {
        let c = model.config
        let half = c.ropeDim / 2
        let (stride, offset) = c.ropePairs == .adjacent ? (2, 1) : (1, half)
        for h in 0..<heads {
            let p = v + h * c.headDim
            for i in 0..<half {
                let a = i * stride
                let b = a + offset
                let x0 = p[a]
                let x1 = p[b]
                p[a] = x0 * cosines[i] - x1 * sines[i]
                p[b] = x0 * sines[i] + x1 * cosines[i]
            }
        }
    }
}
