import ArgumentParser
import Foundation
import Logging
import PRSBackends
import PRSCore
import PRSRunner

struct Sample: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sample one tree per prompt with a strategy, score it, and keep the best.",
        discussion: """
            Writes RUN/trees.jsonl (every node) and RUN/summary.json. Running again into the same \
            RUN skips prompts whose trees are written. Settings come from --config (YAML, same \
            names in snake_case) and flags, flags winning.
            """
    )

    @Option(help: "JSONL prompt file (prs or IFEval format).") var prompts: String?
    @Option(help: "Run directory to write.") var out: String?
    @Option(help: "YAML file with the same settings; flags override it.") var config: String?
    @Option(help: "rand, prand, greedy, prs or prs-nofeedback (default prs).") var strategy: String?
    @Option(help: "N: scored responses per prompt (default 8).") var budget: Int?
    @Option(help: "Responses per PRS layer, e.g. 4,4 or 2,2,2,2 (default N/2,N/2).") var split: String?
    @Option(help: "embedded:PATH.gguf or openai:http://HOST:PORT/v1[#model][,URL…] (default: the embedded SmolLM2-135M-Instruct).") var policy: String?
    @Option(help: "judge[:POLICY], rubric[:loose], http:URL or a mix like 0.7*rubric+0.3*judge (default judge).") var reward: String?
    @Flag(help: "Z-normalise each part of a mixed reward within each prompt's tree before weighting.") var normalize = false
    @Option(help: "Feedback source: self, verifier (the failing constraints' critiques) or model:POLICY (default self).") var feedback: String?
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
    @Option(help: "Chat template for an embedded model: chatml, llama3, mistral or gemma (default: recognised from the file).") var template: String?
    @Option(help: "Threads of the embedded engine (default: all cores).") var threads: Int?
    @Flag(name: .customLong("skip-invalid"), help: "Skip and count bad prompt lines instead of refusing to start.") var skipInvalid = false

    func run() async throws {
        let logger = Logger(label: "prs.sample")
        let settings = try SampleSettings.resolve(flags: self)
        let promptSet = try PromptLoading.load(settings.prompts, skipInvalid: settings.skipInvalid, logger: logger)
        let backends = try Backends(settings: settings, logger: logger)
        let sampler = TreeSampler(config: settings.strategy, policy: backends.policy, feedback: backends.feedback, reward: backends.reward)
        let runner = SampleRunner(sampler: sampler, concurrency: settings.concurrency, logger: logger)
        let display = ProgressDisplay(logger: logger)

        logger.info("sampling", metadata: [
            "strategy": "\(settings.strategy.kind.rawValue)", "budget": "\(settings.strategy.budget)",
            "split": "\(settings.strategy.split.map(String.init).joined(separator: ","))",
            "prompts": "\(promptSet.items.count)", "policy": "\(backends.policy.identity)",
            "reward": "\(backends.reward.identity)", "out": "\(settings.out)"])

        let outcome = try await Interruptible.run {
            try await runner.run(items: promptSet.items, directory: URL(fileURLWithPath: settings.out)) { display.update($0) }
        }
        display.finish()
        print(SummaryTable.render([outcome.summary]))
        print("wrote \(settings.out)/trees.jsonl and \(settings.out)/summary.json")
        if outcome.interrupted {
            throw CLIFailure(code: Exit.interrupted, description: "interrupted; resume with the same command (finished prompts are kept)")
        }
        if !outcome.failures.isEmpty {
            throw CLIFailure.failed("\(outcome.failures.count) of \(promptSet.items.count) prompts failed; first: \(outcome.failures[0].id): \(outcome.failures[0].error). Run the same command again to retry them")
        }
    }
}
