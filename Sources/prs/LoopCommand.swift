import ArgumentParser
import Foundation
import Logging
import PRSBackends
import PRSCore
import PRSRunner
import PRSStore

struct Loop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "The iterative offline-RL loop: sample with the policy, select the best, train, evaluate, repeat; one "
            + "chain per strategy.",
        discussion: """
            For each strategy (a chain; same seeds and budget) and iteration k: sample the training prompts \
            with π(k−1), select the best responses (and, for PRS, the improving refinements), train π(k) \
            (a LoRA adapter, or an external trainer: trainer: {command: "…"}), and evaluate it on the held-out \
            prompts; iteration 0 evaluates the starting policy. Everything stays in LOOP (loop.sqlite, \
            CHAIN/iter-K/{sample,data,eval}, adapter.gguf, train.jsonl, summary.json). Killed at any point, the \
            same command continues where it stopped; other settings on an existing LOOP are refused unless \
            --force (a larger --iterations extends a finished loop). Then: prs report LOOP --out LOOP/report.html.

            Example:
              prs loop --config examples/loop-small.yaml --out runs/loop
            """)

    @OptionGroup var options: LoopOptions

    func run() async throws {
        let logger = Logger(label: "prs.loop")
        let config = try LoopConfig.resolve(options)
        let trainSet = try PromptLoading.load(config.trainPrompts, skipInvalid: false, logger: logger)
        let evalSet = try PromptLoading.load(config.evalPrompts, skipInvalid: false, logger: logger)
        let heldOut = Set(evalSet.items.map(\.id))
        if let clash = trainSet.items.first(where: { heldOut.contains($0.id) }) {
            throw CLIFailure.badInput(
                "\(config.evalPrompts): prompt \(clash.id) is also in \(config.trainPrompts); held-out prompts must "
                    + "not be trained on"
            )
        }
        let root = URL(fileURLWithPath: config.out)
        let store: LoopStore
        do { store = try LoopStore.open(directory: root) } catch let e as StoreError {
            throw CLIFailure.badInput(e.description)
        }
        try check(store: store, config: config, logger: logger)

        let options = BackendOptions(
            concurrency: config.concurrency, timeout: 300, retries: 4, template: config.template, contextTokens: 4096,
            threads: config.threads, maxBatch: config.maxBatch, cacheTokens: config.cacheTokens)
        let base: any TextGenerator
        let basePolicy: PolicySpec
        basePolicy = try PolicySpec.parse(config.model)
        base = try Backends.generator(basePolicy, options: options, logger: logger)
        let reward: any RewardModel
        reward = try Backends.reward(
            try RewardSpec.read(config.reward), policy: { base }, options: options, logger: logger)
        let feedback: (any FeedbackSource)?
        switch try? FeedbackSpec.parse(config.feedback) {
        case .selfFeedback?: feedback = nil
        case .verifier?: feedback = VerifierFeedback()
        default:
            throw CLIFailure.badInput(
                "feedback \"\(config.feedback)\": prs loop takes self (each policy critiques itself) or verifier")
        }
        var trainer: any PolicyTrainer
        let baseModelPath: String
        switch basePolicy {
        case .embedded(let path, _): baseModelPath = path
        case .openAI: baseModelPath = config.model
        }
        if let command = config.trainerCommand {
            trainer = CommandPolicyTrainer(command: command, baseModel: baseModelPath)
        } else {
            trainer = EmbeddedPolicyTrainer(
                model: baseModelPath, settings: config.train, template: config.template,
                maxLength: config.trainMaxLength)
        }
        // Each iteration's adapter loaded into a running server, and its policy sampled there.
        var served: RuntimeAdapterServer?
        if let s = config.serve {
            let key = s.apiKeyEnv.flatMap { ProcessInfo.processInfo.environment[$0] }
            if let env = s.apiKeyEnv, key == nil { throw CLIFailure.badInput("serve.api_key_env: $\(env) is not set") }
            let server = RuntimeAdapterServer(
                baseURL: s.url, apiKey: key, format: s.format, baseModel: baseModelPath,
                namePrefix: s.namePrefix ?? root.lastPathComponent + "-")
            trainer = ServedAdapterTrainer(inner: trainer, server: server)
            served = server
        }
        var judge: (any TextGenerator)?
        if let j = config.judge {
            do {
                judge =
                    j == "policy"
                    ? base : try Backends.generator(try PolicySpec.parse(j), options: options, logger: logger)
            } catch let e as SpecError {
                throw CLIFailure.badInput("evaluate.judge: \(e.description)")
            }
        }
        var settings = LoopSettings(
            chains: try config.strategies.map { s in
                var strategy = try StrategyConfig(
                    kind: s.kind, budget: config.budget, split: s.split, sampling: config.sampling, runSeed: config.seed
                )
                strategy.templates = .standard
                return LoopSettings.Chain(label: s.label, strategy: strategy, refinePairs: s.refine)
            }, iterations: config.iterations)
        settings.promptsPerIteration = config.promptsPerIteration
        settings.select = config.select
        settings.initFrom = config.initFrom
        settings.evaluate = config.evaluate
        settings.seed = config.seed
        let servedAdapters = served
        var runner = LoopRunner(
            settings: settings, trainPrompts: trainSet.items, evalPrompts: evalSet.items, basePolicy: basePolicy,
            makePolicy: { spec in
                let generator = try Backends.generator(spec, options: options, logger: logger)
                guard let served = servedAdapters, let name = served.adapterName(of: spec),
                    let at = name.range(of: "-iter-", options: .backwards),
                    let k = Int(name[at.upperBound...])
                else { return generator }
                let chain = String(name[name.index(name.startIndex, offsetBy: served.namePrefix.count)..<at.lowerBound])
                let adapter = LoopRunner.iterationDirectory(root, chain: chain, iteration: k).appendingPathComponent(
                    "adapter.gguf"
                ).path
                return ServedAdapterGenerator(inner: generator) { try await served.load(name: name, adapter: adapter) }
            },
            reward: reward, feedback: feedback, trainer: trainer, judge: judge, concurrency: config.concurrency,
            logger: logger)
        runner.prsVersion = PRS.configuration.version
        logger.notice(
            "loop",
            metadata: [
                "chains": "\(settings.chains.map(\.label).joined(separator: ","))",
                "iterations": "\(settings.iterations)",
                "train_prompts": "\(trainSet.items.count)",
                "per_iteration": "\(config.promptsPerIteration.map(String.init) ?? "all")",
                "eval_prompts": "\(evalSet.items.count)", "budget": "\(config.budget)", "reward": "\(reward.identity)",
                "trainer": "\(trainer.identity.prefix(60))", "out": "\(config.out)",
            ])
        let display = LoopProgressDisplay(logger: logger)
        let summary: LoopSummary
        do {
            let r = runner
            summary = try await Interruptible.run {
                try await r.run(directory: root, store: store) { display.update($0) }
            }
        } catch let e as LoopInterrupted {
            display.finish()
            throw CLIFailure(code: Exit.interrupted, description: e.description)
        } catch let e as LoopStageFailed {
            display.finish()
            throw CLIFailure.failed(
                "\(e.description). Finished stages are kept; fix the cause and run the same command to continue")
        } catch let e as StoreError {
            display.finish()
            throw CLIFailure.failed(e.description)
        }
        display.finish()
        print(LoopTable.render(summary))
        print("wrote \(config.out)/summary.json; next: prs report \(config.out) --out \(config.out)/report.html")
    }

    /// Records the settings of a new loop; refuses an existing loop's other settings (naming them) unless --force.
    func check(store: LoopStore, config: LoopConfig, logger: Logger) throws {
        var files: [String: String] = [:]
        for f in [config.trainPrompts, config.evalPrompts] {
            if let data = FileManager.default.contents(atPath: f) {
                files[URL(fileURLWithPath: f).lastPathComponent] = ContentHash.fnv1a64(data)
            }
        }
        let now = config.fingerprint(files: files)
        guard let stored = try store.settings() else { return try store.saveSettings(now) }
        let keys = RunSettings.differences(stored, now)
        guard !keys.isEmpty else { return }
        let what = keys.map { "\($0): \(RunSetup.show(stored[$0])) → \(RunSetup.show(now[$0]))" }.joined(
            separator: "; ")
        if options.force {
            logger.warning("continuing a loop with other settings (--force)", metadata: ["changed": "\(what)"])
            return try store.saveSettings(now)
        }
        throw CLIFailure.badInput(
            "\(config.out) was started with other settings (\(what)); run with the same settings to resume, choose "
                + "another --out, or pass --force"
        )
    }
}

