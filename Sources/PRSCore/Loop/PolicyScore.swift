/// A mean with its 95% bootstrap interval over prompts.
public struct MeanInterval: Sendable, Hashable, Codable {
    public var mean: Double
    public var low: Double
    public var high: Double
    public init(mean: Double, low: Double, high: Double) {
        self.mean = mean
        self.low = low
        self.high = high
    }

    public static func of(_ values: [Double], _ bootstrap: Bootstrap) -> MeanInterval? {
        guard !values.isEmpty else { return nil }
        let m = values.reduce(0, +) / Double(values.count)
        let ci = bootstrap.meanInterval(values)
        return MeanInterval(mean: m, low: ci?.low ?? m, high: ci?.high ?? m)
    }
}

/// How good a policy is on held-out prompts: its own samples' quality (not best-of-N), the
/// greedy answer's, best-of-n, the win rate against the starting policy, and the breakdowns.
public struct PolicyScore: Sendable, Hashable, Codable {
    public struct BestOf: Sendable, Hashable, Codable {
        public var n: Int
        public var reward: MeanInterval
    }
    public struct Share: Sendable, Hashable, Codable {
        public var followed: Int
        public var total: Int
        /// The share of samples that follow, with its interval over the prompts that have the constraint.
        public var rate: MeanInterval?
    }

    public var prompts: Int
    /// The mean over prompts of each prompt's mean sample reward.
    public var meanReward: MeanInterval
    public var greedyReward: MeanInterval?
    /// Expected best of n independent samples, n = 1, 2, 4, … up to the samples drawn.
    public var bestOfN: [BestOf]
    /// Against the starting policy, prompt by prompt (1 win, ½ tie, 0 loss): by the greedy
    /// answers' rewards when there are greedy answers, else by the mean sample rewards.
    public var winRateVsBase: MeanInterval?
    /// The gain over the starting policy: prompt by prompt, this policy's mean sample reward minus
    /// the starting policy's, averaged, with its 95% interval (paired over prompts).
    public var gainVsBase: MeanInterval?
    /// The same comparison by a pairwise judge (greedy answers, both orders), when one is configured.
    public var judgeWinRateVsBase: MeanInterval?
    /// Mean sample reward by preference category, with intervals over that category's prompts.
    public var byCategory: [String: MeanInterval]
    /// Samples that follow each constraint kind (the rate averaged over the prompts that have it).
    public var byConstraint: [String: Share]
    public var meanWords: Double
    public var completionTokens: Int
    /// With `evaluate.search: N`: PRS (N/2 + N/2) against PRand at budget N with this policy on
    /// the held-out prompts; nil otherwise (and in scores stored before prs recorded it).
    public var search: Search?

    /// PRS against PRand at equal budget with one policy.
    public struct Search: Sendable, Hashable, Codable {
        public var budget: Int
        /// Mean best reward of each, with intervals over prompts.
        public var prs: MeanInterval
        public var prand: MeanInterval
        /// PRS's best reward minus PRand's, prompt by prompt, averaged, with its interval.
        public var difference: MeanInterval
        /// PRS's refinements against their drafts on the held-out prompts.
        public var refinement: RefinementSuccess.Figure?

        public init(budget: Int, prs: [Tree], prand: [Tree], bootstrap: Bootstrap = Bootstrap(resamples: 1000, seed: 1))
        {
            self.budget = budget
            let a = Dictionary(
                prs.compactMap { t in t.best?.reward.map { (t.id, $0) } }, uniquingKeysWith: { x, _ in x })
            let b = Dictionary(
                prand.compactMap { t in t.best?.reward.map { (t.id, $0) } }, uniquingKeysWith: { x, _ in x })
            let common = prs.map(\.id).filter { a[$0] != nil && b[$0] != nil }
            let zero = MeanInterval(mean: 0, low: 0, high: 0)
            self.prs = MeanInterval.of(common.map { a[$0]! }, bootstrap) ?? zero
            self.prand = MeanInterval.of(common.map { b[$0]! }, bootstrap) ?? zero
            difference = MeanInterval.of(common.map { a[$0]! - b[$0]! }, bootstrap) ?? zero
            refinement = RefinementSuccess(trees: prs, bootstrap: bootstrap)?.all
        }
    }

    enum CodingKeys: String, CodingKey {
        case search
        case prompts
        case meanReward = "mean_reward"
        case greedyReward = "greedy_reward"
        case bestOfN = "best_of_n"
        case winRateVsBase = "win_rate_vs_base"
        case judgeWinRateVsBase = "judge_win_rate_vs_base"
        case gainVsBase = "gain_vs_base"
        case byCategory = "by_category"
        case byConstraint = "by_constraint"
        case meanWords = "mean_words"
        case completionTokens = "completion_tokens"
    }

    /// The mean reward of a tree's scored responses (nil when none was scored).
    public static func meanReward(_ t: Tree) -> Double? {
        let r = t.scoredResponses.compactMap(\.reward)
        return r.isEmpty ? nil : r.reduce(0, +) / Double(r.count)
    }

