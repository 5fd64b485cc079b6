import CKernels
import Foundation
import GGUF
import LMEngine
import Testing

/// The weights repacked at load (the kernels' interleaved layout) against the same file used in
/// place: every logit of a prompt evaluated in one batch and of tokens after it equal bit for
/// bit, on every table this machine runs (the others are checked emulated by
/// scripts/check-emulated-kernels.sh). SmolLM2-135M covers Q4_1 and Q8_0; Gemma 3 270M Q4_K_M
/// covers Q4_K, Q6_K, Q5_0 and Q8_0 as llama.cpp's quantizer mixes them.
@Suite(.serialized) struct RepackTests {
    func logits(_ model: LlamaModel, _ prompt: [Int32], then: [Int32], isa: Int32) throws -> [[UInt32]] {
        let was = lm_q8_set_isa(isa)
        defer { _ = lm_q8_set_isa(was) }
        let s = LlamaSession(model: model, maxTokens: prompt.count + then.count + 1)
        try s.forward(prompt)
        var out = [(0..<model.config.vocabSize).map { s.logits[$0].bitPattern }]
        for t in then {
            try s.forward(t)
            out.append((0..<model.config.vocabSize).map { s.logits[$0].bitPattern })
        }
        return out
    }

    func compare(_ file: GGUFFile, _ text: String, then: [Int32]) throws {
        let packed = try LlamaModel(file: file, repack: true)
        let inPlace = try LlamaModel(file: file, repack: false)
        #expect(packed.repackedBytes > 0, "\(file.path): nothing was repacked")
        #expect(inPlace.repackedBytes == 0)
        let prompt = packed.tokenizer.encode(text, addSpecial: true, parseSpecial: true)
        #expect(prompt.count > 8)
        for isa in [Int32(0)] + ISATests.others {
            let a = try logits(packed, prompt, then: then, isa: isa)
            let b = try logits(inPlace, prompt, then: then, isa: isa)
            #expect(a.count == then.count + 1)
            #expect(a == b, "\(file.path), table \(isa): repacked and in-place logits differ")
        }
    }

    @Test func smolLM2RepackedIsBitIdentical() throws {
        try compare(
            SmolLM2.file.get(),
            "<|im_start|>user\nName three rivers and say which is longest.<|im_end|>\n<|im_start|>assistant\n",
            then: [504, 3056, 314])
    }

    @Test func gemma3RepackedIsBitIdentical() throws {
        try compare(
            Gemma3.file.get(),
            "<start_of_turn>user\nWhy do leaves change colour in autumn?<end_of_turn>\n<start_of_turn>model\n",
            then: [818, 7217, 563])
    }
}
