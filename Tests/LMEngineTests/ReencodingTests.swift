import Foundation
import GGUF
import LMEngine
import Testing

/// Re-encodings of the model by our writer (every Q4_1 tensor as Q8_0, or as F16) load in
/// llama.cpp and in prs, and both give the same greedy tokens for them.
@Suite(.serialized) struct ReencodingTests {
    static let prompts = [
        "The capital of France is", "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n",
        "def add(a, b):",
    ]

    /// Every Q4_1 tensor re-encoded as `type` (file type `fileType`), run by llama.cpp and by prs.
    static func reencode(as type: TensorType, fileType: UInt32) throws {
        let source = try SmolLM2.file.get()
        var w = GGUFWriter()
        w.alignment = source.content.alignment
        w.metadata = source.content.metadata.map { $0.key == "general.file_type" ? ($0.key, .uint32(fileType)) : $0 }
        w.tensors = try source.content.tensors.map { t in
            if t.type == .q4_1 {
                return .init(
                    name: t.name, dimensions: t.dimensions, type: type,
                    data: try Quantize.encode(source.floats(t), as: type))
            }
            return .init(name: t.name, dimensions: t.dimensions, type: t.type, data: [UInt8](source.bytes(of: t)))
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("smollm2-\(type)-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)

        let copy = try LlamaModel(path: path)
        #expect(copy.file.content.tensors.filter { $0.type == .q4_1 }.isEmpty)
        let refs = try ReferenceEqualityTests.llamaCpp(model: path, prompts: Self.prompts, steps: 32)
        var identical = 0
        var total = 0
        for ref in refs {
            let nearTies = try ReferenceEqualityTests.compareGreedy(copy, ref)
            identical += ref.greedy.count - nearTies.count
            total += ref.greedy.count
        }
        print("\(type) re-encoding: \(identical) of \(total) greedy steps identical to llama.cpp")
        #expect(identical >= total * 9 / 10)
    }

    @Test func aQ8_0ReencodingRunsAlikeInLlamaCppAndPrs() throws { try Self.reencode(as: .q8_0, fileType: 7) }  // 7: mostly Q8_0

    /// F16 weights go through prs's F16 products (F32 activations; llama.cpp rounds them to F16).
    @Test func anF16ReencodingRunsAlikeInLlamaCppAndPrs() throws { try Self.reencode(as: .f16, fileType: 1) }  // 1: mostly F16
}
