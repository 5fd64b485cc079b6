/// Every node generated for one prompt by one strategy, and the answer chosen.
public struct Tree: Sendable, Hashable, Codable {
    /// The prompt item's id.
    public var id: String
    public var strategy: String
    /// The chosen answer: the highest-reward response, earliest on ties.
    public var bestID: Int?
    public var nodes: [Node]

    public init(id: String, strategy: String, nodes: [Node]) {
        self.id = id
        self.strategy = strategy
        self.nodes = nodes
        self.bestID = Selection.best(among: nodes)?.id
    }

    public var best: Node? { bestID.flatMap { id in nodes.first { $0.id == id } } }
    /// Responses (initial and refinement nodes), in generation order.
    public var responses: [Node] { nodes.filter(\.isResponse) }
    public var scoredResponses: [Node] { nodes.filter { $0.isResponse && $0.reward != nil } }
    /// The budget spent: the number of responses.
    public var budgetUsed: Int { responses.count }
    public var feedbackCount: Int { nodes.count { $0.kind == .feedback } }
    public var usage: TokenUsage { nodes.reduce(.zero) { $0 + $1.usage } }

    enum CodingKeys: String, CodingKey {
        case id, strategy, nodes
        case bestID = "best_id"
    }
}

/// Choosing the best response.
public enum Selection {
    /// The scored response with the highest reward. Ties go to the earliest in generation
    /// order (lowest id), so selection never depends on how a backend ordered its replies.
    public static func best(among nodes: [Node]) -> Node? {
        var best: Node?
        for node in nodes where node.isResponse {
            guard let r = node.reward, r.isFinite else { continue }
            if let b = best, let br = b.reward {
                if r > br || (r == br && node.id < b.id) { best = node }
            } else {
                best = node
            }
        }
        return best
    }
}
