import Foundation
import LMEngine
import Testing

/// Gemma 3 270M in the engine against llama.cpp on the same file (scripts/reference/llama_reference.py):
/// logits after each prompt, and 64 teacher-forced greedy steps. One prompt is longer than the
/// 512-position sliding window, so the local layers' window and the global layers' full
/// attention are both exercised.
///
/// Tolerances: max |ours − llama.cpp| ≤ 2.0 and the root-mean-square difference over the 262,144
/// logits, about their mean shift (which changes no probability), ≤ 0.5; where the greedy tokens differ, llama.cpp's top two must be within 2.0 (a
/// near-tie). Why wider than SmolLM2's 1.0: llama.cpp disagrees with itself by as much on this
/// model. Its logits after a prompt evaluated as one batch and after the same prompt fed one
/// token at a time differ by up to 0.93–1.56 (root-mean-square 0.25–0.44) on the first four
/// prompts here, against at most 0.55 on SmolLM2. Gemma's residual stream carries a few very
/// large activations, so an int8 rounding step that one summation order lands on the other
/// side of moves the logits further.
@Suite(.serialized) struct Gemma3ReferenceTests {
    static let tolerance: Float = 2.0
    static let rmsTolerance: Double = 0.5
    static let steps = 64

    static let longPrompt: String = {
        let facts = [
            "The Nile flows north through eleven countries before it reaches the Mediterranean Sea.",
            "Honey found in ancient Egyptian tombs was still edible after three thousand years.",
            "A day on Venus lasts longer than its year, because it turns so slowly on its axis.",
            "Octopuses have three hearts, and their blood is blue because it carries copper.",
            "The Great Wall of China was built and rebuilt over almost two thousand years.",
            "Bananas are berries, but strawberries, botanically speaking, are not.",
            "Sound travels about four times faster in water than it does in air.",
            "The Eiffel Tower grows roughly fifteen centimetres taller on hot summer days.",
        ]
        var lines: [String] = []
        for i in 0..<32 { lines.append("Fact \(i + 1): \(facts[i % facts.count])") }
        return lines.joined(separator: "\n") + "\nQuestion: which fact mentions copper? Answer: Fact"
    }()

    static let prompts = [
        "The capital of France is",
        "<start_of_turn>user\nWhy is the sky blue?<end_of_turn>\n<start_of_turn>model\n",
        "def fibonacci(n):\n    ",
        "Les meilleurs fromages de France sont",
        "1, 2, 3, 4, 5,",
        "日本の首都は",
        longPrompt,
    ]

    static let reference: Result<[ReferenceEqualityTests.Reference], any Error> = Result {
        try ReferenceEqualityTests.llamaCpp(model: Gemma3.path, prompts: prompts, steps: steps)
    }

    @Test func theLongPromptPassesTheWindow() throws {
        let model = try Gemma3.model.get()
        #expect(model.config.slidingWindow == 512)
        #expect(model.tokenizer.encode(Self.longPrompt, addSpecial: true).count > 600)
        #expect((0..<18).filter { !model.config.isLocal($0) } == [5, 11, 17], "every sixth layer is global")
    }

    @Test(arguments: Array(prompts.indices))
    func logitsAfterThePromptAgree(index: Int) throws {
        let ref = try Self.reference.get()[index]
        let model = try Gemma3.model.get()
        let ids = model.tokenizer.encode(Self.prompts[index], addSpecial: true, parseSpecial: true)
        #expect(ids == ref.prompt, "same prompt tokens")
        let s = LlamaSession(model: model, maxTokens: 1024)
        try s.forward(ids)
        let n = model.config.vocabSize
        var worst: Float = 0
        var top: Float = -.infinity
        var sum = 0.0
        for i in 0..<n {
            let d = s.logits[i] - ref.logits[i]
            worst = max(worst, abs(d))
            sum += Double(d)
            top = max(top, ref.logits[i])
        }
        // A shift of every logit by the same amount changes no probability: the spread is what counts.
        let shift = sum / Double(n)
        var squares = 0.0
        for i in 0..<n {
            let d = Double(s.logits[i] - ref.logits[i]) - shift
            squares += d * d
        }
        let rms = (squares / Double(n)).squareRoot()
        print(
            "gemma3 prompt \(index) (\(ids.count) tokens): max |logit difference| = \(worst), mean shift \(shift), "
                + "rms about it \(rms), top logit \(top)"
        )
        #expect(worst <= Self.tolerance, "max |logit difference| \(worst)")
        #expect(rms <= Self.rmsTolerance, "root-mean-square logit difference about the mean shift \(rms)")
    }

    @Test(arguments: Array(prompts.indices))
    func greedyTokensAgree(index: Int) throws {
        let ref = try Self.reference.get()[index]
        let model = try Gemma3.model.get()
        let nearTies = try ReferenceEqualityTests.compareGreedy(model, ref, maxTokens: 1024, tolerance: Self.tolerance)
        print(
            "gemma3 prompt \(index): \(ref.greedy.count) greedy steps compared, \(ref.greedy.count - nearTies.count) "
                + "identical, near-ties at \(nearTies)"
        )
        #expect(ref.greedy.count == Self.steps || model.tokenizer.endOfGeneration.contains(ref.greedy.last!))
        #expect(nearTies.count <= ref.greedy.count / 8, "near-ties should be rare")
    }
}
