import CKernels
import Foundation
import LMEngine
import Testing

/// Gemma 3 through the engine: continuous batching, the prefix cache and the sliding window keep
/// a request's tokens independent of what it runs with, and every instruction set gives the same bits.
@Suite(.serialized) struct Gemma3EngineTests {
    func prompt(_ text: String) throws -> [Int32] {
        let model = try Gemma3.model.get()
        return try ChatTemplate.of(model).promptTokens(
            [TemplateMessage(role: "user", content: text)], tokenizer: model.tokenizer)
    }

    @Test func aRequestsTokensDoNotDependOnOtherRequests() async throws {
        let model = try Gemma3.model.get()
        let p = try prompt("Write one sentence about the sea.")
        let o = CompletionOptions(maxTokens: 16, sampler: SamplerSettings(temperature: 0.9, topK: 50, seed: 11))
        let alone = try await Engine(model: model, contextTokens: 256, threads: 1, maxBatch: 1).complete(
            prompt: p, n: 1, options: o)[0]
        var fourth = o
        fourth.sampler.seed = 11 - 3
        let inBatch = try await Engine(model: model, contextTokens: 256, threads: 2).complete(
            prompt: p, n: 4, options: fourth)
        #expect(inBatch[3].tokens == alone.tokens, "alone = the 4th of a batch of 4")

        let busy = Engine(model: model, contextTokens: 256, threads: 2, maxBatch: 8)
        let others = try ["Name a colour.", "What is two plus two?", "List two planets."].map(prompt)
        let results = try await withThrowingTaskGroup(of: (Int, [Completion]).self) { group in
            for (i, q) in others.enumerated() {
                group.addTask {
                    (
                        i,
                        try await busy.complete(
                            prompt: q, n: 1 + i,
                            options: CompletionOptions(
                                maxTokens: 10 + 4 * i, sampler: SamplerSettings(temperature: 0.8, seed: UInt64(i))))
                    )
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(100))
                return (-1, try await busy.complete(prompt: p, n: 1, options: o))
            }
            var all: [Int: [Completion]] = [:]
            for try await (i, c) in group { all[i] = c }
            return all
        }
        #expect(results[-1]?[0].tokens == alone.tokens, "alone = among other requests in flight")
        #expect(busy.statistics().largestDecodeBatch >= 3)
    }

    /// A prompt longer than the 512-position window, prefilled in chunks by the engine and decoded
    /// past it, gives the greedy tokens of a session fed one token at a time; a second request with
    /// the same prompt reuses the cached prefix and agrees too.
    @Test func theWindowHoldsInChunkedPrefillAndThePrefixCache() async throws {
        let model = try Gemma3.model.get()
        let ids = model.tokenizer.encode(Gemma3ReferenceTests.longPrompt, addSpecial: true)
        #expect(ids.count > 600)
        let steps = 12
        let s = LlamaSession(model: model, maxTokens: 1024)
        var greedy: [Int32] = []
        for t in ids { try s.forward(t) }
        for _ in 0..<steps {
            var best: Int32 = 0
            for i in 1..<model.config.vocabSize where s.logits[i] > s.logits[Int(best)] { best = Int32(i) }
            greedy.append(best)
            try s.forward(best)
        }
        let engine = Engine(model: model, contextTokens: 1024, threads: 2)
        let o = CompletionOptions(maxTokens: steps, sampler: SamplerSettings(temperature: 0))
        let first = try await engine.complete(prompt: ids, n: 1, options: o)[0]
        let again = try await engine.complete(prompt: ids, n: 1, options: o)[0]
        #expect(
            Array(first.tokens.prefix(steps)) == Array(greedy.prefix(first.tokens.count)),
            "engine (chunked prefill) = one token at a time")
        #expect(again.tokens == first.tokens)
        #expect(engine.statistics().promptTokensCached >= ids.count - 16, "the second request reused the prefix")
    }

    @Test(.enabled(if: !ISATests.others.isEmpty, "this processor runs one kernel table; there is nothing to compare"))
    func everyInstructionSetGivesTheSameBits() throws {
        let isas = ISATests.others
        let model = try Gemma3.model.get()
        let p = try prompt("Why is the sky blue?")
        func logits(_ isa: Int32) throws -> [[UInt32]] {
            let was = lm_q8_set_isa(isa)
            defer { _ = lm_q8_set_isa(was) }
            let s = LlamaSession(model: model, maxTokens: 64)
            try s.forward(p)
            var out = [(0..<model.config.vocabSize).map { s.logits[$0].bitPattern }]
            for t: Int32 in [818, 7217, 563] {
                try s.forward(t)
                out.append((0..<model.config.vocabSize).map { s.logits[$0].bitPattern })
            }
            return out
        }
        let reference = try logits(0)
        for isa in isas { #expect(try logits(isa) == reference, "isa \(isa)") }
    }
}
