import Foundation
import CKernels

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
    /// The logits of the tokens that asked for them, `vocabSize` apart, in slot order.
    let logits: UnsafeMutablePointer<Float>
    /// Each layer's matrices grouped by input, and the outputs they write, built once.
    let qkv, gateUp, wo, down: [[WeightMatrix]]
    let qkvOut, gateUpOut, projOut, logitsOut: [UnsafeMutablePointer<Float>]
    let output: [WeightMatrix]

    init(model: LlamaModel, capacity: Int, maxPositions: Int, threads: Int) {
        let c = model.config
        self.model = model
        self.capacity = max(1, capacity)
        self.maxPositions = maxPositions
        let b = self.capacity, kvDim = c.kvHeads * c.headDim
        x = .allocate(capacity: b * c.dim)
        xn = .allocate(capacity: b * c.dim)
        q = .allocate(capacity: b * c.dim)
        k = .allocate(capacity: b * kvDim)
        v = .allocate(capacity: b * kvDim)
        att = .allocate(capacity: b * c.dim)
        proj = .allocate(capacity: b * c.dim)
        gate = .allocate(capacity: b * c.hiddenDim)
        up = .allocate(capacity: b * c.hiddenDim)
        ropeCos = .allocate(capacity: b * c.ropeDim / 2)
        ropeSin = .allocate(capacity: b * c.ropeDim / 2)
        logits = .allocate(capacity: b * c.vocabSize)
        products = Products(maxCols: max(c.dim, c.hiddenDim), threads: threads, maxBatch: b)
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
        logitsOut = [logits]
    }

    deinit {
        for p in [x, xn, q, k, v, att, proj, gate, up, scores, ropeCos, ropeSin, logits] { p.deallocate() }
        loraScratch.deallocate()
    }

    /// Rank-sized scratch for adapters.
    let loraScratch = UnsafeMutablePointer<Float>.allocate(capacity: 4096)

    /// Adds each adapted slot's LoRA terms for `projections` (indices as AdapterStack's) of layer `l`,
    /// inputs `x` (`inDim` apart), outputs `outs` (each `outDims[i]` apart).
    func addAdapters(_ slots: [Slot], layer l: Int, _ projections: [Int], _ x: UnsafePointer<Float>, inDim: Int,
                     _ outs: [UnsafeMutablePointer<Float>], _ outDims: [Int]) {
        for (b, slot) in slots.enumerated() {
            guard let stack = slot.adapters else { continue }
            for (i, p) in projections.enumerated() where stack.has(layer: l, projection: p) {
                stack.apply(layer: l, projection: p, x: x + b * inDim, y: outs[i] + b * outDims[i], scratch: loraScratch)
            }
        }
    }

    /// Evaluates `slots` (at most `capacity`), their block tables in `tables`.
    func run(_ slots: [Slot], tables: [Int32], cache: KVCache) {
        precondition(slots.count <= capacity && !slots.isEmpty)
        let m = model, c = m.config
        let batch = slots.count
        let dim = c.dim, hd = c.headDim, kvDim = c.kvHeads * hd, hidden = c.hiddenDim, half = c.ropeDim / 2
        let bs = KVCache.blockSize
        for (b, slot) in slots.enumerated() {
            m.embedding.row(Int(slot.token), into: x + b * dim)
            angles(slot.position, into: ropeCos + b * half, ropeSin + b * half)
        }
        let scale = 1 / Float(hd).squareRoot()
        let adapted = slots.contains { $0.adapters != nil }
        tables.withUnsafeBufferPointer { tableBuffer in
            let attnSlots = slots.enumerated().map { b, slot in
                lm_attn_slot(q: q + b * dim, table: tableBuffer.baseAddress! + slot.tableOffset,
                             n_pos: Int32(slot.position + 1), out: att + b * dim)
            }
            attnSlots.withUnsafeBufferPointer { attnBuffer in
                for (l, layer) in m.layers.enumerated() {
                    for b in 0..<batch { rmsNorm(x + b * dim, layer.attnNorm, into: xn + b * dim, dim) }
                    products.apply(qkv[l], batch: batch, xn, qkvOut)
                    if adapted { addAdapters(slots, layer: l, [0, 1, 2], xn, inDim: dim, qkvOut, [dim, kvDim, kvDim]) }
                    for (b, slot) in slots.enumerated() {
                        let qb = q + b * dim, kb = k + b * kvDim, vb = v + b * kvDim
                        if let bias = layer.bq { for j in 0..<dim { qb[j] += bias[j] } }
                        if let bias = layer.bk { for j in 0..<kvDim { kb[j] += bias[j] } }
                        if let bias = layer.bv { for j in 0..<kvDim { vb[j] += bias[j] } }
                        rope(qb, heads: c.heads, ropeCos + b * half, ropeSin + b * half)
                        rope(kb, heads: c.kvHeads, ropeCos + b * half, ropeSin + b * half)
                        let block = Int(tableBuffer[slot.tableOffset + slot.position / bs])
                        let row = (block * bs + slot.position % bs) * kvDim
                        let kc = cache.keys[l] + row, vc = cache.values[l] + row
                        for j in 0..<kvDim {
                            kc[j] = lm_f32_to_f16(kb[j])
                            vc[j] = lm_f32_to_f16(vb[j])
                        }
                    }
                    var job = lm_attn_job(slots: attnBuffer.baseAddress!, count: Int32(batch), heads: Int32(c.heads),
                                          kv_heads: Int32(c.kvHeads), hd: Int32(hd), k: cache.keys[l], v: cache.values[l],
                                          stride: kvDim, block: Int32(bs), scale: scale, scores: scores, max_pos: Int32(scoreStride))
                    lm_pool_attention(products.pool, &job)
                    products.apply(wo[l], batch: batch, att, projOut)
                    if adapted { addAdapters(slots, layer: l, [3], att, inDim: dim, projOut, [dim]) }
                    for j in 0..<(batch * dim) { x[j] += proj[j] }
                    for b in 0..<batch { rmsNorm(x + b * dim, layer.ffnNorm, into: xn + b * dim, dim) }
                    products.apply(gateUp[l], batch: batch, xn, gateUpOut)
                    if adapted { addAdapters(slots, layer: l, [4, 5], xn, inDim: dim, gateUpOut, [hidden, hidden]) }
                    for j in 0..<(batch * hidden) {
                        let g = gate[j]
                        gate[j] = g / (1 + expf(-g)) * up[j]
                    }
                    products.apply(down[l], batch: batch, gate, projOut)
                    if adapted { addAdapters(slots, layer: l, [6], gate, inDim: hidden, projOut, [dim]) }
                    for j in 0..<(batch * dim) { x[j] += proj[j] }
                }
            }
        }
        var rows = 0
        for (b, slot) in slots.enumerated() where slot.wantsLogits {
            rmsNorm(x + b * dim, m.outputNorm, into: xn + rows * dim, dim)
            rows += 1
        }
        if rows > 0 { products.apply(output, batch: rows, xn, logitsOut) }
    }

    /// y = x / sqrt(mean(x²) + eps) · w, the sum of squares in double as ggml does.
    func rmsNorm(_ x: UnsafeMutablePointer<Float>, _ w: [Float], into y: UnsafeMutablePointer<Float>, _ n: Int) {
        var ss: Double = 0
        for i in 0..<n { ss += Double(x[i] * x[i]) }
        let scale = 1 / (Float(ss / Double(n)) + model.config.normEps).squareRoot()
        for i in 0..<n { y[i] = x[i] * scale * w[i] }
    }

    /// The rotary angles of a position, built by repeated multiplication in F32 as ggml's rope cache does.
    func angles(_ pos: Int, into cosines: UnsafeMutablePointer<Float>, _ sines: UnsafeMutablePointer<Float>) {
        let c = model.config
        let thetaScale = powf(c.ropeBase, -2 / Float(c.ropeDim))
        var theta = Float(pos)
        for i in 0..<(c.ropeDim / 2) {
            cosines[i] = cosf(theta)
            sines[i] = sinf(theta)
            theta *= thetaScale
        }
    }

    /// Rotary embedding on adjacent pairs (ggml's normal mode).
    func rope(_ v: UnsafeMutablePointer<Float>, heads: Int, _ cosines: UnsafeMutablePointer<Float>, _ sines: UnsafeMutablePointer<Float>) {
        let c = model.config
        for h in 0..<heads {
            let p = v + h * c.headDim
            for i in 0..<(c.ropeDim / 2) {
                let x0 = p[2 * i], x1 = p[2 * i + 1]
                p[2 * i] = x0 * cosines[i] - x1 * sines[i]
                p[2 * i + 1] = x0 * sines[i] + x1 * cosines[i]
            }
        }
    }
}
