/// Aggregate figures of one strategy over a prompt set, as written to `summary.json`.
public struct StrategySummary: Sendable, Hashable, Codable {
    public var strategy: String
    /// Items with a finished tree.
    public var prompts: Int
    /// Items that failed (their errors are logged and counted, never dropped silently).
    public var failed: Int
    public var budget: Int
    /// Mean over prompts of the best reward in the tree.
    public var meanBestReward: Double?
    /// Mean over prompts of the mean of the three highest rewards (fewer when fewer exist).
    public var meanTop3Reward: Double?
    /// Mean reward of all scored responses in each layer; index = layer.
    public var meanRewardPerLayer: [Double?]
    /// Refinements that scored strictly above the response they refined, over all scored refinements.
    public var improvingPairRate: Double?
    public var improvingPairs: Int
    /// Refinement success with intervals, by layer, feedback source and preference category;
    /// nil without scored refinements (and in summaries written before prs recorded it).
    public var refinement: RefinementSuccess?
    public var responses: Int
    /// Responses whose scoring failed.
    public var unscoredResponses: Int
    public var feedbackGenerations: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var wallTimeSeconds: Double

    enum CodingKeys: String, CodingKey {
        case strategy, prompts, failed, budget, responses
        case meanBestReward = "mean_best_reward"
        case meanTop3Reward = "mean_top3_reward"
        case meanRewardPerLayer = "mean_reward_per_layer"
        case improvingPairRate = "improving_pair_rate"
        case improvingPairs = "improving_pairs"
        case unscoredResponses = "unscored_responses"
        case refinement
        case feedbackGenerations = "feedback_generations"
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case wallTimeSeconds = "wall_time_s"
    }

    /// Summarises finished trees of one strategy; `categories` maps prompt ids to their
    /// preference categories (for refinement success by category).
    public init(
        strategy: String, budget: Int, trees: [Tree], failed: Int, wallTimeSeconds: Double,
        categories: [String: String] = [:]
    ) {
        self.strategy = strategy
        self.budget = budget
        self.prompts = trees.count
        self.failed = failed
        self.wallTimeSeconds = wallTimeSeconds
        meanBestReward = Self.mean(trees.compactMap { $0.best?.reward })
        meanTop3Reward = Self.mean(
            trees.compactMap { t -> Double? in
                let top = t.scoredResponses.compactMap(\.reward).sorted(by: >).prefix(3)
                return top.isEmpty ? nil : top.reduce(0, +) / Double(top.count)
            })
        let responses = trees.flatMap(\.responses)
        let layers = (responses.map(\.layer).max() ?? -1) + 1
        meanRewardPerLayer = (0..<layers).map { l in Self.mean(responses.filter { $0.layer == l }.compactMap(\.reward))
        }
        let refinements = responses.filter { $0.kind == .refinement && $0.improving != nil }
        improvingPairs = refinements.count { $0.improving == true }
        improvingPairRate = refinements.isEmpty ? nil : Double(improvingPairs) / Double(refinements.count)
        refinement = RefinementSuccess(trees: trees, categories: categories)
        self.responses = responses.count
        unscoredResponses = responses.count { $0.reward == nil }
        feedbackGenerations = trees.reduce(0) { $0 + $1.feedbackCount }
        let usage = trees.reduce(TokenUsage.zero) { $0 + $1.usage }
        promptTokens = usage.promptTokens
        completionTokens = usage.completionTokens
    }

    /// Prompt ids to preference categories, for `categories:`.
    public static func categories(_ items: [PromptItem]) -> [String: String] {
        Dictionary(items.compactMap { i in i.preference?.category.map { (i.id, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    static func mean(_ xs: [Double]) -> Double? {
        xs.isEmpty ? nil : xs.reduce(0, +) / Double(xs.count)
    }
}
