import Foundation
import GGUF
import LMEngine
import LMTraining

/// A tiny random llama written by the project's GGUF writer (F32 tensors, a byte-free toy
/// vocabulary), for the finite-difference checks.
enum TinyModel {
    static let shape = ModelShape(
        layers: 2, dim: 16, hiddenDim: 24, heads: 4, kvHeads: 2, ropeBase: 10000, normEps: 1e-5, vocabSize: 37)

    static func write(_ path: String, seed: UInt64 = 7, tied: Bool = true, biases: Bool = false) throws {
        let s = shape
        var rng = SplitMix64(seed: seed)
        var w = GGUFWriter()
        let tokens = (0..<s.vocabSize).map { "t\($0)" }
        w.metadata = [
            ("general.architecture", .string(biases ? "qwen2" : "llama")),
            ("\(biases ? "qwen2" : "llama").block_count", .uint32(UInt32(s.layers))),
            ("\(biases ? "qwen2" : "llama").embedding_length", .uint32(UInt32(s.dim))),
            ("\(biases ? "qwen2" : "llama").feed_forward_length", .uint32(UInt32(s.hiddenDim))),
            ("\(biases ? "qwen2" : "llama").attention.head_count", .uint32(UInt32(s.heads))),
            ("\(biases ? "qwen2" : "llama").attention.head_count_kv", .uint32(UInt32(s.kvHeads))),
            ("\(biases ? "qwen2" : "llama").context_length", .uint32(64)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(.strings(tokens))),
            ("tokenizer.ggml.merges", .array(.strings([]))),
        ]
        let shapes = TrainingModel<Float>.baseShapes(s, tied: tied, biases: biases ? [.q, .k, .v] : [])
        for e in shapes {
            let isNorm = e.name.hasSuffix("norm.weight")
            var values: [Float] = []
            for _ in 0..<(e.rows * e.cols) {
                let u = rng.uniform()
                values.append(isNorm ? Float(0.8 + 0.4 * u) : Float((u * 2 - 1) * 0.5))
            }
            let dims = e.rows == 1 ? [e.cols] : [e.cols, e.rows]
            w.tensors.append(
                .init(name: e.name, dimensions: dims, type: .f32, data: try Quantize.encode(values, as: .f32)))
        }
        try w.write(to: path)
    }

    /// A tiny random Gemma 3: six layers (five local with a window of 3, the sixth global),
    /// heads 8 wide on a width of 16 (so q's width, 32, is not the model's), GeGLU, per-head q/k
    /// norms, post-attention and post-FFN norms, the embedding scaled by √16, rope bases 10⁶
    /// (global) and 10⁴ (local), pairs in halves.
    static let gemmaShape: ModelShape = {
        var s = ModelShape(
            layers: 6, dim: 16, hiddenDim: 24, heads: 4, kvHeads: 2, headDim: 8, ropeBase: 1_000_000, normEps: 1e-6,
            vocabSize: 37)
        s.sandwichNorms = true
        return s
    }()

    static func writeGemma(_ path: String, seed: UInt64 = 13) throws {
        let s = gemmaShape
        var rng = SplitMix64(seed: seed)
        var w = GGUFWriter()
        w.metadata = [
            ("general.architecture", .string("gemma3")),
            ("gemma3.block_count", .uint32(UInt32(s.layers))),
            ("gemma3.embedding_length", .uint32(UInt32(s.dim))),
            ("gemma3.feed_forward_length", .uint32(UInt32(s.hiddenDim))),
            ("gemma3.attention.head_count", .uint32(UInt32(s.heads))),
            ("gemma3.attention.head_count_kv", .uint32(UInt32(s.kvHeads))),
            ("gemma3.attention.key_length", .uint32(UInt32(s.headDim))),
            ("gemma3.attention.value_length", .uint32(UInt32(s.headDim))),
            ("gemma3.attention.sliding_window", .uint32(3)),
            ("gemma3.attention.layer_norm_rms_epsilon", .float32(1e-6)),
            ("gemma3.rope.freq_base", .float32(1_000_000)),
            ("gemma3.context_length", .uint32(64)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(.strings((0..<s.vocabSize).map { "t\($0)" }))),
            ("tokenizer.ggml.merges", .array(.strings([]))),
        ]
        for e in TrainingModel<Float>.baseShapes(s, tied: true, biases: []) {
            let isNorm = e.name.hasSuffix("norm.weight")
            let values: [Float] = (0..<(e.rows * e.cols)).map { _ in
                let u = rng.uniform()
                return isNorm ? Float(0.8 + 0.4 * u) : Float((u * 2 - 1) * (e.name == "token_embd.weight" ? 0.15 : 0.5))
            }
            let dims = e.rows == 1 ? [e.cols] : [e.cols, e.rows]
            w.tensors.append(
                .init(name: e.name, dimensions: dims, type: .f32, data: try Quantize.encode(values, as: .f32)))
        }
        try w.write(to: path)
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("prs-\(name)-\(UUID()).gguf").path
    }
}
