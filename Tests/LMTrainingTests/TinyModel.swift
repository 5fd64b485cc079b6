import Foundation
import GGUF
import LMEngine
import LMTraining

/// A tiny random llama written by the project's GGUF writer (F32 tensors, a byte-free toy
/// vocabulary), for the finite-difference checks.
enum TinyModel {
    static let shape = ModelShape(layers: 2, dim: 16, hiddenDim: 24, heads: 4, kvHeads: 2, ropeBase: 10000, normEps: 1e-5, vocabSize: 37)

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
            w.tensors.append(.init(name: e.name, dimensions: dims, type: .f32, data: try Quantize.encode(values, as: .f32)))
        }
        try w.write(to: path)
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("prs-\(name)-\(UUID()).gguf").path
    }
}
