import PRSCore

/// A weighted sum of rewards. Every part's components are kept on the result (prefixed by
/// the part's name when two parts share a component name), so a node shows why it won.
/// A response is a failure when any part fails for it.
public struct WeightedReward: RewardModel {
    public let parts: [(weight: Double, name: String, model: any RewardModel)]
    public var identity: String { parts.map { "\($0.weight)*\($0.model.identity)" }.joined(separator: "+") }

    public init(_ parts: [(weight: Double, name: String, model: any RewardModel)]) {
        self.parts = parts
    }

    public func score(_ inputs: [RewardInput]) async throws -> [RewardResult] {
        var all: [[RewardResult]] = []
        for p in parts { all.append(try await p.model.score(inputs)) }
        let names = parts.map(\.name)
        let clash = Set(names).count != names.count
        return inputs.indices.map { i in
            var total = 0.0
            var components: [String: Double] = [:]
            var failures: [String] = []
            for (k, part) in parts.enumerated() {
                let r = all[k][i]
                for (c, v) in r.components { components[clash ? "\(part.name)#\(k).\(c)" : c] = v }
                if let v = r.value { total += part.weight * v } else { failures.append("\(part.name): \(r.failure ?? "no value")") }
            }
            if !failures.isEmpty { return RewardResult(failure: failures.joined(separator: "; "), components: components) }
            return RewardResult(value: total, components: components)
        }
    }
}