struct LoopOptions: ParsableArguments {
    @Option(
        help:
            "YAML loop config (model, train_prompts, eval_prompts, strategies, budget, select, train, evaluate, trainer, …)."
    ) var config: String?
    @Option(help: "The loop directory.") var out: String?
    @Option(help: "Iterations per chain (default 3); raising it extends a finished loop.") var iterations: Int?
    @Option(help: "Chains, comma-separated: prs, prand, rand, prs-nofeedback (default prs,rand).") var strategies:
        String?
    @Option(name: .customLong("train-prompts"), help: "JSONL training prompts.") var trainPrompts: String?
    @Option(name: .customLong("eval-prompts"), help: "JSONL held-out prompts.") var evalPrompts: String?
    @Option(help: "Prompts in flight at once while sampling (default 8).") var concurrency: Int?
    @Option(help: "Threads of the embedded engine and trainer (default: all cores).") var threads: Int?
    @Flag(help: "Continue a loop directory started with other settings (the new settings are recorded).") var force =
        false
}

/// Loop progress: chain, iteration and stage, with the stage's items or steps and ETA.
final class LoopProgressDisplay: LineProgress, @unchecked Sendable {
    func update(_ p: LoopProgress) {
        if p.total > 0 || terminal { show(p.line, done: p.done, total: p.total, group: p.index) }
    }
}

