import ArgumentParser
import Foundation
import Logging
import PRSBackends
import PRSCore
import PRSRunner
import PRSStore

struct Sample: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample one tree per prompt with a strategy, score it, and keep the best.",
        discussion: """
            Every node is committed to RUN/run.sqlite as soon as it is scored; RUN/trees.jsonl (every \
            node) and RUN/summary.json are written at the end. Running the same command again resumes: \
            finished prompts are skipped, half-built trees continue from their stored nodes, failed \
            prompts are retried. Settings come from --config (YAML, same names in snake_case) and \
            flags, flags winning; a run directory refuses other settings unless --force.

            Example:
              prs sample --prompts examples/prefs-train.jsonl --out runs/x --strategy prs --budget 8 --reward rubric
            """
    )

    @OptionGroup var options: SampleOptions

    func run() async throws {
        let logger = Logger(label: "prs.sample")
        let settings = try SampleSettings.resolve(flags: options)
        let job = try SampleJob.prepare(settings: settings, logger: logger)
        let backends = try Backends(settings: settings, logger: logger)
        let outcome = try await job.run(backends: backends)
        print(SummaryTable.render([outcome.summary]))
        if let r = SummaryTable.refinements([outcome.summary]) { print("\n" + r) }
        try SampleJob.report(outcome, settings: settings, items: job.items.count)
    }
}

/// The options of `prs sample`, shared by `prs compare`.
struct SampleOptions: ParsableArguments {
    @Option(help: "JSONL prompt file (prs or IFEval format).") var prompts: String?
    @Option(help: "Run directory to write.") var out: String?
    @Option(help: "YAML file with the same settings; flags override it.") var config: String?
    @Option(help: "rand, prand, greedy, prs or prs-nofeedback (default prs).") var strategy: String?
    @Option(help: "N: scored responses per prompt (default 8).") var budget: Int?
    @Option(help: "Responses per PRS layer, e.g. 4,4 or 2,2,2,2 (default N/2,N/2).") var split: String?
    @Option(
        help:
            "embedded:PATH.gguf or openai:http://HOST:PORT/v1[#model][,URL…] (default: the embedded SmolLM2-135M-Instruct)."
    ) var policy: String?
    @Option(help: "judge[:POLICY], rubric[:loose], http:URL or a mix like 0.7*rubric+0.3*judge (default judge).")
    var reward: String?
    @Flag(help: "Z-normalise each part of a mixed reward within each prompt's tree before weighting.") var normalize =
        false
    @Option(
        help: "Feedback source: self, verifier (the failing constraints' critiques) or model:POLICY (default self).")
    var feedback: String?
    @Option(help: "Prompts in flight at once (default 4).") var concurrency: Int?
    @Option(help: "Run seed; every request's seed derives from it (default 0).") var seed: UInt64?
    @Option(name: .customLong("max-tokens"), help: "Token limit per response (default 512).") var maxTokens: Int?
    @Option(help: "Sampling temperature (default 0.8).") var temperature: Double?
    @Option(name: .customLong("top-k"), help: "Top-k (default 50).") var topK: Int?
    @Option(name: .customLong("top-p"), help: "Top-p (nucleus) threshold.") var topP: Double?
    @Option(name: .customLong("min-p"), help: "Min-p threshold.") var minP: Double?
    @Option(name: .customLong("presence-penalty"), help: "Presence penalty (default 1.2).") var presencePenalty: Double?
    @Option(help: "Seconds for one request to a server before it is retried (default 300).") var timeout: Double?
    @Option(help: "Retries of a failed request (default 4).") var retries: Int?
    @Option(
        help:
            "Chat template for an embedded model: chatml, llama3, mistral or gemma (default: recognised from the file)."
    ) var template: String?
    @Option(help: "Threads of the embedded engine (default: all cores).") var threads: Int?
    @Option(
        name: .customLong("max-batch"),
        help: "Sequences the embedded engine decodes together, across requests (default 16).") var maxBatch: Int?
    @Option(
        name: .customLong("kv-cache-tokens"),
        help: "Positions the embedded engine's KV cache holds, prefix cache included (default max(8192, 2 × context)).")
    var kvCacheTokens: Int?
    @Flag(name: .customLong("skip-invalid"), help: "Skip and count bad prompt lines instead of refusing to start.")
    var skipInvalid = false
    @Option(
        help: "Take part I of N of the prompt set (by a hash of each id), e.g. 0/4; join shard runs with prs merge.")
    var shard: String?
    @Flag(help: "Reuse a run directory started with other settings (the new settings are recorded).") var force = false
    @Option(help: "full (a committed node survives power loss; default) or normal (faster).") var durability: String?
    @Option(name: .customLong("max-attempts"), help: "Attempts per prompt before a failure is final (default 3).")
    var maxAttempts: Int?

}

