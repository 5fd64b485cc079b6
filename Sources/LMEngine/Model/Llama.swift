import Foundation
import GGUF
import CKernels

/// A llama-family transformer (llama; qwen2's QKV biases) loaded from a GGUF file, weights in place.
///
/// Per layer: RMSNorm → Q, K, V projections (+ biases) → rotary embeddings on adjacent pairs
/// (GGUF llama weights are permuted for it) → grouped-query attention over the F16 KV cache →
/// output projection and residual → RMSNorm → SwiGLU feed-forward and residual. Then the final
/// RMSNorm and the output head (tied to the token embedding when `output.weight` is absent).
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let tokenizer: Tokenizer
    public let file: GGUFFile

    struct Layer {
        let attnNorm: [Float]
        let wq, wk, wv, wo: WeightMatrix
        let bq, bk, bv: [Float]?
        let ffnNorm: [Float]
        let gate, up, down: WeightMatrix
    }

    let embedding: WeightMatrix
    let output: WeightMatrix
    let outputNorm: [Float]
    let layers: [Layer]

    public convenience init(path: String) throws {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch let e as GGUFError { throw ModelError(e.description) }
        try self.init(file: file)
    }

    public init(file: GGUFFile) throws {
        self.file = file
        do {
            config = try LlamaConfig(gguf: file.content)
            tokenizer = try Tokenizer(gguf: file.content)
        } catch let e as ModelError {
            throw ModelError("\(file.path): \(e)")
        } catch {
            throw ModelError("\(file.path): \(error)")
        }
        let c = config
        let kvDim = c.kvHeads * c.headDim
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            guard let t = file.tensor(name) else { throw ModelError("\(file.path): tensor \(name) is missing") }
            guard t.elementCount == n, t.dimensions.count == 1 else { throw ModelError("\(file.path): tensor \(name) has shape \(t.dimensions), expected [\(n)]") }
            return file.floats(t)
        }
        func optionalVector(_ name: String, _ n: Int) throws -> [Float]? {
            file.tensor(name) == nil ? nil : try vector(name, n)
        }
        do {
            embedding = try WeightMatrix(file, "token_embd.weight", rows: c.vocabSize, cols: c.dim)
            output = file.tensor("output.weight") == nil ? embedding : try WeightMatrix(file, "output.weight", rows: c.vocabSize, cols: c.dim)
            layers = try (0..<c.layers).map { i in
                let p = "blk.\(i)."
                return Layer(
                    attnNorm: try vector(p + "attn_norm.weight", c.dim),
                    wq: try WeightMatrix(file, p + "attn_q.weight", rows: c.dim, cols: c.dim),
                    wk: try WeightMatrix(file, p + "attn_k.weight", rows: kvDim, cols: c.dim),
                    wv: try WeightMatrix(file, p + "attn_v.weight", rows: kvDim, cols: c.dim),
                    wo: try WeightMatrix(file, p + "attn_output.weight", rows: c.dim, cols: c.dim),
                    bq: try optionalVector(p + "attn_q.bias", c.dim),
                    bk: try optionalVector(p + "attn_k.bias", kvDim),
                    bv: try optionalVector(p + "attn_v.bias", kvDim),
                    ffnNorm: try vector(p + "ffn_norm.weight", c.dim),
                    gate: try WeightMatrix(file, p + "ffn_gate.weight", rows: c.hiddenDim, cols: c.dim),
                    up: try WeightMatrix(file, p + "ffn_up.weight", rows: c.hiddenDim, cols: c.dim),
                    down: try WeightMatrix(file, p + "ffn_down.weight", rows: c.dim, cols: c.hiddenDim))
            }
            outputNorm = try vector("output_norm.weight", c.dim)
        } catch let e as ModelError where !e.description.hasPrefix(file.path) {
            throw ModelError("\(file.path): \(e)")
        }
    }
}

/// One sequence's state: its KV cache (F16, as llama.cpp keeps it) and every buffer the
/// forward pass needs, allocated once. Tokens go through the layers in chunks of up to
/// `chunk`, so each weight row is read once per chunk; a single token is a chunk of one.
public final class LlamaSession: @unchecked Sendable {
    public let model: LlamaModel
    public let maxTokens: Int
    /// Tokens evaluated so far (the next position).
    public private(set) var position = 0
    /// Tokens evaluated together at most.
    public let chunk: Int

