import Foundation
import PRSCore
import PRSStore

/// `LOOP/summary.json`: per chain, one entry per iteration (0 being the starting policy), made
/// from the loop store's stage outcomes. Times are summed over every process that worked on a stage.
public struct LoopSummary: Sendable, Codable, Hashable {
    public struct Entry: Sendable, Codable, Hashable {
        public var iteration: Int
        public var policy: String
        public var adapter: String?
        /// Prompts sampled, the selected examples and their mean reward, improving pairs.
        public var samplePrompts: Int?
        public var sampleMeanBestReward: Double?
        public var improvingPairs: Int?
        /// Refinement success on the sampled prompts (share beating their draft, mean reward change, intervals).
        public var refinementSuccess: RefinementSuccess.Figure?
        public var trainExamples: Int
        public var sftExamples: Int?
        public var refineExamples: Int?
        public var dpoPairs: Int?
        public var selectedMeanReward: Double?
        public var trainLoss: Double?
        public var trainLosses: [Double]?
        public var evalMeanReward: Double?
        public var evalMeanRewardCI: [Double]?
        public var evalGreedyReward: Double?
        public var evalGreedyRewardCI: [Double]?
        public var evalBestOfN: Double?
        public var winRateVsBase: Double?
        public var winRateVsBaseCI: [Double]?
        /// The mean sample reward's gain over iteration 0, paired over prompts, with its interval.
        public var gainVsBase: Double?
        public var gainVsBaseCI: [Double]?
        public var judgeWinRateVsBase: Double?
        public var eval: PolicyScore?
        /// Generated tokens of sampling and evaluation.
        public var sampleTokens: Int?
        public var evalTokens: Int?
        /// Seconds per stage, and in all.
        public var stageSeconds: [String: Double]
        public var seconds: Double

        enum CodingKeys: String, CodingKey {
            case iteration, policy, adapter, eval, seconds
            case samplePrompts = "sample_prompts"
            case sampleMeanBestReward = "sample_mean_best_reward"
            case improvingPairs = "improving_pairs"
            case refinementSuccess = "refinement_success"
            case trainExamples = "train_examples"
            case sftExamples = "sft_examples"
            case refineExamples = "refine_examples"
            case dpoPairs = "dpo_pairs"
            case selectedMeanReward = "selected_mean_reward"
            case trainLoss = "train_loss"
            case trainLosses = "train_losses"
            case evalMeanReward = "eval_mean_reward"
            case evalMeanRewardCI = "eval_mean_reward_ci"
            case evalGreedyReward = "eval_greedy_reward"
            case evalGreedyRewardCI = "eval_greedy_reward_ci"
            case evalBestOfN = "eval_best_of_n"
            case winRateVsBase = "win_rate_vs_base"
            case winRateVsBaseCI = "win_rate_vs_base_ci"
            case gainVsBase = "gain_vs_base"
            case gainVsBaseCI = "gain_vs_base_ci"
            case judgeWinRateVsBase = "judge_win_rate_vs_base"
            case sampleTokens = "sample_tokens"
            case evalTokens = "eval_tokens"
            case stageSeconds = "stage_seconds"
        }

        /// Takes an evaluation's figures.
        public mutating func apply(_ score: PolicyScore) {
            eval = score
            evalMeanReward = score.meanReward.mean
            evalMeanRewardCI = [score.meanReward.low, score.meanReward.high]
            evalGreedyReward = score.greedyReward?.mean
            evalGreedyRewardCI = score.greedyReward.map { [$0.low, $0.high] }
            evalBestOfN = score.bestOfN.last?.reward.mean
            winRateVsBase = score.winRateVsBase?.mean
            winRateVsBaseCI = score.winRateVsBase.map { [$0.low, $0.high] }
            gainVsBase = score.gainVsBase?.mean
            gainVsBaseCI = score.gainVsBase.map { [$0.low, $0.high] }
            judgeWinRateVsBase = score.judgeWinRateVsBase?.mean
            evalTokens = score.completionTokens
        }
    }

