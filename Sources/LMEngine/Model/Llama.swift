import Foundation
import GGUF
import LMKernels

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
/// forward pass needs, allocated once.
public final class LlamaSession: @unchecked Sendable {
    public let model: LlamaModel
    public let maxTokens: Int
    /// Tokens evaluated so far (the next position).
    public private(set) var position = 0

    let keys: [UnsafeMutablePointer<UInt16>]
    let values: [UnsafeMutablePointer<UInt16>]
    let x, xn, q, k, v, att, attOut, gate, up, scores: UnsafeMutablePointer<Float>
    public let logits: UnsafeMutablePointer<Float>
    let matvec: MatVec

    public init(model: LlamaModel, maxTokens: Int, threads: Int = 2) {
        let c = model.config
        self.model = model
        let capacity = min(maxTokens, c.contextLength)
        self.maxTokens = capacity
        let kvDim = c.kvHeads * c.headDim
        keys = (0..<c.layers).map { _ in .allocate(capacity: capacity * kvDim) }
        values = (0..<c.layers).map { _ in .allocate(capacity: capacity * kvDim) }
        x = .allocate(capacity: c.dim)
        xn = .allocate(capacity: max(c.dim, c.hiddenDim))
        q = .allocate(capacity: c.dim)
        k = .allocate(capacity: kvDim)
        v = .allocate(capacity: kvDim)
        att = .allocate(capacity: c.dim)
        attOut = .allocate(capacity: c.dim)
        gate = .allocate(capacity: c.hiddenDim)
        up = .allocate(capacity: c.hiddenDim)
        scores = .allocate(capacity: capacity)
        logits = .allocate(capacity: c.vocabSize)
        matvec = MatVec(maxCols: max(c.dim, c.hiddenDim), threads: threads)
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
        for p in [x, xn, q, k, v, att, attOut, gate, up, scores, logits] { p.deallocate() }
    }

    /// Forgets everything after the first `n` tokens (their cache entries are overwritten later).
    public func truncate(to n: Int) { position = min(position, max(0, n)) }

    /// Evaluates `token` at the next position; the logits of the next token are in `logits`.
    public func forward(_ token: Int32) throws {
        let m = model, c = m.config
        guard position < maxTokens else { throw ModelError("the sequence is full (\(maxTokens) tokens)") }
        guard token >= 0, Int(token) < c.vocabSize else { throw ModelError("token \(token) is outside the vocabulary of \(c.vocabSize)") }
        let pos = position
        let dim = c.dim, hd = c.headDim, kvDim = c.kvHeads * hd, group = c.heads / c.kvHeads
        m.embedding.row(Int(token), into: x)
        let scale = 1 / Float(hd).squareRoot()
        for (l, layer) in m.layers.enumerated() {
            rmsNorm(x, layer.attnNorm, into: xn, dim)
            matvec.apply(layer.wq, xn, q)
            matvec.apply(layer.wk, xn, k)
            matvec.apply(layer.wv, xn, v)
            if let b = layer.bq { for i in 0..<dim { q[i] += b[i] } }
            if let b = layer.bk { for i in 0..<kvDim { k[i] += b[i] } }
            if let b = layer.bv { for i in 0..<kvDim { v[i] += b[i] } }
            rope(q, heads: c.heads, pos: pos)
            rope(k, heads: c.kvHeads, pos: pos)
            let kc = keys[l] + pos * kvDim, vc = values[l] + pos * kvDim
            for i in 0..<kvDim {
                kc[i] = lm_f32_to_f16(k[i])
                vc[i] = lm_f32_to_f16(v[i])
            }
            for h in 0..<c.heads {
                let kvh = h / group
                lm_attention(q + h * hd, keys[l] + kvh * hd, values[l] + kvh * hd, kvDim, Int32(pos + 1), Int32(hd),
                             scale, scores, att + h * hd)
            }
            matvec.apply(layer.wo, att, attOut)
            for i in 0..<dim { x[i] += attOut[i] }
            rmsNorm(x, layer.ffnNorm, into: xn, dim)
            matvec.apply(layer.gate, xn, gate)
            matvec.apply(layer.up, xn, up)
            for i in 0..<c.hiddenDim {
                let g = gate[i]
                gate[i] = g / (1 + expf(-g)) * up[i]
            }
            matvec.apply(layer.down, gate, attOut)
            for i in 0..<dim { x[i] += attOut[i] }
        }
        rmsNorm(x, m.outputNorm, into: xn, dim)
        matvec.apply(m.output, xn, logits)
        position += 1
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
