/// How often refinements beat the response they refine, and by how much: the figure PRS's method
/// rests on (a tree climbs only when its refinements improve on their drafts).
///
/// A refinement's draft is the response it refines: its parent, or its parent feedback node's
/// parent. Only refinements scored together with their draft count. Each figure is given overall,
/// per layer, per feedback source (`self`, `verifier`, `model:…`, or `none` for a refinement made
/// without feedback) and per preference category, with 95% bootstrap intervals over prompts: the
/// prompts are resampled, and the statistic is computed over all refinements of the resampled prompts.
public struct RefinementSuccess: Sendable, Hashable, Codable {
    public struct Figure: Sendable, Hashable, Codable {
        /// Scored refinements whose draft was scored too.
        public var refinements: Int
        /// Of those, the ones scoring strictly above their draft.
        public var improving: Int
        /// Prompts with at least one such refinement.
        public var prompts: Int
        /// improving / refinements.
        public var successRate: Double
        public var successRateInterval: [Double]?
        /// Mean over refinements of (refinement's reward − draft's reward).
        public var meanRewardChange: Double
        public var meanRewardChangeInterval: [Double]?

        enum CodingKeys: String, CodingKey {
            case refinements, improving, prompts
            case successRate = "success_rate"
            case successRateInterval = "success_rate_ci"
            case meanRewardChange = "mean_reward_change"
            case meanRewardChangeInterval = "mean_reward_change_ci"
        }
    }

    /// One refinement, reduced to what the figures need.
    public struct Step: Sendable, Hashable {
        public var prompt: String
        public var layer: Int
        public var feedback: String
        public var category: String?
        public var change: Double

        public init(prompt: String, layer: Int, feedback: String, category: String?, change: Double) {
            self.prompt = prompt
            self.layer = layer
            self.feedback = feedback
            self.category = category
            self.change = change
        }
    }

    public var all: Figure
    /// Keyed by layer ("1", "2", …).
    public var byLayer: [String: Figure]
    public var byFeedback: [String: Figure]
    /// Prompts without a category are left out of this breakdown (they are in `all`).
    public var byCategory: [String: Figure]

    enum CodingKeys: String, CodingKey {
        case all
        case byLayer = "by_layer"
        case byFeedback = "by_feedback"
        case byCategory = "by_category"
    }

    /// The refinements of `trees`, each with its draft's reward subtracted; `categories` maps a
    /// prompt id to its preference category.
    public static func steps(_ trees: [Tree], categories: [String: String] = [:]) -> [Step] {
        var out: [Step] = []
        for tree in trees {
            let byID = Dictionary(tree.nodes.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            for node in tree.nodes where node.kind == .refinement {
                guard let reward = node.reward, reward.isFinite, let parentID = node.parentID,
                    let parent = byID[parentID]
                else { continue }
                var draft = parent
                var feedback = "none"
                if parent.kind == .feedback {
                    feedback = parent.source ?? "self"
                    guard let d = parent.parentID.flatMap({ byID[$0] }) else { continue }
                    draft = d
                }
                guard draft.isResponse, let before = draft.reward, before.isFinite else { continue }
                out.append(
                    Step(
                        prompt: tree.id, layer: node.layer, feedback: feedback, category: categories[tree.id],
                        change: reward - before))
            }
        }
        return out
    }

    /// The figures of `trees`; nil when no refinement was scored with its draft.
    public init?(
        trees: [Tree], categories: [String: String] = [:], bootstrap: Bootstrap = Bootstrap(resamples: 1000, seed: 1)
    ) {
        self.init(steps: Self.steps(trees, categories: categories), bootstrap: bootstrap)
    }

    public init?(steps: [Step], bootstrap: Bootstrap = Bootstrap(resamples: 1000, seed: 1)) {
        guard let all = Self.figure(steps, bootstrap) else { return nil }
        self.all = all
        func grouped(_ key: (Step) -> String?) -> [String: Figure] {
            Dictionary(grouping: steps.compactMap { s in key(s).map { ($0, s) } }, by: \.0)
                .compactMapValues { Self.figure($0.map(\.1), bootstrap) }
        }
        byLayer = grouped { "\($0.layer)" }
        byFeedback = grouped(\.feedback)
        byCategory = grouped(\.category)
    }

    /// The figure of some refinements, intervals by resampling their prompts.
    static func figure(_ steps: [Step], _ bootstrap: Bootstrap) -> Figure? {
        guard !steps.isEmpty else { return nil }
        // Per prompt: (refinements, improving, sum of changes).
        var perPrompt: [String: (n: Int, up: Int, sum: Double)] = [:]
        var order: [String] = []
        for s in steps {
            if perPrompt[s.prompt] == nil { order.append(s.prompt) }
            perPrompt[s.prompt, default: (0, 0, 0)].n += 1
            perPrompt[s.prompt]!.up += s.change > 0 ? 1 : 0
            perPrompt[s.prompt]!.sum += s.change
        }
        let groups = order.map { perPrompt[$0]! }
        func rate(_ g: [(n: Int, up: Int, sum: Double)]) -> Double {
            Double(g.reduce(0) { $0 + $1.up }) / Double(g.reduce(0) { $0 + $1.n })
        }
        func change(_ g: [(n: Int, up: Int, sum: Double)]) -> Double {
            g.reduce(0) { $0 + $1.sum } / Double(g.reduce(0) { $0 + $1.n })
        }
        let improving = steps.count { $0.change > 0 }
        return Figure(
            refinements: steps.count, improving: improving, prompts: groups.count,
            successRate: rate(groups), successRateInterval: bootstrap.interval(groups, rate).map { [$0.low, $0.high] },
            meanRewardChange: change(groups),
            meanRewardChangeInterval: bootstrap.interval(groups, change).map { [$0.low, $0.high] })
    }
}

extension RefinementSuccess.Figure {
    /// "6.2% [3.1, 9.4]": the success rate and its interval.
    public var rateText: String {
        String(format: "%.1f%%", successRate * 100)
            + (successRateInterval.map { String(format: " [%.1f, %.1f]", $0[0] * 100, $0[1] * 100) } ?? "")
    }

    /// "6.2% [3.1, 9.4] of 128": the success rate, its interval and the refinements.
    public var successText: String { rateText + " of \(refinements)" }

    /// "-0.031 [-0.052, -0.012]": the mean reward change and its interval.
    public var changeText: String {
        let ci = meanRewardChangeInterval.map { String(format: " [%+.3f, %+.3f]", $0[0], $0[1]) } ?? ""
        return String(format: "%+.3f", meanRewardChange) + ci
    }
}

extension RefinementSuccess {
    /// The breakdowns as labelled rows: (group, figure), layers in order, then feedback sources
    /// and categories by name.
    public var rows: [(group: String, figure: Figure)] {
        var out: [(String, Figure)] = [("all", all)]
        out += byLayer.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }.map { ("layer \($0.key)", $0.value) }
        out += byFeedback.sorted { $0.key < $1.key }.map { ("feedback \($0.key)", $0.value) }
        out += byCategory.sorted { $0.key < $1.key }.map { ("category \($0.key)", $0.value) }
        return out
    }
}
