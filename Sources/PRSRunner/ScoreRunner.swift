import Foundation
import Logging
import PRSCore

/// One line of `prs score --out`: the reward of a response with its components and, for
/// items with constraints, each constraint's strict outcome.
public struct ScoredResponse: Sendable, Encodable {
    public var id: String
    public var reward: Double?
    public var rewards: [String: Double]
    public var rewardError: String?
    public var constraints: [Outcome]?

    public struct Outcome: Sendable, Encodable {
        public var id: String
        public var score: Double
        public var follow: Bool
        public var critique: String?
    }

    enum CodingKeys: String, CodingKey {
        case id, reward, rewards, constraints
        case rewardError = "reward_error"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(reward, forKey: .reward)
        try c.encode(rewards, forKey: .rewards)
        try c.encodeIfPresent(rewardError, forKey: .rewardError)
        try c.encodeIfPresent(constraints, forKey: .constraints)
    }
}

/// What `prs score` found: every scored response, and IFEval's accuracies (strict and loose)
/// over the responses whose prompts have constraints.
public struct ScoreReport: Sendable {
    public var scored: [ScoredResponse]
    public var strict: ConstraintAccuracy
    public var loose: ConstraintAccuracy
    public var meanReward: Double?
    public var failures: Int
}

/// Scores existing responses with a reward model, in batches, keeping input order.
public struct ScoreRunner: Sendable {
    public let reward: any RewardModel
    public let batchSize: Int
    public let logger: Logger

    public init(reward: any RewardModel, batchSize: Int = 16, logger: Logger) {
        self.reward = reward
        self.batchSize = max(1, batchSize)
        self.logger = logger
    }

    /// `records` must name items of `items` (checked by the caller, which knows the files).
    public func run(
        items: [PromptItem], records: [ResponseRecord], onProgress: @Sendable (RunProgress) -> Void = { _ in }
    ) async throws -> ScoreReport {
        let byID = Dictionary(uniqueKeysWithValues: items.map { ($0.id, $0) })
        var scored: [ScoredResponse] = []
        var strict: [[ConstraintOutcome]] = []
        var loose: [[ConstraintOutcome]] = []
        let clock = ContinuousClock()
        let start = clock.now
        for first in stride(from: 0, to: records.count, by: batchSize) {
            let batch = Array(records[first..<min(records.count, first + batchSize)])
            let inputs = batch.map { r in
                let item = byID[r.id]!
                return RewardInput(prompt: item.prompt, preference: item.preference, response: r.response)
            }
            let results = try await reward.score(inputs)
            guard results.count == inputs.count else {
                throw RunError(
                    "the reward \(reward.identity) returned \(results.count) results for \(inputs.count) responses")
            }
            for (r, (input, result)) in zip(batch, zip(inputs, results)) {
                let constraints = input.preference?.constraints ?? []
                let s = Rubric.check(r.response, against: constraints, mode: .strict)
                strict.append(s)
                loose.append(Rubric.check(r.response, against: constraints, mode: .loose))
                scored.append(
                    ScoredResponse(
                        id: r.id, reward: result.value, rewards: result.components, rewardError: result.failure,
                        constraints: constraints.isEmpty
                            ? nil
                            : s.map { .init(id: $0.id, score: $0.score, follow: $0.follow, critique: $0.critique) }))
            }
            onProgress(
                RunProgress(
                    total: records.count, done: scored.count, resumed: 0, failed: 0, inFlight: 0,
                    nodes: scored.count, completionTokens: 0, elapsedSeconds: SampleRunner.seconds(clock.now - start)))
        }
        let values = scored.compactMap(\.reward)
        return ScoreReport(
            scored: scored, strict: ConstraintAccuracy(strict), loose: ConstraintAccuracy(loose),
            meanReward: values.isEmpty ? nil : values.reduce(0, +) / Double(values.count),
            failures: scored.filter { $0.reward == nil }.count)
    }
}