    let keys: [UnsafeMutablePointer<UInt16>]
    let values: [UnsafeMutablePointer<UInt16>]
    /// Per token of a chunk: residual stream, normed input, Q, K, V, attention output, projections.
    let x, xn, q, k, v, att, proj, gate, up, scores: UnsafeMutablePointer<Float>
    /// The logits after the last token evaluated.
    public let logits: UnsafeMutablePointer<Float>
    /// After `forward(lanes:)`: the logits of each lane, `vocabSize` apart.
    public let laneLogits: UnsafeMutablePointer<Float>
    let matvec: MatVec

    public init(model: LlamaModel, maxTokens: Int, threads: Int = 2, chunk: Int = 32) {
        let c = model.config
        self.model = model
        let capacity = min(maxTokens, c.contextLength)
        self.maxTokens = capacity
        self.chunk = max(1, chunk)
        let b = self.chunk
        let kvDim = c.kvHeads * c.headDim
        keys = (0..<c.layers).map { _ in .allocate(capacity: capacity * kvDim) }
        values = (0..<c.layers).map { _ in .allocate(capacity: capacity * kvDim) }
        x = .allocate(capacity: b * c.dim)
        xn = .allocate(capacity: b * c.dim)
        q = .allocate(capacity: b * c.dim)
        k = .allocate(capacity: b * kvDim)
        v = .allocate(capacity: b * kvDim)
        att = .allocate(capacity: b * c.dim)
        proj = .allocate(capacity: b * c.dim)
        gate = .allocate(capacity: b * c.hiddenDim)
        up = .allocate(capacity: b * c.hiddenDim)
        scores = .allocate(capacity: capacity)
        logits = .allocate(capacity: c.vocabSize)
        laneLogits = .allocate(capacity: b * c.vocabSize)
        matvec = MatVec(maxCols: max(c.dim, c.hiddenDim), threads: threads, maxBatch: b)
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
        for p in [x, xn, q, k, v, att, proj, gate, up, scores, logits, laneLogits] { p.deallocate() }
    }

    /// Forgets everything after the first `n` tokens (their cache entries are overwritten later).
    public func truncate(to n: Int) { position = min(position, max(0, n)) }

    /// Evaluates `token` at the next position; the logits of the next token are in `logits`.
    public func forward(_ token: Int32) throws { try forward([token]) }

    /// Evaluates `tokens` at the next positions; `logits` then holds the logits after the last one.
    public func forward(_ tokens: [Int32]) throws {
        let c = model.config
        guard position + tokens.count <= maxTokens else {
            throw ModelError("the sequence is full (\(maxTokens) tokens; \(position) used, \(tokens.count) more asked)")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw ModelError("token \(bad) is outside the vocabulary of \(c.vocabSize)")
        }
        var i = 0
        while i < tokens.count {
            let n = min(chunk, tokens.count - i)
            let slots = (0..<n).map { j in
                let p = position + j
                return Slot(token: tokens[i + j], position: p, row: p, shared: p + 1, ownStart: 0, ownCount: 0)
            }
            run(slots, allLogits: false)
            position += n
            i += n
        }
    }

    /// Where one token of a batch sits: its position, the cache row its key and value go to,
    /// and the rows it attends to: rows `0..<shared`, then `ownStart..<ownStart+ownCount`.
    struct Slot {
        var token: Int32
        var position: Int
        var row: Int
        var shared: Int
        var ownStart: Int
        var ownCount: Int
    }

    /// The layout of `n` continuations of one prompt decoded together: the prompt's rows are
    /// shared, and lane `i` keeps its own tokens in rows `promptLength + i * laneLength …`.
    public struct Lanes: Sendable, Hashable {
        public var promptLength: Int
        public var laneLength: Int
        public init(promptLength: Int, laneLength: Int) {
            self.promptLength = promptLength
            self.laneLength = laneLength
        }
    }

    /// How many lanes of `laneLength` tokens fit after a prompt of `promptLength`.
    public func laneCapacity(promptLength: Int, laneLength: Int) -> Int {
        min(chunk, max(0, (maxTokens - promptLength) / max(1, laneLength)))
    }

    /// Evaluates one token for each of several lanes at step `step` (the token's position is
    /// `promptLength + step`); lane `lanes[j]`'s logits land at `laneLogits + j * vocabSize`.
    /// Each lane's arithmetic is exactly that of evaluating it alone.
    public func forward(lanes: [Int], tokens: [Int32], step: Int, layout: Lanes) throws {
        let c = model.config
        precondition(lanes.count == tokens.count && lanes.count <= chunk && step < layout.laneLength)
        guard layout.promptLength + (lanes.max()! + 1) * layout.laneLength <= maxTokens else {
            throw ModelError("the lanes do not fit in the context of \(maxTokens) tokens")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw ModelError("token \(bad) is outside the vocabulary of \(c.vocabSize)")
        }
        let slots = zip(lanes, tokens).map { lane, t in
            let own = layout.promptLength + lane * layout.laneLength
            return Slot(token: t, position: layout.promptLength + step, row: own + step,
                        shared: layout.promptLength, ownStart: own, ownCount: step + 1)
        }
        run(slots, allLogits: true)
    }

