import Foundation
import Logging
import PRSCore
import PRSStore

/// Where a loop stands: the stage in work and its items (or steps), passed to the progress callback.
public struct LoopProgress: Sendable {
    public var stage: StageKey
    /// The stage's position among all of the loop's stages (1-based) and their number.
    public var index: Int
    public var stages: Int
    /// Items (sampling, evaluation) or optimizer steps (training) done and in all.
    public var done: Int
    public var total: Int
    public var unit: String
    public var etaSeconds: Double?

    /// `[prs 2/3 sample · stage 7/25] 45/128 items · ETA 1m20s`
    public var line: String {
        let head =
            stage.iteration == 0
            ? "starting policy \(stage.stage.rawValue)"
            : "\(stage.chain) iteration \(stage.iteration) \(stage.stage.rawValue)"
        var s = "[\(head) · stage \(index)/\(stages)]"
        if total > 0 { s += " \(done)/\(total) \(unit)" }
        if let eta = etaSeconds { s += " · ETA " + RunProgress.duration(eta) }
        return s
    }
}

/// The loop stopped before its end because it was cancelled (a signal); run it again to continue.
public struct LoopInterrupted: Error, Sendable, CustomStringConvertible {
    public var stage: StageKey
    public var description: String {
        "interrupted in \(stage); every finished stage and the stage's own progress are kept: run the same command "
            + "to resume"
    }
}

/// A stage that failed; the loop stops there and a new run retries it.
public struct LoopStageFailed: Error, Sendable, CustomStringConvertible {
    public var stage: StageKey
    public var reason: String
    public var description: String { "\(stage) failed: \(reason)" }
}

/// The offline RL loop of the paper: for each chain (a sampling strategy) and iteration k,
/// sample the training prompts with π(k−1), select training data from the trees, train π(k),
/// and evaluate it on the held-out prompts; iteration 0 evaluates the starting policy.
///
/// Every stage's state is in `LOOP/loop.sqlite` and its outputs under `LOOP/CHAIN/iter-K/`:
/// a finished stage is never redone, and an interrupted one continues from its own files
/// (a sample run's store, a trainer's checkpoint), so a killed loop ends as an uninterrupted one.
public struct LoopRunner: Sendable {
    public var settings: LoopSettings
    public var trainPrompts: [PromptItem]
    public var evalPrompts: [PromptItem]
    /// The starting policy's spec.
    public var basePolicy: PolicySpec
    /// Builds the generator of a policy spec (the starting one, or one a trainer returned).
    public var makePolicy: @Sendable (PolicySpec) throws -> any TextGenerator
    public var reward: any RewardModel
    /// A fixed feedback source; nil lets each policy critique its own drafts.
    public var feedback: (any FeedbackSource)?
    public var trainer: any PolicyTrainer
    /// A pairwise judge of greedy answers against the starting policy's (optional).
    public var judge: (any TextGenerator)?
    public var concurrency: Int
    public var maxAttempts = 3
    public var prsVersion = ""
    public var logger: Logger

    public init(
        settings: LoopSettings, trainPrompts: [PromptItem], evalPrompts: [PromptItem], basePolicy: PolicySpec,
        makePolicy: @escaping @Sendable (PolicySpec) throws -> any TextGenerator, reward: any RewardModel,
        feedback: (any FeedbackSource)?, trainer: any PolicyTrainer, judge: (any TextGenerator)? = nil,
        concurrency: Int, logger: Logger
    ) {
        self.settings = settings
        self.trainPrompts = trainPrompts
        self.evalPrompts = evalPrompts
        self.basePolicy = basePolicy
        self.makePolicy = makePolicy
        self.reward = reward
        self.feedback = feedback
        self.trainer = trainer
        self.judge = judge
        self.concurrency = concurrency
        self.logger = logger
    }

    // MARK: - Layout

    public static func iterationDirectory(_ root: URL, chain: String, iteration: Int) -> URL {
        iteration == 0
            ? root.appendingPathComponent("iter-0")
            : root.appendingPathComponent(chain).appendingPathComponent("iter-\(iteration)")
    }

