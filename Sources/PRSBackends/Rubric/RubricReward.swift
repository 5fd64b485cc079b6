import PRSCore

/// The rubric reward: the mean graded score of a response's constraints (strict, or IFEval's
/// loose variant). Each constraint's score is a component named by its instruction id, and
/// the outcomes (score, followed, critique) travel with the result for `prs score`.
/// An item without constraints cannot be scored by the rubric: that is a failure, not a zero.
public struct RubricReward: RewardModel {
    public let mode: Rubric.Mode
    public var identity: String { mode == .strict ? "rubric" : "rubric:loose" }

    public init(mode: Rubric.Mode = .strict) { self.mode = mode }

    public func score(_ inputs: [RewardInput]) async throws -> [RewardResult] {
        inputs.map(scoreOne)
    }

    public func scoreOne(_ input: RewardInput) -> RewardResult {
        let constraints = input.preference?.constraints ?? []
        guard !constraints.isEmpty else {
            return RewardResult(
                failure:
                    "the item has no constraints, so the rubric cannot score it; add \"constraints\" to the prompt "
                    + "file or use another reward"
            )
        }
        let outcomes = Rubric.check(input.response, against: constraints, mode: mode)
        var components: [String: Double] = [:]
        for o in outcomes {
            var key = o.id
            var k = 2
            while components[key] != nil {
                key = "\(o.id)#\(k)"
                k += 1
            }
            components[key] = o.score
        }
        var r = RewardResult(value: outcomes.map(\.score).reduce(0, +) / Double(outcomes.count), components: components)
        r.constraints = outcomes
        return r
    }
}
