import ArgumentParser
import Foundation
import Logging
import PRSBackends
import PRSCore
import PRSRunner

struct Score: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score existing responses with a reward against a prompt file.",
        discussion: """
            Responses: JSONL of {"id","response"} (IFEval's {"key","response"} too) or AlpacaEval-style \
            outputs ({"instruction","output","generator"}, JSONL or a JSON array), matched to prompts by \
            instruction. Writes one JSON line per response to --out and prints the mean reward and, for \
            prompts with constraints, IFEval's prompt-level and instruction-level accuracy, strict and loose.

            With --pairs (TRL's preference format: prompt, chosen, rejected, as prs export --format dpo \
            writes it), scores both answers of every pair and prints how often the reward prefers the \
            chosen one (ties ½), with a 95% bootstrap interval, per category, and beside a length baseline \
            (the longer answer wins): RewardBench's accuracy on your own data. --prompts then gives the \
            pairs' preferences and constraints by id; --reward pairwise[:POLICY] asks a judge to compare the \
            two answers in both orders and reports its position bias.

            Examples:
              prs score --prompts ifeval.jsonl --responses responses.jsonl --reward rubric --out scores.jsonl
              prs export runs/x --format dpo --pairing verified --out pairs.jsonl
              prs score --pairs pairs.jsonl --prompts examples/prefs-train.jsonl --reward judge
            """
    )

    @Option(help: "JSONL prompt file (prs or IFEval format).") var prompts: String?
    @Option(help: "Responses to score (JSONL or an AlpacaEval-style JSON array).") var responses: String?
    @Option(help: "Preference pairs to measure the reward on (TRL's prompt/chosen/rejected JSONL).") var pairs: String?
    @Option(
        help: "rubric[:loose], judge[:POLICY], http:URL, a mix, or with --pairs pairwise[:POLICY] (default rubric).")
    var reward = "rubric"
    @Option(help: "Where to write the scores (JSONL).") var out: String?
    @Option(help: "Policy for a bare judge (default: the embedded SmolLM2-135M-Instruct).") var policy: String?
    @Option(help: "Responses per reward call (default 16).") var batch = 16
    @Option(help: "Threads of an embedded judge (default: all cores).") var threads: Int?

    func validate() throws {
        if pairs == nil && (prompts == nil || responses == nil) {
            throw ValidationError("give --prompts and --responses, or --pairs")
        }
        if pairs != nil && responses != nil { throw ValidationError("--pairs and --responses do not go together") }
    }

    var options: BackendOptions {
        var o = BackendOptions()
        if let threads { o.threads = threads }
        return o
    }

    func judgePolicy(_ logger: Logger) throws -> any TextGenerator {
        guard let text = policy ?? DefaultModel.spec() else {
            throw CLIFailure.badInput(
                "a bare judge needs --policy (the default model is not at \(DefaultModel.relativePath))")
        }
        return try Backends.generator(try PolicySpec.parse(text), options: options, logger: logger)
    }

    func run() async throws {
        let logger = Logger(label: "prs.score")
        if let pairs { return try await scorePairs(pairs, logger: logger) }
        let promptSet = try PromptLoading.load(prompts!, skipInvalid: false, logger: logger)
        let records = try Self.loadResponses(responses!, promptSet: promptSet)
        let spec: RewardSpec
        spec = try RewardSpec.read(reward)
        let rewardModel = try Backends.reward(
            spec, policy: { try judgePolicy(logger) }, options: options, logger: logger)
        let display = ProgressDisplay(logger: logger)
        let report = try await ScoreRunner(reward: rewardModel, batchSize: batch, logger: logger)
            .run(items: promptSet.items, records: records) { display.update($0) }
        display.finish()
        if let out {
            do {
                try RunFiles.write(
                    try RunFiles.jsonLines(report.scored), to: URL(fileURLWithPath: out), what: "the scores")
            } catch let e as RunError {
                throw CLIFailure.failed(e.description)
            }
        }
        print(Self.render(report, reward: rewardModel.identity))
        if let out { print("wrote \(report.scored.count) scores to \(out)") }
        if report.failures > 0 {
            throw CLIFailure.failed(
                "\(report.failures) of \(report.scored.count) responses could not be scored (see reward_error in "
                    + "the output)"
            )
        }
    }

    /// `--pairs`: the reward's accuracy on preference pairs.
    func scorePairs(_ path: String, logger: Logger) async throws {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIFailure.badInput("\(path): cannot read the pairs: \(error.localizedDescription)")
        }
        let (pairs, problems) = PreferencePairParser.parse(data, file: path)
        if !problems.isEmpty {
            throw CLIFailure.badInput(
                "\(problems.count) bad pair line(s):\n" + problems.prefix(20).map(\.description).joined(separator: "\n")
            )
        }
        guard !pairs.isEmpty else { throw CLIFailure.badInput("\(path): no pairs") }
        var items: [String: PromptItem] = [:]
        if let prompts {
            for i in try PromptLoading.load(prompts, skipInvalid: false, logger: logger).items { items[i.id] = i }
        }
        let display = LineProgress(logger: logger)
        let progress: @Sendable (Int, Int) -> Void = { d, t in display.show("\(d)/\(t) pairs", done: d, total: t) }
        let outcomes: [PairAccuracy.Outcome]
        var identity = reward
        if reward == "pairwise" || reward.hasPrefix("pairwise:") {
            let generator =
                reward == "pairwise"
                ? try judgePolicy(logger)
                : try Backends.generator(
                    try PolicySpec.parse(String(reward.dropFirst("pairwise:".count))), options: options, logger: logger)
            identity = "pairwise judge[\(generator.identity)]"
            outcomes = try await PairScoring.judge(
                pairs, items: items, judge: PairwiseJudge(generator: generator), onProgress: progress)
        } else {
            let spec: RewardSpec
            spec = try RewardSpec.read(reward)
            let model = try Backends.reward(spec, policy: { try judgePolicy(logger) }, options: options, logger: logger)
            identity = model.identity
            outcomes = try await PairScoring.score(
                pairs, items: items, reward: model, batch: batch, onProgress: progress)
        }
        display.finish()
        let acc = PairAccuracy.compute(outcomes, pairs: pairs)
        if let out {
            do {
                try RunFiles.write(
                    try RunFiles.jsonLines(outcomes), to: URL(fileURLWithPath: out), what: "the pair scores")
            } catch let e as RunError {
                throw CLIFailure.failed(e.description)
            }
        }
        print(Self.render(acc, reward: identity))
        if let out { print("wrote \(outcomes.count) pair scores to \(out)") }
        if acc.scored < acc.pairs {
            let first = outcomes.first { $0.score == nil }
            throw CLIFailure.failed(
                "\(acc.pairs - acc.scored) of \(acc.pairs) pairs could not be scored; first: \(first?.id ?? "?"): "
                    + "\(first?.error ?? "")"
            )
        }
    }

    static func render(_ a: PairAccuracy, reward: String) -> String {
        func ci(_ i: MeanInterval?) -> String {
            i.map { String(format: "%5.1f%% [%.1f, %.1f]", $0.mean * 100, $0.low * 100, $0.high * 100) } ?? "–"
        }
        var lines = [
            "\(a.scored) of \(a.pairs) pairs scored with \(reward)",
            "accuracy (chosen above rejected, ties ½)  \(ci(a.accuracy))",
            "length baseline (longer answer wins)      \(ci(a.lengthBaseline))",
        ]
        if let bias = a.positionBias {
            lines.append(String(format: "orders disagree (position bias)           %5.1f%%", bias * 100))
        }
        if a.byCategory.count > 1 || a.byCategory.keys.first != "none" {
            lines.append("by category")
            for (c, i) in a.byCategory.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(c.padding(toLength: 38, withPad: " ", startingAt: 0)) \(ci(i))")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func loadResponses(_ path: String, promptSet: PromptSet) throws -> [ResponseRecord] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIFailure.badInput("\(path): cannot read the responses: \(error.localizedDescription)")
        }
        let byInstruction = Dictionary(promptSet.items.map { ($0.prompt, $0.id) }, uniquingKeysWith: { a, _ in a })
        var (records, problems) = ResponseFileParser.parse(data, file: path, instructionToID: byInstruction)
        for r in records where !promptSet.items.contains(where: { $0.id == r.id }) {
            problems.append(
                PromptProblem(
                    file: path, line: r.line, field: "id", message: "\"\(r.id)\" is not an id of the prompt file"))
        }
        if !problems.isEmpty {
            let shown = problems.prefix(20).map(\.description).joined(separator: "\n")
            throw CLIFailure.badInput("\(problems.count) bad response line(s):\n\(shown)")
        }
        guard !records.isEmpty else { throw CLIFailure.badInput("\(path): no responses to score") }
        return records
    }

    static func render(_ r: ScoreReport, reward: String) -> String {
        var lines = ["scored \(r.scored.count) responses with \(reward)"]
        if let m = r.meanReward { lines.append(String(format: "mean reward          %.4f", m)) }
        if r.strict.prompts > 0 {
            func pct(_ v: Double) -> String { String(format: "%5.1f%%", v * 100) }
            lines.append("accuracy             strict   loose")
            lines.append(
                "  prompt-level       \(pct(r.strict.promptLevel))  \(pct(r.loose.promptLevel))   "
                    + "(\(r.strict.prompts) prompts)"
            )
            lines.append(
                "  instruction-level  \(pct(r.strict.instructionLevel))  \(pct(r.loose.instructionLevel))   "
                    + "(\(r.strict.instructions) instructions)"
            )
            lines.append("by instruction (strict)")
            for (id, v) in r.strict.byInstruction.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(id.padding(toLength: 48, withPad: " ", startingAt: 0)) \(v[0])/\(v[1])")
            }
        }
        return lines.joined(separator: "\n")
    }
}
