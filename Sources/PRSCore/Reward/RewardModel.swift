/// What a reward model scores: a response to a prompt, under a preference.
public struct RewardInput: Sendable, Hashable {
    public var prompt: String
    public var preference: Preference?
    public var response: String

    public init(prompt: String, preference: Preference?, response: String) {
        self.prompt = prompt
        self.preference = preference
        self.response = response
    }
}

/// A reward, with the parts it was made of, or why there is none.
public struct RewardResult: Sendable, Hashable {
    /// The reward; `nil` when scoring failed (see `failure`), never a silent zero.
    public var value: Double?
    /// Per-component values, e.g. `["judge": 0.71]`, so a user can see why a node won.
    public var components: [String: Double]
    public var failure: String?
    /// Per-constraint outcomes, from rewards that check constraints (the rubric).
    public var constraints: [ConstraintOutcome]?

    public init(value: Double, components: [String: Double]) {
        self.value = value
        self.components = components
        self.failure = nil
    }

    public init(failure: String, components: [String: Double] = [:]) {
        self.value = nil
        self.components = components
        self.failure = failure
    }
}

/// Scores responses. Returns one result per input, in order.
public protocol RewardModel: Sendable {
    var identity: String { get }
    func score(_ inputs: [RewardInput]) async throws -> [RewardResult]
}
