import CKernels
import Foundation
import GGUF

/// A llama-family transformer (llama; qwen2's QKV biases; qwen3; gemma2 and gemma3, see Gemma.swift) loaded from
/// a GGUF file, weights in place.
///
/// Per layer: RMSNorm → Q, K, V projections (+ biases) → rotary embeddings on adjacent pairs
/// (GGUF llama weights are permuted for it) → grouped-query attention over the F16 KV cache →
/// output projection and residual → RMSNorm → SwiGLU feed-forward and residual. Then the final
/// RMSNorm and the output head (tied to the token embedding when `output.weight` is absent).
/// Gemma adds post-attention/post-FFN norms before each residual (and Gemma 3 and Qwen3 per-head
/// q/k norms), and differs in the rope pairing, activation, embedding scale, sliding-window
/// layers and (Gemma 2) soft-capping of attention scores and logits (LlamaConfig).
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
        /// Per-head norms of q and k (Gemma 3, Qwen3), and Gemma's post-attention and post-FFN norms.
        struct Sandwich { let qNorm, kNorm, postAttention, postFFN: [Float]? }
        let sandwich: Sandwich?
    }

    let embedding: WeightMatrix
    let output: WeightMatrix
    let outputNorm: [Float]
    let layers: [Layer]
    /// Seconds spent repacking the weights at load, and the bytes repacked.
    public private(set) var repackSeconds: Double = 0
    public private(set) var repackedBytes: Int = 0

    /// Whether models repack their matrices at load: yes, unless PRS_REPACK=0 (the benchmark's
    /// before row, and a way round a layout problem).
    public static let repackByDefault = ProcessInfo.processInfo.environment["PRS_REPACK"] != "0"

    public convenience init(path: String) throws {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch let e as GGUFError { throw ModelError(e.description) }
        try self.init(file: file)
    }

    /// `repack`: the products' matrices repacked into the kernels' layout at load (the default,
    /// unless PRS_REPACK=0), or used in the file's layout; both give the same bits.
    public init(file: GGUFFile, repack: Bool = LlamaModel.repackByDefault) throws {
        self.file = file
        _ = try InstructionSet.requested()
        do {
            var c = try LlamaConfig(gguf: file.content)
            // Llama 3.x: rope scaling folded into per-pair factors that divide the angles.
            // Phi-3 (128k): short factors up to the original context, long ones past it.
            func factors(_ name: String) throws -> [Float]? {
                guard let t = file.tensor(name) else { return nil }
                guard t.elementCount == c.ropeDim / 2, t.dimensions.count == 1 else {
                    throw ModelError(
                        "tensor \(name) has shape \(t.dimensions), expected [\(c.ropeDim / 2)] "
                            + "(rope.dimension_count / 2)"
                    )
                }
                return file.floats(t)
            }
            c.ropeScaling.factors = try factors("rope_freqs.weight")
            if c.architecture == "phi3" {
                let short = try factors("rope_factors_short.weight")
                let long = try factors("rope_factors_long.weight")
                guard (short == nil) == (long == nil) else {
                    throw ModelError("rope_factors_short.weight and rope_factors_long.weight must come together")
                }
                if let short { c.ropeScaling.factors = short }
                c.ropeScaling.longFactors = long
            }
            config = c
            tokenizer = try Tokenizer(gguf: file.content)
        } catch let e as ModelError {
            throw ModelError("\(file.path): \(e)")
        } catch {
            throw ModelError("\(file.path): \(error)")
        }
        let c = config
        try Self.refuseUnknownTensors(file, c)
        let kvDim = c.kvHeads * c.headDim
        func vector(_ name: String, _ n: Int) throws -> [Float] {
            guard let t = file.tensor(name) else { throw ModelError("\(file.path): tensor \(name) is missing") }
            guard t.elementCount == n, t.dimensions.count == 1 else {
                throw ModelError("\(file.path): tensor \(name) has shape \(t.dimensions), expected [\(n)]")
            }
            return file.floats(t)
        }
        func optionalVector(_ name: String, _ n: Int) throws -> [Float]? {
            file.tensor(name) == nil ? nil : try vector(name, n)
        }
        // Every product's matrix repacked into the kernels' layout as it is read (lm_pack_rows).
        let started = DispatchTime.now().uptimeNanoseconds
        let threads = max(1, ProcessInfo.processInfo.activeProcessorCount)
        func matrix(_ name: String, rows: Int, cols: Int) throws -> WeightMatrix {
            let w = try WeightMatrix(file, name, rows: rows, cols: cols)
            return repack ? w.repacked(threads: threads) : w
        }
        do {
            embedding = try matrix("token_embd.weight", rows: c.vocabSize, cols: c.dim)
            output =
                file.tensor("output.weight") == nil
                ? embedding : try matrix("output.weight", rows: c.vocabSize, cols: c.dim)
            // Phi-3 fuses q, k and v into one tensor, and the gate and up projections into
            // `ffn_up` (gate rows first, as ggml's SwiGLU splits it); each part becomes a matrix.
            func parts(_ name: String, _ heights: [Int], cols: Int) throws -> [WeightMatrix] {
                let whole = try WeightMatrix(file, name, rows: heights.reduce(0, +), cols: cols)
                var start = 0
                return heights.map { h in
                    defer { start += h }
                    let part = whole.rows(start..<(start + h))
                    return repack ? part.repacked(threads: threads) : part
                }
            }
            layers = try (0..<c.layers).map { i in
                let p = "blk.\(i)."
                let qkv =
                    file.tensor(p + "attn_qkv.weight") != nil
                    ? try parts(p + "attn_qkv.weight", [c.qDim, kvDim, kvDim], cols: c.dim)
                    : [
                        try matrix(p + "attn_q.weight", rows: c.qDim, cols: c.dim),
                        try matrix(p + "attn_k.weight", rows: kvDim, cols: c.dim),
                        try matrix(p + "attn_v.weight", rows: kvDim, cols: c.dim),
                    ]
                let gateUp =
                    c.architecture == "phi3"
                    ? try parts(p + "ffn_up.weight", [c.hiddenDim, c.hiddenDim], cols: c.dim)
                    : [
                        try matrix(p + "ffn_gate.weight", rows: c.hiddenDim, cols: c.dim),
                        try matrix(p + "ffn_up.weight", rows: c.hiddenDim, cols: c.dim),
                    ]
                return Layer(
                    attnNorm: try vector(p + "attn_norm.weight", c.dim),
                    wq: qkv[0], wk: qkv[1], wv: qkv[2],
                    wo: try matrix(p + "attn_output.weight", rows: c.dim, cols: c.qDim),
                    bq: try optionalVector(p + "attn_q.bias", c.qDim),
                    bk: try optionalVector(p + "attn_k.bias", kvDim),
                    bv: try optionalVector(p + "attn_v.bias", kvDim),
                    ffnNorm: try vector(p + "ffn_norm.weight", c.dim),
                    gate: gateUp[0], up: gateUp[1],
                    down: try matrix(p + "ffn_down.weight", rows: c.dim, cols: c.hiddenDim),
                    sandwich: try Self.extraNorms(file, layer: i, c, vector))
            }
            outputNorm = try vector("output_norm.weight", c.dim)
        } catch let e as ModelError where !e.description.hasPrefix(file.path) {
            throw ModelError("\(file.path): \(e)")
        }
        repackSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        let all = [embedding, output] + layers.flatMap { [$0.wq, $0.wk, $0.wv, $0.wo, $0.gate, $0.up, $0.down] }
        repackedBytes =
            all.reduce(0) { $0 + ($1.packed?.bytes ?? 0) }
            - (output.packed != nil && file.tensor("output.weight") == nil ? output.packed!.bytes : 0)
    }
}