    public static func directory(_ root: URL, _ key: StageKey) -> URL {
        let it = iterationDirectory(root, chain: key.chain, iteration: key.iteration)
        switch key.stage {
        case .sample: return it.appendingPathComponent("sample")
        case .select: return it.appendingPathComponent("data")
        case .train: return it
        case .evaluate: return it.appendingPathComponent("eval")
        }
    }

    // MARK: - Stage outcomes (JSON in the store)

    public struct SampleResult: Sendable, Codable, Hashable {
        public var prompts: Int
        public var meanBestReward: Double
        public var improvingPairs: Int
        /// Refinements against their drafts on the sampled prompts (nil for strategies without
        /// refinements, and in stages stored before prs recorded it).
        public var refinement: RefinementSuccess.Figure?
        public var promptTokens: Int
        public var completionTokens: Int
    }

    public struct SelectResult: Sendable, Codable, Hashable {
        public var sft: Int
        public var refine: Int
        public var dpo: Int
        /// Mean reward of the selected SFT responses.
        public var meanReward: Double?
        public var skipped: [String: Int]
    }

    // MARK: - Running

    /// Runs (or resumes) every stage not yet done, then writes `summary.json`.
    public func run(
        directory root: URL, store: LoopStore, onProgress: @escaping @Sendable (LoopProgress) -> Void = { _ in }
    ) async throws -> LoopSummary {
        let plan = LoopPlan.stages(chains: settings.chains.map(\.label), iterations: settings.iterations)
        let done = Set(try store.stages().filter { $0.state == .done }.map(\.key))
        if !done.isEmpty {
            logger.notice(
                "resuming loop",
                metadata: ["directory": "\(root.path)", "stages_done": "\(done.count)", "of": "\(plan.count)"])
        }
        try store.log(done.isEmpty ? "started" : "resumed", detail: "\(plan.count - done.count) stages to do")
        for (i, key) in plan.enumerated() where !done.contains(key) {
            if Task.isCancelled { throw LoopInterrupted(stage: key) }
            let report: @Sendable (Int, Int, String, Double?) -> Void = { d, t, unit, eta in
                onProgress(
                    LoopProgress(
                        stage: key, index: i + 1, stages: plan.count, done: d, total: t, unit: unit, etaSeconds: eta))
            }
            report(0, 0, "", nil)
            logger.notice("stage", metadata: ["stage": "\(key)", "number": "\(i + 1)/\(plan.count)"])
            try store.begin(key)
            let started = ContinuousClock.now
            let seconds = { SampleRunner.seconds(ContinuousClock.now - started) }
            do {
                let result = try await runStage(key, root: root, store: store, report: report)
                try store.finish(key, result: result, seconds: seconds())
            } catch let e as LoopInterrupted {
                try? store.addSeconds(key, seconds())
                try? store.log("interrupted", detail: "\(key)")
                throw e
            } catch let e as StoreError {
                throw e
            } catch {
                if Task.isCancelled {
                    try? store.addSeconds(key, seconds())
                    throw LoopInterrupted(stage: key)
                }
                try store.fail(key, error: "\(error)", seconds: seconds())
                throw LoopStageFailed(stage: key, reason: "\(error)")
            }
            try LoopSummary.write(
                try LoopSummary.make(store: store, settings: settings, basePolicy: basePolicy), to: root)
        }
        let summary = try LoopSummary.make(store: store, settings: settings, basePolicy: basePolicy)
        try LoopSummary.write(summary, to: root)
        try store.log("finished")
        return summary
    }

