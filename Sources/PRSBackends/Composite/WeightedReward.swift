import PRSCore

/// A weighted sum of rewards. Each part's value is kept as a component under the part's name
/// (what z-normalisation weighs), and each part's own components under `name/component`,
/// so a node shows why it won. A response is a failure when any part fails for it.
public struct WeightedReward: RewardModel {
    public let parts: [(weight: Double, name: String, model: any RewardModel)]
    public var identity: String { parts.map { "\($0.weight)*\($0.model.identity)" }.joined(separator: "+") }

    public init(_ parts: [(weight: Double, name: String, model: any RewardModel)]) {
        self.parts = parts
    }

    /// The weight of each part by name, for `RewardNormalization.zScore`.
    public var weights: [String: Double] {
        parts.reduce(into: [:]) { $0[$1.name, default: 0] += $1.weight }
    }

    public func score(_ inputs: [RewardInput]) async throws -> [RewardResult] {
        var all: [[RewardResult]] = []
        for p in parts { all.append(try await p.model.score(inputs)) }
        return inputs.indices.map { i in
            var total = 0.0
            var components: [String: Double] = [:]
            var failures: [String] = []
            var constraints: [ConstraintOutcome]?
            for (k, part) in parts.enumerated() {
                let r = all[k][i]
                constraints = constraints ?? r.constraints
                for (c, v) in r.components where c != part.name { components["\(part.name)/\(c)"] = v }
                if let v = r.value {
                    components[part.name] = v
                    total += part.weight * v
                } else {
                    failures.append("\(part.name): \(r.failure ?? "no value")")
                }
            }
            var result =
                failures.isEmpty
                ? RewardResult(value: total, components: components)
                : RewardResult(failure: failures.joined(separator: "; "), components: components)
            result.constraints = constraints
            return result
        }
    }
}