    func run(_ slots: [Slot], allLogits: Bool) {
        let m = model, c = m.config
        let batch = slots.count
        let dim = c.dim, hd = c.headDim, kvDim = c.kvHeads * hd, group = c.heads / c.kvHeads, hidden = c.hiddenDim
        for (b, slot) in slots.enumerated() { m.embedding.row(Int(slot.token), into: x + b * dim) }
        let scale = 1 / Float(hd).squareRoot()
        for (l, layer) in m.layers.enumerated() {
            for b in 0..<batch { rmsNorm(x + b * dim, layer.attnNorm, into: xn + b * dim, dim) }
            matvec.apply(layer.wq, batch: batch, xn, q)
            matvec.apply(layer.wk, batch: batch, xn, k)
            matvec.apply(layer.wv, batch: batch, xn, v)
            for b in 0..<batch {
                let qb = q + b * dim, kb = k + b * kvDim, vb = v + b * kvDim
                if let bias = layer.bq { for j in 0..<dim { qb[j] += bias[j] } }
                if let bias = layer.bk { for j in 0..<kvDim { kb[j] += bias[j] } }
                if let bias = layer.bv { for j in 0..<kvDim { vb[j] += bias[j] } }
                rope(qb, heads: c.heads, pos: slots[b].position)
                rope(kb, heads: c.kvHeads, pos: slots[b].position)
                let kc = keys[l] + slots[b].row * kvDim, vc = values[l] + slots[b].row * kvDim
                for j in 0..<kvDim {
                    kc[j] = lm_f32_to_f16(kb[j])
                    vc[j] = lm_f32_to_f16(vb[j])
                }
            }
            for (b, slot) in slots.enumerated() {
                for h in 0..<c.heads {
                    let kvh = h / group
                    lm_attention2(q + b * dim + h * hd, keys[l] + kvh * hd, values[l] + kvh * hd, kvDim,
                                  0, Int32(slot.shared), Int32(slot.ownStart), Int32(slot.ownCount),
                                  Int32(hd), scale, scores, att + b * dim + h * hd)
                }
            }
            matvec.apply(layer.wo, batch: batch, att, proj)
            for j in 0..<(batch * dim) { x[j] += proj[j] }
            for b in 0..<batch { rmsNorm(x + b * dim, layer.ffnNorm, into: xn + b * dim, dim) }
            matvec.apply(layer.gate, batch: batch, xn, gate)
            matvec.apply(layer.up, batch: batch, xn, up)
            for j in 0..<(batch * hidden) {
                let g = gate[j]
                gate[j] = g / (1 + expf(-g)) * up[j]
            }
            matvec.apply(layer.down, batch: batch, gate, proj)
            for j in 0..<(batch * dim) { x[j] += proj[j] }
        }
        if allLogits {
            for b in 0..<batch { rmsNorm(x + b * dim, m.outputNorm, into: xn + b * dim, dim) }
            matvec.apply(m.output, batch: batch, xn, laneLogits)
        } else {
            // Only the last token's logits are needed.
            rmsNorm(x + (batch - 1) * dim, m.outputNorm, into: xn, dim)
            matvec.apply(m.output, xn, logits)
        }
    }

    /// y = x / sqrt(mean(x²) + eps) · w, the sum of squares in double as ggml does.
    func rmsNorm(_ x: UnsafeMutablePointer<Float>, _ w: [Float], into y: UnsafeMutablePointer<Float>, _ n: Int) {
        var ss: Double = 0
        for i in 0..<n { ss += Double(x[i] * x[i]) }
        let scale = 1 / (Float(ss / Double(n)) + model.config.normEps).squareRoot()
        for i in 0..<n { y[i] = x[i] * scale * w[i] }
    }

    /// Rotary embedding on adjacent pairs (ggml's normal mode), angles built by repeated
    /// multiplication in F32 as ggml's rope cache does.
    func rope(_ v: UnsafeMutablePointer<Float>, heads: Int, pos: Int) {
        let c = model.config
        let thetaScale = powf(c.ropeBase, -2 / Float(c.ropeDim))
        var cosines = [Float](repeating: 0, count: c.ropeDim / 2), sines = cosines
        var theta = Float(pos)
        for i in 0..<(c.ropeDim / 2) {
            cosines[i] = cosf(theta)
            sines[i] = sinf(theta)
            theta *= thetaScale
        }
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
