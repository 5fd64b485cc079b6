import Foundation
import PRSCore

/// One strategy's finished run, as the evaluation reads it.
public struct StrategyRun: Sendable {
    public var label: String
    public var strategy: StrategyKind
    public var feedback: String
    public var budget: Int
    public var trees: [Tree]
    public var summary: StrategySummary

    public init(
        label: String, strategy: StrategyKind, feedback: String, budget: Int, trees: [Tree], summary: StrategySummary
    ) {
        self.label = label
        self.strategy = strategy
        self.feedback = feedback
        self.budget = budget
        self.trees = trees
        self.summary = summary
    }

    /// Rand and PRand draw independent samples; the other strategies build trees.
    var independent: Bool { strategy == .rand || strategy == .prand }
}

/// Everything a report shows, computed from the runs of a comparison.
public struct Evaluation: Sendable, Encodable {
    public struct Interval: Sendable, Encodable {
        public var mean: Double
        public var low: Double
        public var high: Double
    }
    public struct CurvePoint: Sendable, Encodable {
        public var n: Int
        public var best: Interval
        public var top3: Interval
    }
    public struct Strategy: Sendable, Encodable {
        public var label: String
        public var strategy: String
        public var feedback: String
        public var prompts: Int
        public var curve: [CurvePoint]
        /// Every scored response's reward, for the distribution.
        public var rewards: [Double]
        public var meanRewardPerLayer: [Double?]
        public var meanBestByCategory: [String: Double]
        /// Share of best answers that follow each constraint kind: [followed, total].
        public var constraintFollowed: [String: [Int]]
        public var promptTokens: Int
        public var completionTokens: Int
        public var wallSeconds: Double
        public var meanBestWords: Double
        /// For each part of the reward (a mix's parts, or the reward itself): over pairs of responses to
        /// the same prompt that the constraints' graded rubric score tells apart, [agreements × 2, pairs]
        /// (a tie in the part counts ½).
        public var rubricAgreement: [String: [Int]] = [:]
        /// Refinements against their drafts (PRS), with intervals and breakdowns; nil without refinements.
        public var refinement: RefinementSuccess? = nil
    }
    public struct Pair: Sendable, Encodable {
        public var a: String
        public var b: String
        public var prompts: Int
        public var byReward: Interval
        /// Mean over prompts of (A's best reward − B's), paired by prompt, with its interval.
        public var bestRewardDifference: Interval
        public var judge: Interval?
        public var judgeOrderDisagreement: Double?
        public var judgeLengthControlled: Double?
        public var meanWordsA: Double
        public var meanWordsB: Double
    }
    public struct ItemView: Sendable, Encodable {
        public var id: String
        public var prompt: String
        public var preference: String
        public var category: String
        public var runs: [String: [NodeView]]
    }
    public struct NodeView: Sendable, Encodable {
        public var id: Int
        public var parent: Int?
        public var kind: String
        public var layer: Int
        public var reward: Double?
        public var best: Bool
        public var text: String
    }

    public var budget: Int
    public var strategies: [Strategy]
    public var pairs: [Pair]
    public var items: [ItemView]
    public var categories: [String]
    public var constraintKinds: [String]