/// The loop's table: per chain and iteration, the held-out reward with its interval, the greedy
/// answer's reward, the win rate against the starting policy, the data trained on and the time.
enum LoopTable {
    static func render(_ s: LoopSummary) -> String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.3f", $0) } ?? "–" }
        func ci(_ v: Double?, _ c: [Double]?) -> String {
            guard let v else { return "–" }
            guard let c, c.count == 2 else { return f(v) }
            return String(format: "%.3f [%.3f, %.3f]", v, c[0], c[1])
        }
        var rows = [
            [
                "chain", "iter", "held-out reward [95% CI]", "gain vs iter 0 [95% CI]", "greedy", "win vs base",
                "refinements beating draft", "trained on", "loss", "seconds",
            ]
        ]
        for chain in s.order {
            for e in s.chains[chain] ?? [] {
                rows.append([
                    chain, "\(e.iteration)", ci(e.evalMeanReward, e.evalMeanRewardCI),
                    e.iteration == 0 ? "–" : LoopReport.gain(e.gainVsBase, e.gainVsBaseCI), f(e.evalGreedyReward),
                    e.winRateVsBase.map { String(format: "%.0f%%", $0 * 100) } ?? "–",
                    e.refinementSuccess?.rateText ?? "–", e.iteration == 0 ? "–" : "\(e.trainExamples)", f(e.trainLoss),
                    String(format: "%.0f", e.seconds),
                ])
            }
        }
        // With evaluate.search: PRS against PRand at equal budget with each iteration's policy.
        let searched = s.order.flatMap { s.chains[$0] ?? [] }.compactMap { $0.eval?.search }
        if let n = searched.first?.budget {
            rows[0].append("PRS − PRand @\(n) [95% CI]")
            var i = 1
            for chain in s.order {
                for e in s.chains[chain] ?? [] {
                    rows[i].append(
                        e.eval?.search.map {
                            LoopReport.gain($0.difference.mean, [$0.difference.low, $0.difference.high])
                        } ?? "–")
                    i += 1
                }
            }
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { r in
            zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
