import Foundation
import LMEngine
import Testing

/// Continuous batching and the prefix cache on the real model: requests in flight together
/// share one batch, and no request's tokens depend on the others.
@Suite(.serialized) struct EngineBatchingTests {
    func prompt(_ text: String) throws -> [Int32] {
        try ReferenceEqualityTests.model.get().tokenizer.encode(
            "<|im_start|>user\n\(text)<|im_end|>\n<|im_start|>assistant\n", addSpecial: true, parseSpecial: true)
    }

    static let others = [
        "Name a colour.", "What is two plus two?", "Write a haiku about rain.", "Give me a word that rhymes with cat.",
        "Describe a chair in one sentence.", "Say something kind.", "List two planets.",
    ]

    /// The same request alone, as one of a batch of 8, and among seven other requests in flight
    /// (different prompts, lengths and n, joining and leaving the batch) gives identical tokens.
    @Test func aRequestsTokensDoNotDependOnOtherRequests() async throws {
        let model = try ReferenceEqualityTests.model.get()
        let p = try prompt("Write one sentence about the sea.")
        let o = CompletionOptions(maxTokens: 24, sampler: SamplerSettings(temperature: 0.9, topK: 50, seed: 11))
        let alone = try await Engine(model: model, contextTokens: 512, threads: 1, maxBatch: 1).complete(
            prompt: p, n: 1, options: o)[0]

        var eighth = o
        eighth.sampler.seed = 11 - 7
        let inBatch = try await Engine(model: model, contextTokens: 512, threads: 2).complete(
            prompt: p, n: 8, options: eighth)
        #expect(inBatch[7].tokens == alone.tokens, "alone = the 8th of a batch of 8")

        let busy = Engine(model: model, contextTokens: 512, threads: 2, maxBatch: 12)
        let others = try Self.others.map(prompt)
        let results = try await withThrowingTaskGroup(of: (Int, [Completion]).self) { group in
            for (i, q) in others.enumerated() {
                group.addTask {
                    let options = CompletionOptions(
                        maxTokens: 8 + 6 * i, sampler: SamplerSettings(temperature: 0.8, seed: UInt64(100 + i)))
                    return (i, try await busy.complete(prompt: q, n: 1 + i % 3, options: options))
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(150))  // joins a batch already running
                return (-1, try await busy.complete(prompt: p, n: 1, options: o))
            }
            var all: [Int: [Completion]] = [:]
            for try await (i, c) in group { all[i] = c }
            return all
        }
        #expect(results[-1]?[0].tokens == alone.tokens, "alone = among seven other requests in flight")
        let stats = busy.statistics()
        #expect(
            stats.largestDecodeBatch >= 4,
            "requests in flight were decoded together (largest batch \(stats.largestDecodeBatch))")
        #expect(stats.requests == 8)
        // Each other request also equals itself alone.
        for (i, q) in others.enumerated() {
            let options = CompletionOptions(
                maxTokens: 8 + 6 * i, sampler: SamplerSettings(temperature: 0.8, seed: UInt64(100 + i)))
            let single = try await Engine(model: model, contextTokens: 512, threads: 1, maxBatch: 1).complete(
                prompt: q, n: 1 + i % 3, options: options)
            #expect(single.map(\.tokens) == results[i]?.map(\.tokens), "request \(i) alone = in flight with others")
        }
    }

    /// A cache far smaller than the work evicts old prefixes (least recently used first) and
    /// still gives the same tokens as a large one; a request that can never fit is refused.
    @Test func aSmallCacheEvictsAndStillAgrees() async throws {
        let model = try ReferenceEqualityTests.model.get()
        let small = Engine(model: model, contextTokens: 256, threads: 2, maxBatch: 4, cacheTokens: 256)
        let large = Engine(model: model, contextTokens: 256, threads: 2, maxBatch: 4)
        let o = CompletionOptions(maxTokens: 16, sampler: SamplerSettings(temperature: 0.7, seed: 5))
        for text in Self.others + Self.others.prefix(2) {
            let p = try prompt(
                "Please answer the following carefully and in full sentences, thinking of a curious child: " + text
                    + " Explain your answer step by step, and mention one fact that a child might not know yet "
                    + "about it."
            )
            let a = try await small.complete(prompt: p, n: 2, options: o)
            let b = try await large.complete(prompt: p, n: 2, options: o)
            #expect(a.map(\.tokens) == b.map(\.tokens))
        }
        let s = small.statistics()
        let l = large.statistics()
        #expect(s.cacheTokens == 256)
        #expect(s.evictions > 0, "the small cache evicted blocks")
        #expect(l.evictions == 0)
        #expect(l.promptTokensCached > s.promptTokensCached, "the large cache kept the repeated prompts")
        let tooLong = [Int32](repeating: 300, count: 255)
        await #expect(throws: ModelError.self) {
            _ = try await small.complete(prompt: tooLong, n: 1, options: CompletionOptions(maxTokens: 200))
        }
    }
}

