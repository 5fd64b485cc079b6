import Foundation
import PRSCore

/// Asks a model which of two answers is better, in both orders, so a preference for the first
/// (or second) position cancels out. Works with any `TextGenerator`.
public struct PairwiseJudge: Sendable {
    public let generator: any TextGenerator
    public init(generator: any TextGenerator) { self.generator = generator }

    static let template = """
        Two assistants answered the same request for a user with a stated preference.

        Request:
        {prompt}

        The user's preference:
        {preference}

        Answer A:
        {a}

        Answer B:
        {b}

        Which answer is more helpful and follows the preference better? Reply with the single letter A or B.
        """

    /// The verdict with `first` shown as A: "A", "B", or nil when the reply names neither.
    func verdict(_ item: PromptItem, first: String, second: String) async throws -> String? {
        let text = PromptTemplates.render(
            Self.template,
            [
                "prompt": item.prompt, "preference": item.preference?.text ?? "(none)", "a": first, "b": second,
            ])
        let out = try await generator.generate(
            GenerationRequest(
                messages: [.user(text)], n: 1, parameters: SamplingParameters(temperature: 0, maxTokens: 4, seed: 0)))
        return Self.parse(out.first?.text ?? "")
    }

    /// The first standalone A or B in a reply.
    static func parse(_ reply: String) -> String? {
        for w in TextCounts.words(reply) where w == "A" || w == "B" { return String(w) }
        return nil
    }

    /// One comparison of `a` with `b`, asked in both orders.
    public func judge(_ item: PromptItem, a: String, b: String) async throws -> WinRate.Outcome {
        let v1 = try await verdict(item, first: a, second: b)
        let v2 = try await verdict(item, first: b, second: a)
        return WinRate.byJudge(
            id: item.id, first: v1, second: v2, lengthA: TextCounts.words(a).count, lengthB: TextCounts.words(b).count)
    }

    /// Judges `a`'s best answers against `b`'s on the prompts both finished.
    public func compare(
        _ a: StrategyRun, _ b: StrategyRun, items: [String: PromptItem]
    ) async throws -> [WinRate.Outcome] {
        let other = Dictionary(uniqueKeysWithValues: b.trees.map { ($0.id, $0) })
        var out: [WinRate.Outcome] = []
        for t in a.trees {
            guard let x = t.best, let y = other[t.id]?.best, let item = items[t.id] else { continue }
            var o = try await judge(item, a: x.text, b: y.text)
            o.id = t.id
            out.append(o)
        }
        return out
    }
}