    func runStage(
        _ key: StageKey, root: URL, store: LoopStore, report: @escaping @Sendable (Int, Int, String, Double?) -> Void
    ) async throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        switch key.stage {
        case .sample: return try encoder.encode(try await sample(key, root: root, store: store, report: report))
        case .select: return try encoder.encode(try await select(key, root: root, store: store))
        case .train: return try encoder.encode(try await train(key, root: root, store: store, report: report))
        case .evaluate: return try encoder.encode(try await evaluate(key, root: root, store: store, report: report))
        }
    }

    func chain(_ label: String) -> LoopSettings.Chain {
        settings.chains.first { $0.label == label }!
    }

    /// π(k): the starting policy for k = 0, else what training iteration k made.
    func policy(chain: String, iteration: Int, store: LoopStore) throws -> TrainedPolicy {
        if iteration == 0 { return TrainedPolicy(policy: basePolicy, examples: 0) }
        guard let s = try store.stage(StageKey(chain: chain, iteration: iteration, stage: .train)), s.state == .done,
            let data = s.result
        else {
            throw LoopStageFailed(
                stage: StageKey(chain: chain, iteration: iteration, stage: .train), reason: "not trained yet")
        }
        return try JSONDecoder().decode(TrainedPolicy.self, from: data)
    }

    /// Runs a strategy over prompts into a run directory (resuming it), recording what a run directory records.
    func sampleRun(
        _ config: StrategyConfig, policy spec: PolicySpec, items: [PromptItem], directory: URL, loopStage: String,
        report: @escaping @Sendable (Int, Int, String, Double?) -> Void
    ) async throws -> RunOutcome {
        let store = try RunStore.open(directory: directory)
        let settings = RunSettings(
            strategy: config, policy: spec.description, reward: reward.identity, feedback: feedback?.name ?? "self",
            loopStage: loopStage)
        if try store.info() == nil {
            try store.saveInfo(
                RunInfo(
                    settings: settings.fields, prsVersion: prsVersion, policy: spec.description,
                    reward: reward.identity,
                    feedback: feedback?.name ?? "self", files: [:]))
        }
        let generator = try makePolicy(spec)
        let sampler = TreeSampler(config: config, policy: generator, feedback: feedback, reward: reward)
        let runner = SampleRunner(sampler: sampler, concurrency: concurrency, maxAttempts: maxAttempts, logger: logger)
        let outcome = try await runner.run(
            items: items.enumerated().map { ($0.offset, $0.element) }, store: store, directory: directory
        ) { p in
            report(p.resumed + p.done + p.failed, p.total, "items", p.etaSeconds)
        }
        if outcome.interrupted {
            // The run's store could not be written: a failure of this stage (named by the caller), not an interruption.
            if let reason = outcome.stopReason { throw RunError(reason) }
            throw CancellationError()
        }
        if !outcome.failures.isEmpty {
            throw RunError(
                "\(outcome.failures.count) of \(items.count) prompts failed in \(directory.path); first: "
                    + "\(outcome.failures[0].id): \(outcome.failures[0].error). Run the loop again to retry them"
            )
        }
        return outcome
    }

    func sample(
        _ key: StageKey, root: URL, store: LoopStore, report: @escaping @Sendable (Int, Int, String, Double?) -> Void
    ) async throws -> SampleResult {
        var config = chain(key.chain).strategy
        config.runSeed = settings.seed &+ UInt64(key.iteration)
        let policy = try policy(chain: key.chain, iteration: key.iteration - 1, store: store)
        let items = settings.trainingPrompts(trainPrompts, iteration: key.iteration)
        let outcome = try await sampleRun(
            config, policy: policy.policy, items: items, directory: Self.directory(root, key),
            loopStage: "\(key)", report: report)
        let s = outcome.summary
        return SampleResult(
            prompts: s.prompts, meanBestReward: s.meanBestReward ?? 0, improvingPairs: s.improvingPairs,
            refinement: s.refinement?.all, promptTokens: s.promptTokens, completionTokens: s.completionTokens)
    }

    /// The data files of an iteration's selection.
    public static func dataFiles(_ root: URL, chain: String, iteration: Int) -> (sft: URL, refine: URL, dpo: URL) {
        let d = directory(root, StageKey(chain: chain, iteration: iteration, stage: .select))
        return (
            d.appendingPathComponent("sft.jsonl"), d.appendingPathComponent("refine.jsonl"),
            d.appendingPathComponent("dpo.jsonl")
        )
    }

    func select(_ key: StageKey, root: URL, store loop: LoopStore) async throws -> SelectResult {
        let sampleDir = Self.directory(root, StageKey(chain: key.chain, iteration: key.iteration, stage: .sample))
        let store = try RunStore.read(directory: sampleDir)
        let kind = chain(key.chain).strategy.kind
        let trees = try store.trees(strategy: kind.rawValue)
        let items = Dictionary(trainPrompts.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let s = settings.select
        var options = Exports.Options()
        options.minReward = s.minReward
        if case .topK(let k) = s.sft { options.topK = k }
        options.minMargin = s.minMargin
        options.seed = settings.seed
        options.templates = chain(key.chain).strategy.templates
        options.refinePairs = chain(key.chain).refinePairs ?? s.refinePairs
        options.syntheticMargin = s.syntheticMargin
        options.syntheticFeedback = s.syntheticFeedback
        options.concurrency = concurrency
        let files = Self.dataFiles(root, chain: key.chain, iteration: key.iteration)
        try FileManager.default.createDirectory(
            at: files.sft.deletingLastPathComponent(), withIntermediateDirectories: true)
        let sft = try await Exports.export(.sft, trees: trees, items: items, options: options)
        try RunFiles.write(sft.data, to: files.sft, what: "the SFT data")
        var result = SelectResult(sft: sft.written, refine: 0, dpo: 0, meanReward: nil, skipped: sft.skipped)
        let rewards = trees.flatMap { t in
            Exports.ranked(t).filter { s.minReward == nil || $0.reward! >= s.minReward! }.prefix(options.topK)
                .compactMap(\.reward)
        }
        result.meanReward = rewards.isEmpty ? nil : rewards.reduce(0, +) / Double(rewards.count)
        if chain(key.chain).refinePairs != nil || s.refines(kind) {
            // The policy's own feedback on synthetic drafts its trees never critiqued: π(k−1), which sampled them.
            var writer: (any FeedbackSource)?
            if options.refinePairs != .improving && options.syntheticFeedback == .policy {
                let sampled = try policy(chain: key.chain, iteration: key.iteration - 1, store: loop)
                writer = GeneratorFeedback(
                    generator: try makePolicy(sampled.policy), templates: options.templates,
                    parameters: chain(key.chain).strategy.feedbackSampling)
            }
            let r = try await Exports.export(.refine, trees: trees, items: items, options: options, feedback: writer)
            try RunFiles.write(r.data, to: files.refine, what: "the refinement data")
            result.refine = r.written
        } else {
            try? FileManager.default.removeItem(at: files.refine)
        }
        if s.dpo {
            let r = try await Exports.export(.dpo, trees: trees, items: items, options: options)
            try RunFiles.write(r.data, to: files.dpo, what: "the preference data")
            result.dpo = r.written
        } else {
            try? FileManager.default.removeItem(at: files.dpo)
        }
        return result
    }

    func train(
        _ key: StageKey, root: URL, store: LoopStore, report: @escaping @Sendable (Int, Int, String, Double?) -> Void
    ) async throws -> TrainedPolicy {
        let previous = try policy(chain: key.chain, iteration: key.iteration - 1, store: store)
        let iterations = settings.initFrom == .base ? Array(1...key.iteration) : [key.iteration]
        var sft: [String] = []
        var refine: [String] = []
        var dpo: [String] = []
        var count = 0
        for k in iterations {
            guard let s = try store.stage(StageKey(chain: key.chain, iteration: k, stage: .select)), let data = s.result
            else { continue }
            let selected = try JSONDecoder().decode(SelectResult.self, from: data)
            let f = Self.dataFiles(root, chain: key.chain, iteration: k)
            if selected.sft > 0 { sft.append(f.sft.path) }
            if selected.refine > 0 { refine.append(f.refine.path) }
            if selected.dpo > 0 { dpo.append(f.dpo.path) }
            count += selected.sft + selected.refine + selected.dpo
        }
        guard count > 0 else {
            logger.warning("nothing selected to train on; the policy stays as it was", metadata: ["stage": "\(key)"])
            return TrainedPolicy(policy: previous.policy, adapter: previous.adapter, examples: 0)
        }
        let fromPrevious = settings.initFrom == .previous && key.iteration > 1
        let job = TrainingJob(
            chain: key.chain, iteration: key.iteration, sft: sft, refine: refine, dpo: dpo, base: basePolicy,
            initPolicy: fromPrevious ? previous.policy : nil, initAdapter: fromPrevious ? previous.adapter : nil,
            directory: Self.directory(root, key).path, seed: settings.seed &+ UInt64(key.iteration))
        try FileManager.default.createDirectory(atPath: job.directory, withIntermediateDirectories: true)
        let started = ContinuousClock.now
        return try await trainer.train(job) { p in
            let elapsed = SampleRunner.seconds(ContinuousClock.now - started)
            let eta = p.step > 0 ? elapsed / Double(p.step) * Double(p.steps - p.step) : nil
            report(p.step, p.steps, "steps", eta)
        }
    }

    /// The evaluation's sample and greedy runs of a policy.
    func evaluationRuns(_ key: StageKey, root: URL) -> (samples: URL, greedy: URL) {
        let d = Self.directory(root, key)
        return (d, d.appendingPathComponent("greedy"))
    }

    func evaluate(
        _ key: StageKey, root: URL, store: LoopStore, report: @escaping @Sendable (Int, Int, String, Double?) -> Void
    ) async throws -> PolicyScore {
        let e = settings.evaluate
        let policy = try policy(chain: key.chain, iteration: key.iteration, store: store)
        let runs = evaluationRuns(key, root: root)
        let samples = try StrategyConfig(kind: .prand, budget: e.samples, sampling: e.sampling, runSeed: settings.seed)
        _ = try await sampleRun(
            samples, policy: policy.policy, items: evalPrompts, directory: runs.samples, loopStage: "\(key)",
            report: report)
        var greedyTrees: [Tree] = []
        if e.greedy {
            let greedy = try StrategyConfig(kind: .greedy, budget: 1, sampling: e.sampling, runSeed: settings.seed)
            _ = try await sampleRun(
                greedy, policy: policy.policy, items: evalPrompts, directory: runs.greedy, loopStage: "\(key) greedy",
                report: report)
            greedyTrees = try RunStore.read(directory: runs.greedy).trees(strategy: StrategyKind.greedy.rawValue)
        }
        let sampleTrees = try RunStore.read(directory: runs.samples).trees(strategy: StrategyKind.prand.rawValue)
        let items = Dictionary(evalPrompts.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var base: (samples: [Tree], greedy: [Tree])?
        var judged: [WinRate.Outcome]?
        if key.iteration > 0 {
            let baseRuns = evaluationRuns(
                StageKey(chain: LoopPlan.baseChain, iteration: 0, stage: .evaluate), root: root)
            let baseSamples = try RunStore.read(directory: baseRuns.samples).trees(
                strategy: StrategyKind.prand.rawValue)
            let baseGreedy =
                e.greedy
                ? try RunStore.read(directory: baseRuns.greedy).trees(strategy: StrategyKind.greedy.rawValue) : []
            base = (baseSamples, baseGreedy)
            if let judge, e.greedy {
                let summary = { (t: [Tree]) in
                    StrategySummary(strategy: "greedy", budget: 1, trees: t, failed: 0, wallTimeSeconds: 0)
                }
                let a = StrategyRun(
                    label: "\(key.chain)-\(key.iteration)", strategy: .greedy, feedback: "", budget: 1,
                    trees: greedyTrees, summary: summary(greedyTrees))
                let b = StrategyRun(
                    label: "base", strategy: .greedy, feedback: "", budget: 1, trees: baseGreedy,
                    summary: summary(baseGreedy))
                judged = try await PairwiseJudge(generator: judge).compare(a, b, items: items)
            }
        }
        var score = PolicyScore.compute(
            samples: sampleTrees, greedy: greedyTrees, base: base, items: items, judged: judged)
        if let n = e.search, key.chain == LoopPlan.baseChain || e.searchChains?.contains(key.chain) ?? true {
            // PRS and PRand at the same budget, seeds and prompts, with this policy (resumable runs of their own).
            let d = Self.directory(root, key)
            var trees: [StrategyKind: [Tree]] = [:]
            for kind in [StrategyKind.prand, .prs] {
                let config = try StrategyConfig(
                    kind: kind, budget: n, sampling: settings.chains.first?.strategy.sampling ?? e.sampling,
                    runSeed: settings.seed)
                let dir = d.appendingPathComponent("search-\(kind.rawValue)-\(n)")
                _ = try await sampleRun(
                    config, policy: policy.policy, items: evalPrompts, directory: dir,
                    loopStage: "\(key) \(kind.rawValue)@\(n)", report: report)
                trees[kind] = try RunStore.read(directory: dir).trees(strategy: kind.rawValue)
            }
            score.search = PolicyScore.Search(budget: n, prs: trees[.prs] ?? [], prand: trees[.prand] ?? [])
        }
        return score
    }
}
