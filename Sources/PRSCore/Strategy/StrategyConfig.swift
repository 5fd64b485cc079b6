/// The sampling strategies compared at equal budget.
public enum StrategyKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// N samples of the prompt alone.
    case rand
    /// N samples of the prompt with the preference.
    case prand
    /// One temperature-0 answer to the prompt with the preference.
    case greedy
    /// Preference-guided reflective sampling: layers of samples, each refined from the best so far and its feedback.
    case prs
    /// PRS refining from the best so far and the preference, without a feedback step.
    case prsNoFeedback = "prs-nofeedback"
}

/// A configuration error, with a message a person can act on.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How to sample one tree per prompt.
public struct StrategyConfig: Sendable, Hashable {
    public var kind: StrategyKind
    /// N: the number of scored responses per prompt (greedy always uses 1).
    public var budget: Int
    /// Responses per layer for PRS; sums to `budget`.
    public var split: [Int]
    /// Parameters of responses (initial and refinements).
    public var sampling: SamplingParameters
    /// Parameters of feedback generations.
    public var feedbackSampling: SamplingParameters
    public var runSeed: UInt64
    public var templates: PromptTemplates
    /// How node rewards are made from their components (z-normalised within a tree, or as given).
    public var normalization: RewardNormalization = .none

    /// Builds and checks a configuration. `split` defaults to two halves of the budget
    /// (the larger first when the budget is odd).
    public init(
        kind: StrategyKind, budget: Int, split: [Int]? = nil,
        sampling: SamplingParameters = .paper, feedbackSampling: SamplingParameters? = nil,
        runSeed: UInt64 = 0, templates: PromptTemplates = .standard
    ) throws {
        guard budget >= 1 else { throw ConfigError("budget must be at least 1, got \(budget)") }
        self.kind = kind
        self.budget = kind == .greedy ? 1 : budget
        switch kind {
        case .prs, .prsNoFeedback:
            let s = split ?? Self.defaultSplit(budget)
            guard !s.isEmpty, s.allSatisfy({ $0 >= 1 }) else {
                throw ConfigError(
                    "split must be a list of positive layer sizes such as 4,4, got "
                        + "\(s.map(String.init).joined(separator: ","))"
                )
            }
            guard s.reduce(0, +) == budget else {
                throw ConfigError(
                    "split \(s.map(String.init).joined(separator: ",")) sums to \(s.reduce(0, +)), but the budget is "
                        + "\(budget)"
                )
            }
            self.split = s
        case .rand, .prand:
            self.split = [budget]
        case .greedy:
            self.split = [1]
        }
        self.sampling = sampling
        var fb = feedbackSampling ?? sampling
        if feedbackSampling == nil {
            fb.topLogprobs = nil
            fb.logprobs = nil
        }
        self.feedbackSampling = fb
        self.runSeed = runSeed
        self.templates = templates
    }

    /// N/2, N/2 (the paper's default); an odd budget puts the extra sample in the first layer.
    public static func defaultSplit(_ budget: Int) -> [Int] {
        budget < 2 ? [budget] : [budget - budget / 2, budget / 2]
    }
}