/// Prompt log-probabilities (`echo` with `logprobs` in `prs serve`): scored in the prompt's own
/// forward pass, equal to a token-by-token session's log-softmax, the same whether the prompt's
/// prefix is cached or not, and split across prefill chunks without a gap.
@Suite(.serialized) struct PromptLogprobTests {
    @Test func promptTokensAreScoredInTheirOwnForwardPass() async throws {
        let model = try ReferenceEqualityTests.model.get()
        let text =
            "The sea was calm that morning, and the fishing boats went out before dawn. By noon the nets were full."
        let prompt = model.tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        #expect(prompt.count > 20)
        // The reference: one token at a time, the log-softmax of the logits before each token.
        let session = LlamaSession(model: model, maxTokens: 256, threads: 1, chunk: 1)
        var expected: [Float] = []
        for (i, t) in prompt.enumerated() {
            if i > 0 {
                let row = UnsafeBufferPointer(start: session.logits, count: model.config.vocabSize)
                let m = row.max()!
                let z = m + log(row.reduce(Float(0)) { $0 + exp($1 - m) })
                expected.append(row[Int(t)] - z)
            }
            try session.forward(t)
        }
        // Prefill chunks of 7 tokens, so the prompt spans several steps.
        let engine = Engine(
            model: model, settings: EngineSettings(contextTokens: 256, maxBatch: 4, prefillChunk: 7, threads: 2))
        var options = CompletionOptions(maxTokens: 0, sampler: SamplerSettings(temperature: 0, seed: 1))
        options.promptLogprobs = 3
        let first = try await engine.complete(prompt: prompt, n: 1, options: options)[0]
        #expect(first.tokens.isEmpty && first.finish == .length, "max 0 tokens scores the prompt only")
        #expect(
            first.promptLogprobs.map(\.token) == Array(prompt.dropFirst()),
            "one entry per prompt token after the first, in order")
        let worst = zip(first.promptLogprobs.map(\.logprob), expected).map { abs($0 - $1) }.max() ?? .infinity
        // Batched against token-by-token evaluation: the same products row by row; only the
        // attention's summation over a chunk may differ in the last bits.
        #expect(worst <= 1e-3, "prompt log-probabilities = the session's log-softmax (max |Δ| \(worst))")
        for s in first.promptLogprobs {
            #expect(s.top.count == 3)
            #expect(s.top.map(\.logprob) == s.top.map(\.logprob).sorted(by: >), "alternatives most likely first")
            #expect(s.top[0].logprob >= s.logprob, "the most likely alternative is at least as likely as the token")
        }
        // Asked again (its blocks now in the prefix cache), then with a generation after it.
        let again = try await engine.complete(prompt: prompt, n: 1, options: options)[0]
        #expect(again.promptLogprobs == first.promptLogprobs, "a cached prefix is evaluated afresh, not skipped")
        options.maxTokens = 5
        let generated = try await engine.complete(prompt: prompt, n: 2, options: options)
        #expect(generated.allSatisfy { $0.promptLogprobs == first.promptLogprobs && $0.tokens.count == 5 })
        // Without prompt log-probabilities nothing is scored.
        let plain = try await engine.complete(prompt: prompt, n: 1, options: CompletionOptions(maxTokens: 2))[0]
        #expect(plain.promptLogprobs.isEmpty)
    }
}