    public var chains: [String: [Entry]]
    /// The chains in the loop's order.
    public var order: [String]
    public var iterations: Int
    /// Stages done and in all.
    public var stagesDone: Int
    public var stages: Int

    enum CodingKeys: String, CodingKey {
        case chains, order, iterations
        case stagesDone = "stages_done"
        case stages
    }

    /// The summary as the store has it now (a loop in progress has its finished iterations).
    public static func make(store: LoopStore, settings: LoopSettings, basePolicy: PolicySpec) throws -> LoopSummary {
        let stored = Dictionary(uniqueKeysWithValues: try store.stages().map { ($0.key, $0) })
        let decoder = JSONDecoder()
        func result<T: Decodable>(_ key: StageKey, _ type: T.Type) -> T? {
            guard let s = stored[key], s.state == .done, let d = s.result else { return nil }
            return try? decoder.decode(T.self, from: d)
        }
        let baseKey = StageKey(chain: LoopPlan.baseChain, iteration: 0, stage: .evaluate)
        var chains: [String: [Entry]] = [:]
        for c in settings.chains {
            var entries: [Entry] = []
            var base = Entry(
                iteration: 0, policy: basePolicy.description, trainExamples: 0, stageSeconds: [:], seconds: 0)
            if let score = result(baseKey, PolicyScore.self) {
                base.apply(score)
                base.stageSeconds["evaluate"] = stored[baseKey]?.seconds
                base.seconds = stored[baseKey]?.seconds ?? 0
                entries.append(base)
            }
            var previous: TrainedPolicy?
            for k in stride(from: 1, through: settings.iterations, by: 1) {
                let key = { (s: LoopStage) in StageKey(chain: c.label, iteration: k, stage: s) }
                guard stored[key(.sample)] != nil else { break }
                var e = Entry(iteration: k, policy: "", trainExamples: 0, stageSeconds: [:], seconds: 0)
                for s in LoopStage.allCases {
                    if let st = stored[key(s)] { e.stageSeconds[s.rawValue] = st.seconds }
                }
                e.seconds = e.stageSeconds.values.reduce(0, +)
                if let s = result(key(.sample), LoopRunner.SampleResult.self) {
                    e.samplePrompts = s.prompts
                    e.sampleMeanBestReward = s.meanBestReward
                    e.improvingPairs = s.improvingPairs
                    e.refinementSuccess = s.refinement
                    e.sampleTokens = s.completionTokens
                }
                if let s = result(key(.select), LoopRunner.SelectResult.self) {
                    e.sftExamples = s.sft
                    e.refineExamples = s.refine
                    e.dpoPairs = s.dpo
                    e.selectedMeanReward = s.meanReward
                }
                if let t = result(key(.train), TrainedPolicy.self) {
                    e.policy = t.policy.description
                    e.adapter = t.adapter
                    e.trainExamples = t.examples
                    e.trainLoss = t.finalLoss
                    e.trainLosses = t.losses.isEmpty ? nil : t.losses
                    previous = t
                } else {
                    e.policy = previous?.policy.description ?? ""
                }
                if let score = result(key(.evaluate), PolicyScore.self) { e.apply(score) }
                entries.append(e)
            }
            chains[c.label] = entries
        }
        return LoopSummary(
            chains: chains, order: settings.chains.map(\.label), iterations: settings.iterations,
            stagesDone: stored.values.filter { $0.state == .done }.count,
            stages: LoopPlan.stages(chains: settings.chains.map(\.label), iterations: settings.iterations).count)
    }

    public static func write(_ s: LoopSummary, to root: URL) throws {
        try RunFiles.write(
            try RunFiles.prettyJSON(s), to: root.appendingPathComponent("summary.json"), what: "the loop summary")
    }

    public static func load(_ root: URL) throws -> LoopSummary {
        let url = root.appendingPathComponent("summary.json")
        do { return try JSONDecoder().decode(LoopSummary.self, from: Data(contentsOf: url)) } catch {
            throw RunError("\(url.path): cannot read the loop summary: \(error)")
        }
    }
}
