/// How a node's reward is made from its components.
public enum RewardNormalization: Sendable, Hashable {
    /// The reward model's value as it is.
    case none
    /// Each named component is z-normalised over the scored responses of the node's tree so far
    /// (`(v − mean) / sd`, 0 when every value is equal), then the weighted sum is the reward.
    /// Rewards of mixed scales (a 0–1 rubric, a reward model's logits) then weigh as asked.
    case zScore(weights: [String: Double])

    /// Recomputes the rewards (and improving flags) of `nodes`, one tree's nodes so far.
    /// Raw component values are kept; nodes whose scoring failed stay without a reward.
    public func apply(_ nodes: [Node]) -> [Node] {
        guard case .zScore(let weights) = self else { return nodes }
        let scored = nodes.filter { $0.isResponse && $0.rewardError == nil && $0.rewards != nil }
        var stats: [String: (mean: Double, sd: Double)] = [:]
        for name in weights.keys {
            let values = scored.compactMap { $0.rewards?[name] }
            guard !values.isEmpty else { continue }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
            stats[name] = (mean, variance.squareRoot())
        }
        var out = nodes
        for i in out.indices where out[i].isResponse && out[i].rewardError == nil {
            guard let comps = out[i].rewards else { continue }
            var total = 0.0
            for (name, w) in weights {
                guard let v = comps[name], let s = stats[name] else { continue }
                total += w * (s.sd > 0 ? (v - s.mean) / s.sd : 0)
            }
            out[i].reward = total
        }
        // A refinement improves when it beats the draft it refined, on the same scale.
        let byID = Dictionary(uniqueKeysWithValues: out.map { ($0.id, $0) })
        for i in out.indices where out[i].kind == .refinement {
            var draft = out[i].parentID.flatMap { byID[$0] }
            if draft?.kind == .feedback { draft = draft?.parentID.flatMap { byID[$0] } }
            if let v = out[i].reward, let d = draft?.reward { out[i].improving = v > d }
        }
        return out
    }
}