    /// Computes curves (with bootstrap intervals over prompts), distributions, the breakdowns and
    /// reward win rates of every strategy against `baseline` (the first run by default), on the
    /// prompts every run finished. `judged` adds judge outcomes per pair label ("a|b").
    public static func compute(
        runs: [StrategyRun], items: [String: PromptItem], baseline: String? = nil,
        judged: [String: [WinRate.Outcome]] = [:], bootstrap: Bootstrap = Bootstrap()
    ) -> Evaluation {
        var common: Set<String> = Set(runs.first?.trees.map(\.id) ?? [])
        for run in runs.dropFirst() { common.formIntersection(run.trees.map(\.id)) }
        let order = runs.first?.trees.map(\.id).filter(common.contains) ?? []
        let budget = runs.map(\.budget).max() ?? 1
        var strategies: [Strategy] = []
        for run in runs {
            let trees = run.trees.filter { common.contains($0.id) }
            let curves = trees.map { BestOfN.curve($0, independent: run.independent, budget: budget) }
            var curve: [CurvePoint] = []
            for n in 1...budget {
                let bests = curves.compactMap { $0[n - 1]?.best }
                let tops = curves.compactMap { $0[n - 1]?.top3 }
                guard bests.count == trees.count, !bests.isEmpty else { break }
                curve.append(CurvePoint(n: n, best: interval(bests, bootstrap), top3: interval(tops, bootstrap)))
            }
            var byCategory: [String: [Double]] = [:]
            var followed: [String: [Int]] = [:]
            var words: [Double] = []
            for t in trees {
                guard let best = t.best, let item = items[t.id] else { continue }
                byCategory[item.preference?.category ?? "none", default: []].append(best.reward ?? 0)
                words.append(Double(TextCounts.words(best.text).count))
                for o in Rubric.check(best.text, against: item.preference?.constraints ?? []) {
                    var v = followed[o.id] ?? [0, 0]
                    v[0] += o.follow ? 1 : 0
                    v[1] += 1
                    followed[o.id] = v
                }
            }
            let categories = items.compactMapValues { $0.preference?.category }
            let summary = StrategySummary(
                strategy: run.strategy.rawValue, budget: run.budget, trees: trees, failed: 0,
                wallTimeSeconds: run.summary.wallTimeSeconds, categories: categories)
            let agreement = rubricAgreement(trees, items: items)
            strategies.append(
                Strategy(
                    label: run.label, strategy: run.strategy.rawValue, feedback: run.feedback, prompts: trees.count,
                    curve: curve,
                    rewards: trees.flatMap { t in t.scoredResponses.compactMap { $0.reward } },
                    meanRewardPerLayer: summary.meanRewardPerLayer,
                    meanBestByCategory: byCategory.mapValues { $0.reduce(0, +) / Double($0.count) },
                    constraintFollowed: followed,
                    promptTokens: run.summary.promptTokens, completionTokens: run.summary.completionTokens,
                    wallSeconds: run.summary.wallTimeSeconds,
                    meanBestWords: words.isEmpty ? 0 : words.reduce(0, +) / Double(words.count),
                    rubricAgreement: agreement, refinement: summary.refinement))
        }
        let base = runs.first { $0.label == baseline } ?? runs.first
        var pairs: [Pair] = []
        if let base {
            let baseTrees = Dictionary(uniqueKeysWithValues: base.trees.map { ($0.id, $0) })
            for run in runs where run.label != base.label {
                let outcomes = run.trees.compactMap { t -> WinRate.Outcome? in
                    guard common.contains(t.id), let a = t.best, let b = baseTrees[t.id]?.best else { return nil }
                    return WinRate.byReward(id: t.id, a: a, b: b)
                }
                guard !outcomes.isEmpty else { continue }
                let judge = judged["\(run.label)|\(base.label)"]
                pairs.append(
                    Pair(
                        a: run.label, b: base.label, prompts: outcomes.count,
                        byReward: interval(outcomes.map { $0.score }, bootstrap),
                        bestRewardDifference: interval(
                            run.trees.compactMap { t -> Double? in
                                guard common.contains(t.id), let a = t.best?.reward,
                                    let b = baseTrees[t.id]?.best?.reward
                                else { return nil }
                                return a - b
                            }, bootstrap),
                        judge: judge.map { j in interval(j.map { $0.score }, bootstrap) },
                        judgeOrderDisagreement: judge.map { j in
                            Double(j.filter { $0.ordersDisagree }.count) / Double(max(1, j.count))
                        },
                        judgeLengthControlled: judge.flatMap { WinRate.lengthControlled($0)?.rate },
                        meanWordsA: mean(outcomes.map { Double($0.lengthA) }),
                        meanWordsB: mean(outcomes.map { Double($0.lengthB) })))
            }
        }
        let views = order.compactMap { id -> ItemView? in
            guard let item = items[id] else { return nil }
            var byRun: [String: [NodeView]] = [:]
            for run in runs {
                guard let t = run.trees.first(where: { $0.id == id }) else { continue }
                byRun[run.label] = t.nodes.map { n in
                    NodeView(
                        id: n.id, parent: n.parentID, kind: n.kind.rawValue, layer: n.layer, reward: n.reward,
                        best: n.id == t.bestID, text: String(n.text.prefix(2000)))
                }
            }
            return ItemView(
                id: id, prompt: item.prompt, preference: item.preference?.text ?? "",
                category: item.preference?.category ?? "", runs: byRun)
        }
        return Evaluation(
            budget: budget, strategies: strategies, pairs: pairs, items: views,
            categories: Set(strategies.flatMap { $0.meanBestByCategory.keys }).sorted(),
            constraintKinds: Set(strategies.flatMap { $0.constraintFollowed.keys }).sorted())
    }

    /// How each reward part orders responses against the rubric's graded score, over pairs within a prompt.
    static func rubricAgreement(_ trees: [Tree], items: [String: PromptItem]) -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for t in trees {
            guard let constraints = items[t.id]?.preference?.constraints, !constraints.isEmpty else { continue }
            let nodes = t.scoredResponses
            let rubric = nodes.map { n in Rubric.check(n.text, against: constraints).map(\.score).reduce(0, +) }
            var parts = Set(
                nodes.flatMap { ($0.rewards ?? [:]).keys.filter { !$0.contains("/") && !$0.contains(":") } })
            if parts.isEmpty { parts = ["reward"] }
            for part in parts {
                func value(_ n: Node) -> Double? { part == "reward" ? n.reward : n.rewards?[part] }
                var v = out[part] ?? [0, 0]
                for i in nodes.indices {
                    for j in nodes.indices where j > i && rubric[i] != rubric[j] {
                        guard let a = value(nodes[i]), let b = value(nodes[j]) else { continue }
                        v[0] += a == b ? 1 : ((a > b) == (rubric[i] > rubric[j]) ? 2 : 0)
                        v[1] += 1
                    }
                }
                out[part] = v
            }
        }
        return out.filter { $0.value[1] > 0 }
    }

    static func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }

    static func interval(_ values: [Double], _ b: Bootstrap) -> Interval {
        let ci = b.meanInterval(values)
        let m = mean(values)
        return Interval(mean: m, low: ci?.low ?? m, high: ci?.high ?? m)
    }
}
