import Foundation
import LMEngine
import Testing

/// Generation on the real model: shared prompts, seeds, stops.
@Suite(.serialized) struct EngineTests {
    static let engine: Result<Engine, any Error> = Result {
        Engine(model: try ReferenceEqualityTests.model.get(), contextTokens: 512)
    }

    func prompt(_ text: String) throws -> [Int32] {
        try ReferenceEqualityTests.model.get().tokenizer.encode(
            "<|im_start|>user\n\(text)<|im_end|>\n<|im_start|>assistant\n", addSpecial: true, parseSpecial: true)
    }

    @Test func nContinuationsEqualSeparateRequestsWithSeedsPlusI() async throws {
        let e = try Self.engine.get()
        let p = try prompt("Name three fruits.")
        let options = CompletionOptions(maxTokens: 24, sampler: SamplerSettings(temperature: 0.9, topK: 50, seed: 40))
        let together = try await e.complete(prompt: p, n: 3, options: options)
        #expect(together.map(\.seed) == [40, 41, 42])
        for i in 0..<3 {
            var o = options
            o.sampler.seed = 40 + UInt64(i)
            let alone = try await e.complete(prompt: p, n: 1, options: o)
            #expect(alone[0].tokens == together[i].tokens, "continuation \(i) is the same alone as among n")
        }
        #expect(Set(together.map(\.tokens)).count > 1, "different seeds sample differently")
    }

    /// A long shared start (a system message, as PRS's feedback and refinement requests repeat
    /// the prompt and the draft) is taken from the prefix cache in whole blocks.
    @Test func aSharedPrefixIsReusedNotRecomputed() async throws {
        let e = try Self.engine.get()
        let tok = try ReferenceEqualityTests.model.get().tokenizer
        let system =
            "You are a careful assistant. Answer in plain English, keep every answer short, and never use lists or "
            + "headings. "
            + "The user is a botanist who prefers Latin names where they exist."
        func chat(_ user: String) -> [Int32] {
            tok.encode(
                "<|im_start|>system\n\(system)<|im_end|>\n<|im_start|>user\n\(user)<|im_end|>\n<|im_start|>assistant\n",
                addSpecial: true, parseSpecial: true)
        }
        let a = chat("Tell me about cats, briefly.")
        let b = chat("Tell me about oaks, at length.")
        _ = try await e.complete(
            prompt: a, n: 1, options: CompletionOptions(maxTokens: 2, sampler: SamplerSettings(temperature: 0)))
        let before = e.statistics()
        _ = try await e.complete(
            prompt: b, n: 1, options: CompletionOptions(maxTokens: 2, sampler: SamplerSettings(temperature: 0)))
        let after = e.statistics()
        var common = 0
        while a[common] == b[common] { common += 1 }
        #expect(common >= 32, "the prompts share \(common) tokens")
        let reused = common / 16 * 16
        #expect(
            after.promptTokensEvaluated - before.promptTokensEvaluated == b.count - reused,
            "only the tokens after the shared whole blocks are evaluated")
        #expect(after.promptTokensCached - before.promptTokensCached == reused)
    }

    @Test func stopStringsCutAcrossTokenBoundaries() async throws {
        let e = try Self.engine.get()
        let p = try prompt("Count from one to ten in words, separated by commas.")
        let greedy = CompletionOptions(maxTokens: 40, sampler: SamplerSettings(temperature: 0))
        let full = try await e.complete(prompt: p, n: 1, options: greedy)[0]
        #expect(full.text.count > 12)
        // A stop string spanning the end of one token and the start of the next.
        let tok = try ReferenceEqualityTests.model.get().tokenizer
        let first = tok.decode(Array(full.tokens.prefix(3)))
        let stop = String(first.suffix(2)) + String(tok.decode([full.tokens[3]]).prefix(2))
        #expect(full.text.contains(stop))
        var o = greedy
        o.stop = [stop]
        let cut = try await e.complete(prompt: p, n: 1, options: o)[0]
        #expect(cut.finish == .stop)
        #expect(cut.text == String(full.text[..<full.text.range(of: stop)!.lowerBound]))
        let short = try await e.complete(
            prompt: p, n: 1, options: CompletionOptions(maxTokens: 5, sampler: SamplerSettings(temperature: 0)))[0]
        #expect(short.finish == .length && short.tokens.count == 5)
        #expect(short.tokens == Array(full.tokens.prefix(5)))
    }

    @Test func theEndOfTurnTokenEndsGeneration() async throws {
        let e = try Self.engine.get()
        let out = try await e.complete(
            prompt: try prompt("Say hi."), n: 1,
            options: CompletionOptions(maxTokens: 200, sampler: SamplerSettings(temperature: 0)))[0]
        #expect(out.finish == .stop)
        #expect(!out.text.contains("<|im_end|>"))
    }

    /// Batch invariance: a continuation's tokens for a seed do not depend on the batch it is
    /// decoded in, its place in the batch, or the thread count.
    @Test func tokensDoNotDependOnBatchOrThreads() async throws {
        let model = try ReferenceEqualityTests.model.get()
        let p = try prompt("Write one sentence about the sea.")
        let o = CompletionOptions(maxTokens: 20, sampler: SamplerSettings(temperature: 0.9, topK: 50, seed: 7))
        let eight = try await Engine(model: model, contextTokens: 512, threads: 1).complete(prompt: p, n: 8, options: o)
        let two = Engine(model: model, contextTokens: 512, threads: 2)
        var alone = o
        alone.sampler.seed = 7 + 5
        #expect(
            try await two.complete(prompt: p, n: 1, options: alone)[0].tokens == eight[5].tokens,
            "alone = 6th of a batch of 8")
        var four = o
        four.sampler.seed = 7 + 4
        let batch4 = try await two.complete(prompt: p, n: 4, options: four)
        #expect(
            batch4.map(\.tokens) == Array(eight[4..<8]).map(\.tokens), "first of a batch of 4 = 5th of a batch of 8")
    }
}
