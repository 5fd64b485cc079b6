import ArgumentParser
import Foundation
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
            the draft fails and the best follows; feedback: the verifier's critique of the draft), or \
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
        let report = try Exports.export(
            Exports.Format(rawValue: format)!, trees: trees,
            items: Dictionary(uniqueKeysWithValues: stored.map { ($0.item.id, $0.item) }), options: options)
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
}

/// Opening a run directory to read, with errors a person can act on.
