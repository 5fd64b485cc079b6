/// What a node of a sampling tree is.
public enum NodeKind: String, Sendable, Hashable, Codable {
    /// A response sampled from the prompt (and preference) alone; layer 0.
    case initial
    /// The policy's critique of the best response so far; not scored, not counted in the budget.
    case feedback
    /// A response sampled from the prompt, preference, best response so far and (usually) feedback.
    case refinement
}

/// One generation in a tree, with everything needed to see how it came to be.
public struct Node: Sendable, Hashable, Codable, Identifiable {
    /// Position in generation order within the item, from 0.
    public var id: Int
    /// For a feedback node, the response it critiques; for a refinement, the feedback
    /// node it applies (or, without feedback, the response it refines).
    public var parentID: Int?
    public var kind: NodeKind
    public var layer: Int
    public var text: String
    /// The reward; `nil` for feedback and for responses whose scoring failed.
    public var reward: Double?
    /// The reward's components, e.g. `["judge": 0.7]`.
    public var rewards: [String: Double]?
    /// Why scoring failed, when it did.
    public var rewardError: String?
    public var seed: UInt64?
    public var params: SamplingParameters
    public var usage: TokenUsage
    public var latencyMs: Double
    public var finishReason: FinishReason
    /// For a scored refinement: whether it scored strictly above the response it refined.
    public var improving: Bool?
    /// For feedback: who wrote it (`self`, `verifier`, or `model:SPEC`).
    public var source: String?

    public init(
        id: Int, parentID: Int?, kind: NodeKind, layer: Int, text: String,
        reward: Double? = nil, rewards: [String: Double]? = nil, rewardError: String? = nil,
        seed: UInt64?, params: SamplingParameters, usage: TokenUsage, latencyMs: Double,
        finishReason: FinishReason, improving: Bool? = nil, source: String? = nil
    ) {
        self.id = id
        self.parentID = parentID
        self.kind = kind
        self.layer = layer
        self.text = text
        self.reward = reward
        self.rewards = rewards
        self.rewardError = rewardError
        self.seed = seed
        self.params = params
        self.usage = usage
        self.latencyMs = latencyMs
        self.finishReason = finishReason
        self.improving = improving
        self.source = source
    }

    /// Responses count toward the budget; feedback does not.
    public var isResponse: Bool { kind != .feedback }

    enum CodingKeys: String, CodingKey {
        case id, kind, layer, text, reward, rewards, seed, params, usage, improving, source
        case parentID = "parent_id"
        case rewardError = "reward_error"
        case latencyMs = "latency_ms"
        case finishReason = "finish_reason"
    }

    /// `parent_id` and `reward` are always written (null when absent), so readers can index them.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(parentID, forKey: .parentID)
        try c.encode(kind, forKey: .kind)
        try c.encode(layer, forKey: .layer)
        try c.encode(text, forKey: .text)
        try c.encode(reward, forKey: .reward)
        try c.encodeIfPresent(rewards, forKey: .rewards)
        try c.encodeIfPresent(rewardError, forKey: .rewardError)
        try c.encodeIfPresent(seed, forKey: .seed)
        try c.encode(params, forKey: .params)
        try c.encode(usage, forKey: .usage)
        try c.encode(latencyMs, forKey: .latencyMs)
        try c.encode(finishReason, forKey: .finishReason)
        try c.encodeIfPresent(improving, forKey: .improving)
        try c.encodeIfPresent(source, forKey: .source)
    }
}