extension LlamaModel {
    /// Refuses a tensor the forward pass would not use (a norm, bias or projection of another
    /// architecture's kind, experts): running without it would be subtly wrong, so it is named.
    static func refuseUnknownTensors(_ file: GGUFFile, _ c: LlamaConfig) throws {
        var perLayer: Set<String> = [
            "attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
            "attn_q.bias", "attn_k.bias", "attn_v.bias", "ffn_norm.weight", "ffn_gate.weight",
            "ffn_up.weight", "ffn_down.weight",
        ]
        if c.postNorms { perLayer.formUnion(["post_attention_norm.weight", "post_ffw_norm.weight"]) }
        if c.qkNorms { perLayer.formUnion(["attn_q_norm.weight", "attn_k_norm.weight"]) }
        var global: Set<String> = ["token_embd.weight", "output.weight", "output_norm.weight", "rope_freqs.weight"]
        if c.architecture == "phi3" {
            perLayer.subtract(["attn_q.bias", "attn_k.bias", "attn_v.bias", "ffn_gate.weight"])
            perLayer.insert("attn_qkv.weight")
            global.formUnion(["rope_factors_short.weight", "rope_factors_long.weight"])
        }
        for t in file.content.tensors where !global.contains(t.name) {
            let parts = t.name.split(separator: ".", maxSplits: 2)
            if parts.count == 3, parts[0] == "blk", let l = Int(parts[1]), l >= 0, l < c.layers,
                perLayer.contains(String(parts[2]))
            {
                continue
            }
            throw ModelError(
                "tensor \(t.name) is in the file, and prs's \(c.architecture) forward pass does not use it; refusing "
                    + "the file rather than ignoring it"
            )
        }
    }
}
