import Foundation
import PRSCore

/// Scores both sides of preference pairs with a reward (or asks a pairwise judge in both
/// orders), for `prs score --pairs`: how often the reward prefers the chosen answer.
public enum PairScoring {
    /// The prompt a pair is scored under: the prompt file's item of the same id when there is one
    /// (its preference and constraints), else the pair's own prompt text.
    static func item(_ p: PreferencePair, _ items: [String: PromptItem]) -> PromptItem {
        items[p.id] ?? PromptItem(id: p.id, instruction: p.prompt)
    }

    public static func score(
        _ pairs: [PreferencePair], items: [String: PromptItem], reward: any RewardModel, batch: Int = 16,
        onProgress: @Sendable (Int, Int) -> Void = { _, _ in }
    ) async throws -> [PairAccuracy.Outcome] {
        var out: [PairAccuracy.Outcome] = []
        var start = 0
        while start < pairs.count {
            let chunk = Array(pairs[start..<min(pairs.count, start + max(1, batch / 2))])
            var inputs: [RewardInput] = []
            for p in chunk {
                let it = item(p, items)
                inputs.append(RewardInput(prompt: it.prompt, preference: it.preference, response: p.chosen))
                inputs.append(RewardInput(prompt: it.prompt, preference: it.preference, response: p.rejected))
            }
            let results = try await reward.score(inputs)
            for (k, p) in chunk.enumerated() {
                let c = results[2 * k]
                let r = results[2 * k + 1]
                let category = p.category ?? item(p, items).preference?.category
                let score = c.value.flatMap { a in r.value.map { b in PairAccuracy.compare(a, b) } }
                let error = [c.failure.map { "chosen: \($0)" }, r.failure.map { "rejected: \($0)" }].compactMap { $0 }
                    .joined(separator: "; ")
                out.append(
                    PairAccuracy.Outcome(
                        id: p.id, category: category, chosen: c.value, rejected: r.value, score: score,
                        error: error.isEmpty ? nil : error))
            }
            start += chunk.count
            onProgress(start, pairs.count)
        }
        return out
    }

    /// A pairwise judge's verdicts, chosen shown first and then second.
    public static func judge(
        _ pairs: [PreferencePair], items: [String: PromptItem], judge: PairwiseJudge,
        onProgress: @Sendable (Int, Int) -> Void = { _, _ in }
    ) async throws -> [PairAccuracy.Outcome] {
        var out: [PairAccuracy.Outcome] = []
        for (i, p) in pairs.enumerated() {
            let it = item(p, items)
            let o = try await judge.judge(it, a: p.chosen, b: p.rejected)
            out.append(
                PairAccuracy.Outcome(
                    id: p.id, category: p.category ?? it.preference?.category, chosen: nil, rejected: nil,
                    score: o.score, ordersDisagree: o.ordersDisagree))
            onProgress(i + 1, pairs.count)
        }
        return out
    }
}