    /// Per prompt, the mean sample reward of `samples` minus that of `base`, averaged over the
    /// prompts both have, with a paired bootstrap interval.
    public static func gain(
        _ samples: [Tree], over base: [Tree], bootstrap: Bootstrap = Bootstrap(resamples: 1000, seed: 1)
    ) -> MeanInterval? {
        let other = Dictionary(
            base.compactMap { t in meanReward(t).map { (t.id, $0) } }, uniquingKeysWith: { a, _ in a })
        let diffs = samples.compactMap { t in meanReward(t).flatMap { a in other[t.id].map { a - $0 } } }
        return MeanInterval.of(diffs, bootstrap)
    }

    /// Scores a policy from its sample trees and greedy trees on the held-out prompts, against the
    /// starting policy's trees (`base`; nil for the starting policy itself), on the prompts both have.
    public static func compute(
        samples: [Tree], greedy: [Tree], base: (samples: [Tree], greedy: [Tree])?,
        items: [String: PromptItem], judged: [WinRate.Outcome]? = nil,
        bootstrap: Bootstrap = Bootstrap(resamples: 1000, seed: 1)
    ) -> PolicyScore {
        let scored = samples.filter { !$0.scoredResponses.isEmpty }
        func meanReward(_ t: Tree) -> Double {
            let r = t.scoredResponses.compactMap(\.reward)
            return r.reduce(0, +) / Double(max(1, r.count))
        }
        let means = scored.map(meanReward)
        let greedyRewards = greedy.compactMap { $0.best?.reward }
        var bestOf: [BestOf] = []
        let drawn = scored.map { $0.scoredResponses.count }.min() ?? 0
        var n = 1
        while n <= drawn {
            let v = scored.map { BestOfN.expectedMax($0.scoredResponses.compactMap(\.reward), n: n) }
            if let i = MeanInterval.of(v, bootstrap) { bestOf.append(BestOf(n: n, reward: i)) }
            n *= 2
        }
        if let last = bestOf.last, last.n != drawn, drawn > 0 {
            let v = scored.map { BestOfN.expectedMax($0.scoredResponses.compactMap(\.reward), n: drawn) }
            if let i = MeanInterval.of(v, bootstrap) { bestOf.append(BestOf(n: drawn, reward: i)) }
        }
        var win: MeanInterval?
        if let base {
            var outcomes: [Double] = []
            if !greedy.isEmpty, !base.greedy.isEmpty {
                let other = Dictionary(
                    uniqueKeysWithValues: base.greedy.compactMap { t in t.best?.reward.map { (t.id, $0) } })
                for t in greedy {
                    if let a = t.best?.reward, let b = other[t.id] { outcomes.append(a > b ? 1 : a == b ? 0.5 : 0) }
                }
            } else {
                let other = Dictionary(
                    uniqueKeysWithValues: base.samples.filter { !$0.scoredResponses.isEmpty }.map {
                        ($0.id, meanReward($0))
                    })
                for t in scored {
                    if let b = other[t.id] {
                        let a = meanReward(t)
                        outcomes.append(a > b ? 1 : a == b ? 0.5 : 0)
                    }
                }
            }
            win = MeanInterval.of(outcomes, bootstrap)
        }
        let gainInterval = base.flatMap { Self.gain(samples, over: $0.samples, bootstrap: bootstrap) }
        var categories: [String: [Double]] = [:]
        var constraints: [String: Share] = [:]
        var perPrompt: [String: [Double]] = [:]
        var words = 0.0
        var responses = 0.0
        var tokens = 0
        for t in scored {
            let item = items[t.id]
            categories[item?.preference?.category ?? "none", default: []].append(meanReward(t))
            var mine: [String: (followed: Int, total: Int)] = [:]
            for r in t.scoredResponses {
                words += Double(TextCounts.words(r.text).count)
                responses += 1
                for o in Rubric.check(r.text, against: item?.preference?.constraints ?? []) {
                    var s = constraints[o.id] ?? Share(followed: 0, total: 0)
                    s.followed += o.follow ? 1 : 0
                    s.total += 1
                    constraints[o.id] = s
                    mine[o.id, default: (0, 0)].followed += o.follow ? 1 : 0
                    mine[o.id, default: (0, 0)].total += 1
                }
            }
            for (k, v) in mine { perPrompt[k, default: []].append(Double(v.followed) / Double(v.total)) }
        }
        for (k, rates) in perPrompt { constraints[k]?.rate = MeanInterval.of(rates, bootstrap) }
        for t in samples + greedy { tokens += t.usage.completionTokens }
        return PolicyScore(
            prompts: scored.count,
            meanReward: MeanInterval.of(means, bootstrap) ?? MeanInterval(mean: 0, low: 0, high: 0),
            greedyReward: MeanInterval.of(greedyRewards, bootstrap), bestOfN: bestOf, winRateVsBase: win,
            gainVsBase: gainInterval,
            judgeWinRateVsBase: judged.flatMap { j in MeanInterval.of(j.map(\.score), bootstrap) },
            byCategory: categories.compactMapValues { MeanInterval.of($0, bootstrap) }, byConstraint: constraints,
            meanWords: responses > 0 ? words / responses : 0, completionTokens: tokens)
    }
}
