import Foundation
import LMEngine
import Testing

/// The engine against llama.cpp (scripts/reference/llama_reference.py, run on the same file).
///
/// Tolerance on the logits: max |ours − llama.cpp| ≤ `logitTolerance` (1.0; measured: 0.53 to
/// 0.92 on logits up to 34). Both sides quantize the activations
/// of each quantized product the same way (Q8_1 for Q4_1 weights, Q8_0 for Q8_0, scale 127/amax,
/// round half to even), keep K and V in F16 and round Q and the attention weights to F16 where
/// llama.cpp does. What differs is the order of float additions (we add each block's exact integer
/// sum in one FMA, as every kernel table can, llama.cpp's AVX2 path eight lane sums; batched prompt
/// evaluation), ggml's approximate vector exp in SiLU and softmax, and every activation that lands
/// on the other side of an int8 rounding step because of those: over ~210 quantized products per
/// token and 30 layers one such flip compounds to a few tenths.
@Suite(.serialized) struct ReferenceEqualityTests {
    static let logitTolerance: Float = 1.0
    static let steps = 64
    static let prompts = [
        "The capital of France is",
        "def fibonacci(n):",
        "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n",
        "Once upon a time, in a small village,",
        "1, 2, 3, 4, 5,",
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            + "Face<|im_end|>\n<|im_start|>user\nWrite a haiku about autumn.<|im_end|>\n<|im_start|>assistant\n",
        "Les meilleurs fromages de France sont",
        "Q: What is 12 times 7?\nA:",
    ]

    struct Reference: Decodable {
        var prompt: [Int32]
        var logits: [Float]
        var greedy: [Int32]
        var margins: [Float]
    }

    static let reference: Result<[Reference], any Error> = Result {
        try llamaCpp(model: SmolLM2.path, prompts: prompts, steps: steps)
    }

    /// llama.cpp's logits and greedy decoding of `prompts` with the model at `path`.
    static func llamaCpp(model path: String, prompts: [String], steps: Int) throws -> [Reference] {
        let python = SmolLM2.root.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ModelError("the reference tools are not installed: run scripts/setup.sh (make test does)")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prs-ref-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.json")
        let output = dir.appendingPathComponent("out.json")
        try JSONEncoder().encode(prompts).write(to: input)
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [
            SmolLM2.root.appendingPathComponent("scripts/reference/llama_reference.py").path, path, "\(steps)",
        ]
        p.standardInput = try FileHandle(forReadingFrom: input)
        p.standardOutput = try FileHandle(forWritingTo: output)
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ModelError("the reference script failed (status \(p.terminationStatus))")
        }
        return try JSONDecoder().decode([Reference].self, from: Data(contentsOf: output))
    }

    /// Teacher-forced greedy comparison: returns the steps where ours differs, each checked to be a
    /// near-tie of the reference.
    static func compareGreedy(
        _ model: LlamaModel, _ ref: Reference, maxTokens: Int = 256, tolerance: Float = logitTolerance
    ) throws -> [Int] {
        let s = LlamaSession(model: model, maxTokens: maxTokens)
        for t in ref.prompt { try s.forward(t) }
        var nearTies: [Int] = []
        for step in 0..<ref.greedy.count {
            var best: Int32 = 0
            for i in 1..<model.config.vocabSize where s.logits[i] > s.logits[Int(best)] { best = Int32(i) }
            let theirs = ref.greedy[step]
            if best != theirs {
                nearTies.append(step)
                #expect(
                    ref.margins[step] <= tolerance,
                    "step \(step): ours \(best), llama.cpp \(theirs), whose top-two margin is \(ref.margins[step])")
                // With every logit within the tolerance, our gap can be at most their margin plus twice it.
                #expect(s.logits[Int(best)] - s.logits[Int(theirs)] <= ref.margins[step] + 2 * tolerance)
            }
            if step + 1 < ref.greedy.count { try s.forward(theirs) }
        }
        return nearTies
    }

    static let model: Result<LlamaModel, any Error> = Result { try LlamaModel(file: SmolLM2.file.get()) }

    @Test(arguments: Array(prompts.indices))
    func logitsAfterThePromptAgree(index: Int) throws {
        let ref = try Self.reference.get()[index]
        let model = try Self.model.get()
        let ids = model.tokenizer.encode(Self.prompts[index], addSpecial: true, parseSpecial: true)
        #expect(ids == ref.prompt, "same prompt tokens")
        let s = LlamaSession(model: model, maxTokens: 256)
        for t in ids { try s.forward(t) }
        var worst: Float = 0
        for i in 0..<model.config.vocabSize { worst = max(worst, abs(s.logits[i] - ref.logits[i])) }
        var meanDiff: Double = 0
        for i in 0..<model.config.vocabSize { meanDiff += Double(s.logits[i] - ref.logits[i]) }
        meanDiff /= Double(model.config.vocabSize)
        var centred: Float = 0
        var top: Float = -1e9
        for i in 0..<model.config.vocabSize {
            centred = max(centred, abs(s.logits[i] - ref.logits[i] - Float(meanDiff)))
            top = max(top, ref.logits[i])
        }
        print(
            "prompt \(index): max |logit difference| = \(worst), mean shift \(meanDiff), max after removing the "
                + "shift \(centred), top logit \(top)"
        )
        #expect(worst <= Self.logitTolerance, "max |logit difference| \(worst)")
    }

    /// All 64 greedy steps of every prompt are compared. Where ours differs, the reference's top
    /// two must be within the tolerance (a near-tie); the reference's token is then fed so the
    /// comparison goes on.
    @Test(arguments: Array(prompts.indices))
    func greedyTokensAgree(index: Int) throws {
        let ref = try Self.reference.get()[index]
        let model = try Self.model.get()
        let nearTies = try Self.compareGreedy(model, ref)
        print(
            "prompt \(index): \(ref.greedy.count) greedy steps compared, \(ref.greedy.count - nearTies.count) "
                + "identical, near-ties at \(nearTies)"
        )
        #expect(ref.greedy.count == Self.steps || model.tokenizer.endOfGeneration.contains(ref.greedy.last!))
        #expect(nearTies.count <= ref.greedy.count / 8, "near-ties should be rare")
    }
}