/// One `prs sample` run: the prompts read, the store opened and checked, then sampling.
struct SampleJob {
    let settings: SampleSettings
    let store: RunStore
    let items: [(position: Int, item: PromptItem)]
    let logger: Logger

    /// Prompts, then the store: a bad prompt file creates nothing, and a locked, mismatched or
    /// damaged run directory fails before any model loads.
    static func prepare(settings: SampleSettings, logger: Logger) throws -> SampleJob {
        let promptSet = try PromptLoading.load(
            settings.prompts, skipInvalid: settings.skipInvalid, logger: logger, quiet: true)
        let store: RunStore
        do {
            store = try RunStore.open(directory: URL(fileURLWithPath: settings.out), durability: settings.durability)
        } catch let e as StoreError {
            throw CLIFailure.badInput(e.description)
        }
        try RunSetup.check(store: store, settings: settings, logger: logger)
        let fresh = try RunSetup.recordInvalid(promptSet.problems, store: store)
        if !promptSet.problems.isEmpty {
            for p in promptSet.problems.suffix(fresh) {
                logger.warning("skipping a bad prompt line", metadata: ["problem": "\(p)"])
            }
            logger.warning(
                "skipped bad prompt lines",
                metadata: ["count": "\(promptSet.problems.count)", "new": "\(fresh)", "file": "\(settings.prompts)"])
        }
        let all = promptSet.items.enumerated().map { (position: $0.offset, item: $0.element) }
        let items = settings.shard.map { shard in all.filter { shard.contains($0.item.id) } } ?? all
        if let shard = settings.shard {
            logger.notice(
                "shard", metadata: ["shard": "\(shard)", "prompts": "\(items.count)", "of": "\(promptSet.items.count)"])
        }
        return SampleJob(settings: settings, store: store, items: items, logger: logger)
    }

    func run(backends: Backends) async throws -> RunOutcome {
        let sampler = TreeSampler(
            config: settings.strategy, policy: backends.policy, feedback: backends.feedback, reward: backends.reward)
        let engine = backends.engine
        engine?.resetEngineReport()
        let runner = SampleRunner(
            sampler: sampler, concurrency: settings.concurrency, maxAttempts: settings.maxAttempts, logger: logger,
            engineReport: { engine?.engineReport() })
        let display = ProgressDisplay(logger: logger)
        logger.notice(
            "sampling",
            metadata: [
                "strategy": "\(settings.strategy.kind.rawValue)", "budget": "\(settings.strategy.budget)",
                "split": "\(settings.strategy.split.map(String.init).joined(separator: ","))",
                "feedback": "\(settings.feedback)",
                "prompts": "\(items.count)", "policy": "\(backends.policy.identity)",
                "reward": "\(backends.reward.identity)", "out": "\(settings.out)",
            ])
        let store = self.store
        let items = self.items
        let directory = URL(fileURLWithPath: settings.out)
        let outcome = try await Interruptible.run {
            try await runner.run(items: items, store: store, directory: directory) { display.update($0) }
        }
        display.finish()
        return outcome
    }

    /// Prints the state counts and turns an unfinished run into the contract's exit status.
    static func report(_ outcome: RunOutcome, settings: SampleSettings, items: Int) throws {
        if let engine = outcome.engine { print(engine.line) }
        print(RunSetup.describe(outcome.counts))
        print("wrote \(settings.out)/run.sqlite, trees.jsonl and summary.json")
        if let reason = outcome.stopReason {
            throw CLIFailure.failed("stopped: \(reason)")
        }
        if outcome.interrupted {
            throw CLIFailure(
                code: Exit.interrupted,
                description: "interrupted; every scored node is kept: run the same command to resume")
        }
        if !outcome.failures.isEmpty {
            throw CLIFailure.failed(
                "\(outcome.failures.count) of \(items) prompts failed; first: \(outcome.failures[0].id): "
                    + "\(outcome.failures[0].error). Run the same command again to retry them (up to " +
                    "--max-attempts in all)"
            )
        }
    }
}
