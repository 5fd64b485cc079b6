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

            Example:
              prs score --prompts ifeval.jsonl --responses responses.jsonl --reward rubric --out scores.jsonl
            """
    )

    @Option(help: "JSONL prompt file (prs or IFEval format).") var prompts: String
    @Option(help: "Responses to score (JSONL or an AlpacaEval-style JSON array).") var responses: String
    @Option(help: "rubric[:loose], judge[:POLICY], http:URL or a mix (default rubric).") var reward = "rubric"
    @Option(help: "Where to write the scores (JSONL).") var out: String?
    @Option(help: "Policy for a bare judge (default: the embedded SmolLM2-135M-Instruct).") var policy: String?
    @Option(help: "Responses per reward call (default 16).") var batch = 16
    @Option(help: "Threads of an embedded judge (default: all cores).") var threads: Int?

    func run() async throws {
        let logger = Logger(label: "prs.score")
        let promptSet = try PromptLoading.load(prompts, skipInvalid: false, logger: logger)
        let records = try Self.loadResponses(responses, promptSet: promptSet)
        var options = BackendOptions()
        if let threads { options.threads = threads }
        let spec: RewardSpec
        do { spec = try RewardSpec.parse(reward) } catch let e as SpecError { throw CLIFailure.badInput(e.description) }
        let rewardModel = try Backends.reward(spec, policy: {
            guard let text = policy ?? DefaultModel.spec() else {
                throw CLIFailure.badInput("a bare judge needs --policy (the default model is not at \(DefaultModel.relativePath))")
            }
            do { return try Backends.generator(try PolicySpec.parse(text), options: options, logger: logger) } catch let e as SpecError {
                throw CLIFailure.badInput(e.description)
            }
        }, options: options, logger: logger)
        let display = ProgressDisplay(logger: logger)
        let report = try await ScoreRunner(reward: rewardModel, batchSize: batch, logger: logger)
            .run(items: promptSet.items, records: records) { display.update($0) }
        display.finish()
        if let out {
            do { try RunFiles.write(try RunFiles.jsonLines(report.scored), to: URL(fileURLWithPath: out), what: "the scores") } catch let e as RunError {
                throw CLIFailure.failed(e.description)
            }
        }
        print(Self.render(report, reward: rewardModel.identity))
        if let out { print("wrote \(report.scored.count) scores to \(out)") }
        if report.failures > 0 {
            throw CLIFailure.failed("\(report.failures) of \(report.scored.count) responses could not be scored (see reward_error in the output)")
        }
    }

    static func loadResponses(_ path: String, promptSet: PromptSet) throws -> [ResponseRecord] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIFailure.badInput("\(path): cannot read the responses: \(error.localizedDescription)")
        }
        let byInstruction = Dictionary(promptSet.items.map { ($0.prompt, $0.id) }, uniquingKeysWith: { a, _ in a })
        var (records, problems) = ResponseFileParser.parse(data, file: path, instructionToID: byInstruction)
        for r in records where !promptSet.items.contains(where: { $0.id == r.id }) {
            problems.append(PromptProblem(file: path, line: r.line, field: "id", message: "\"\(r.id)\" is not an id of the prompt file"))
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
            lines.append("  prompt-level       \(pct(r.strict.promptLevel))  \(pct(r.loose.promptLevel))   (\(r.strict.prompts) prompts)")
            lines.append("  instruction-level  \(pct(r.strict.instructionLevel))  \(pct(r.loose.instructionLevel))   (\(r.strict.instructions) instructions)")
            lines.append("by instruction (strict)")
            for (id, v) in r.strict.byInstruction.sorted(by: { $0.key < $1.key }) {
                lines.append("  \(id.padding(toLength: 48, withPad: " ", startingAt: 0)) \(v[0])/\(v[1])")
            }
        }
        return lines.joined(separator: "\n")
    }
}
