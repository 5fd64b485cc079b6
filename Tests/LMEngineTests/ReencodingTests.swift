import Foundation
import GGUF
import LMEngine
import Testing

/// A re-encoding of the model by our writer (every Q4_1 tensor as Q8_0) loads in llama.cpp and
/// in prs, and both give the same greedy tokens for it.
@Suite(.serialized) struct ReencodingTests {
    static let prompts = ["The capital of France is", "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n", "def add(a, b):"]

    @Test func aQ8_0ReencodingRunsAlikeInLlamaCppAndPrs() throws {
        let source = try SmolLM2.file.get()
        var w = GGUFWriter()
        w.alignment = source.content.alignment
        w.metadata = source.content.metadata.map { $0.key == "general.file_type" ? ($0.key, .uint32(7)) : $0 }  // 7: mostly Q8_0
        w.tensors = try source.content.tensors.map { t in
            if t.type == .q4_1 {
                return .init(name: t.name, dimensions: t.dimensions, type: .q8_0, data: try Quantize.encode(source.floats(t), as: .q8_0))
            }
            return .init(name: t.name, dimensions: t.dimensions, type: t.type, data: [UInt8](source.bytes(of: t)))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("smollm2-q8_0-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)

        let copy = try LlamaModel(path: path)
        #expect(copy.file.content.tensors.filter { $0.type == .q4_1 }.isEmpty)
        let refs = try ReferenceEqualityTests.llamaCpp(model: path, prompts: Self.prompts, steps: 32)
        var identical = 0, total = 0
        for ref in refs {
            let nearTies = try ReferenceEqualityTests.compareGreedy(copy, ref)
            identical += ref.greedy.count - nearTies.count
            total += ref.greedy.count
        }
        print("Q8_0 re-encoding: \(identical) of \(total) greedy steps identical to llama.cpp")
        #expect(identical >= total * 9 / 10)
    }
}
