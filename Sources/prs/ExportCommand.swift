import ArgumentParser
import Foundation
import Logging
import PRSCore
import PRSRunner
import PRSStore

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run's trees as training or evaluation data.",
        discussion: """
            sft: TRL conversational language modeling ({"messages"}), the best answer of each prompt (or the \
            --top-k best). dpo: TRL conversational preference ({"prompt","chosen","rejected"} as message \
            lists, with score_chosen/score_rejected). refine: improving pairs (prompt, preference, draft, \
            feedback, improved answer); with --pairing synthetic, each prompt's best answer as the \
            refinement of its lowest answer at least --synthetic-margin below it (with constraints, one \
            the draft fails and the best follows; feedback: the verifier's critique of the draft, or with \
            --synthetic-feedback policy the policy's own, generated for drafts PRS never critiqued), or \
            improving+synthetic for both. alpaca-eval: a JSON array of {"instruction","output","generator"}. \
            trees: every node, one tree a line.

            Example:
              prs export runs/cmp/prs --format sft --out sft.jsonl --min-reward 0.5
            """
    )

    @Argument(help: "Run directory.") var run: String
    @Option(help: "sft, dpo, refine, alpaca-eval or trees.") var format: String
    @Option(help: "Output file.") var out: String
    @Option(name: .customLong("min-reward"), help: "Skip prompts whose best reward is below this.") var minReward:
        Double?
    @Option(name: .customLong("top-k"), help: "sft: the k best distinct answers per prompt (default 1).") var topK = 1
    @Option(
        help:
            "dpo: best-worst (default), best-random, or verified (by the prompts' constraints, not the reward). refine: improving (default), synthetic or improving+synthetic."
    )
    var pairing: String?
    @Option(
        name: .customLong("synthetic-margin"),
        help: "refine --pairing synthetic: least reward gap between draft and refinement (default 0.1).")
    var syntheticMargin = RefinePairs.defaultMargin
    @Option(
        name: .customLong("synthetic-feedback"),
        help: """
            refine --pairing synthetic: the draft's feedback, verifier (the critiques of the constraints it \
            fails; default) or policy (the policy's own, from the tree or generated with --policy).
            """)
    var syntheticFeedback = SyntheticFeedback.verifier.rawValue
    @Option(
        help:
            "--synthetic-feedback policy: the policy that writes it (default: the run's own policy, as it recorded it)."
    )
    var policy: String?
    @Option(help: "--synthetic-feedback policy: concurrent feedback generations (default 8).") var concurrency = 8
    @Option(
        name: .customLong("min-margin"),
        help: "dpo: least reward gap between chosen and rejected (default 0, strictly better).") var minMargin = 0.0
    @Option(help: "dpo best-random: the seed of the choice (default 0).") var seed: UInt64 = 0
    @Option(help: "Prompt shown in sft/dpo: conditioned (with the preference; default) or plain.") var prompt =
        "conditioned"
    @Option(help: "alpaca-eval: the generator name (default: prs-STRATEGY).") var generator: String?

    func validate() throws {
        guard Exports.Format(rawValue: format) != nil else {
            throw ValidationError(
                "--format \(format): expected one of \(Exports.Format.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        if let pairing {
            if format == "refine" {
                guard RefinePairs(rawValue: pairing) != nil else {
                    throw ValidationError(
                        "--pairing \(pairing): refine pairs are improving, synthetic or improving+synthetic")
                }
            } else {
                guard Exports.Pairing(rawValue: pairing) != nil else {
                    throw ValidationError("--pairing \(pairing): expected best-worst, best-random or verified")
                }
            }
        }
        guard SyntheticFeedback(rawValue: syntheticFeedback) != nil else {
            throw ValidationError("--synthetic-feedback \(syntheticFeedback): expected verifier or policy")
        }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard syntheticMargin > 0 else { throw ValidationError("--synthetic-margin must be above 0") }
        guard Exports.PromptForm(rawValue: prompt) != nil else {
            throw ValidationError("--prompt \(prompt): expected conditioned or plain")
        }
        guard topK >= 1 else { throw ValidationError("--top-k must be at least 1") }
        guard minMargin >= 0 else { throw ValidationError("--min-margin must be 0 or more") }
    }

    func run() async throws {
        let (store, info) = try ReportInputs.open(run)
        let strategy = info.settings["strategy"] ?? "prs"
        let stored = try store.items()
        let trees = try store.trees(strategy: strategy)
        var options = Exports.Options()
        options.minReward = minReward
        options.topK = topK
        if format == "refine" {
            options.refinePairs = pairing.flatMap(RefinePairs.init(rawValue:)) ?? .improving
        } else {
            options.pairing = pairing.flatMap(Exports.Pairing.init(rawValue:)) ?? .bestWorst
        }
        options.syntheticMargin = syntheticMargin
        options.minMargin = minMargin
        options.seed = seed
        options.prompt = Exports.PromptForm(rawValue: prompt)!
        options.generator = generator ?? "prs-\(strategy)"
        options.syntheticFeedback = SyntheticFeedback(rawValue: syntheticFeedback)!
        options.concurrency = concurrency
        let writer = try feedbackWriter(options, info: info)
        let report = try await Exports.export(
            Exports.Format(rawValue: format)!, trees: trees,
            items: Dictionary(uniqueKeysWithValues: stored.map { ($0.item.id, $0.item) }), options: options,
            feedback: writer)
        do { try RunFiles.write(report.data, to: URL(fileURLWithPath: out), what: "the export") } catch let e
            as RunError
        {
            throw CLIFailure.failed(e.description)
        }
        let unfinished = stored.count - trees.count
        var lines = ["wrote \(report.written) \(format) records from \(trees.count) finished prompts to \(out)"]
        for (why, n) in report.skipped.sorted(by: { $0.key < $1.key }) { lines.append("skipped \(n) prompts: \(why)") }
        if unfinished > 0 {
            lines.append("not exported: \(unfinished) prompts without a finished tree (see prs inspect \(run))")
        }
        print(lines.joined(separator: "\n"))
    }

    /// The policy writing synthetic drafts' feedback (`--synthetic-feedback policy`), with the
    /// run's sampling parameters: `--policy`, else the policy the run recorded.
    func feedbackWriter(_ options: Exports.Options, info: RunInfo) throws -> (any FeedbackSource)? {
        guard format == "refine", options.refinePairs != .improving, options.syntheticFeedback == .policy else {
            return nil
        }
        let settings = try info.run()
        let text = policy ?? settings.policy
        let spec: PolicySpec
        do { spec = try PolicySpec.parse(text) } catch {
            throw CLIFailure.badInput("\(policy == nil ? "the run's recorded policy" : "--policy"): \(error)")
        }
        var backend = BackendOptions()
        backend.concurrency = concurrency
        var parameters = settings.sampling
        parameters.logprobs = nil
        parameters.topLogprobs = nil
        return GeneratorFeedback(
            generator: try Backends.generator(spec, options: backend, logger: Logger(label: "prs.export")),
            templates: PromptTemplates.standard, parameters: parameters)
    }
}

/// Opening a run directory to read, with errors a person can act on.
