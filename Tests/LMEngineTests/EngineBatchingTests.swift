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

    static let others = ["Name a colour.", "What is two plus two?", "Write a haiku about rain.", "Give me a word that rhymes with cat.",
                         "Describe a chair in one sentence.", "Say something kind.", "List two planets."]

    /// The same request alone, as one of a batch of 8, and among seven other requests in flight
    /// (different prompts, lengths and n, joining and leaving the batch) gives identical tokens.
    @Test func aRequestsTokensDoNotDependOnOtherRequests() async throws {
        let model = try ReferenceEqualityTests.model.get()
        let p = try prompt("Write one sentence about the sea.")
        let o = CompletionOptions(maxTokens: 24, sampler: SamplerSettings(temperature: 0.9, topK: 50, seed: 11))
        let alone = try await Engine(model: model, contextTokens: 512, threads: 1, maxBatch: 1).complete(prompt: p, n: 1, options: o)[0]

        var eighth = o
        eighth.sampler.seed = 11 - 7
        let inBatch = try await Engine(model: model, contextTokens: 512, threads: 2).complete(prompt: p, n: 8, options: eighth)
        #expect(inBatch[7].tokens == alone.tokens, "alone = the 8th of a batch of 8")

        let busy = Engine(model: model, contextTokens: 512, threads: 2, maxBatch: 12)
        let others = try Self.others.map(prompt)
        let results = try await withThrowingTaskGroup(of: (Int, [Completion]).self) { group in
            for (i, q) in others.enumerated() {
                group.addTask {
                    let options = CompletionOptions(maxTokens: 8 + 6 * i, sampler: SamplerSettings(temperature: 0.8, seed: UInt64(100 + i)))
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
        #expect(stats.largestDecodeBatch >= 4, "requests in flight were decoded together (largest batch \(stats.largestDecodeBatch))")
        #expect(stats.requests == 8)
        // Each other request also equals itself alone.
        for (i, q) in others.enumerated() {
            let options = CompletionOptions(maxTokens: 8 + 6 * i, sampler: SamplerSettings(temperature: 0.8, seed: UInt64(100 + i)))
            let single = try await Engine(model: model, contextTokens: 512, threads: 1, maxBatch: 1).complete(prompt: q, n: 1 + i % 3, options: options)
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
            let p = try prompt("Please answer the following carefully and in full sentences, thinking of a curious child: " + text
                               + " Explain your answer step by step, and mention one fact that a child might not know yet about it.")
            let a = try await small.complete(prompt: p, n: 2, options: o)
            let b = try await large.complete(prompt: p, n: 2, options: o)
            #expect(a.map(\.tokens) == b.map(\.tokens))
        }
        let s = small.statistics(), l = large.statistics()
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
