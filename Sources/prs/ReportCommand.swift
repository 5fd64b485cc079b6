import ArgumentParser
import Foundation
import Logging
import PRSBackends
import PRSCore
import PRSRunner
import PRSStore

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare the strategies of a prs compare directory: curves, win rates, breakdowns, an item browser.",
        discussion: """
            RUN is a prs compare directory (or a directory of run directories). --format html writes one \
            self-contained page (SVG charts, no network); md writes the same tables as Markdown. With \
            --judge POLICY, a model also compares each strategy's best answers with the baseline's, in \
            both orders.

            Example:
              prs report runs/cmp --out runs/cmp/report.html
            """
    )

    @Argument(help: "The comparison's directory.") var run: String
    @Option(help: "Output file.") var out: String
    @Option(help: "html (default) or md.") var format = "html"
    @Option(help: "Judge the best answers pairwise with this policy (embedded:PATH.gguf, openai:URL, or 'policy' for the runs' policy).") var judge: String?
    @Option(help: "The strategy every other is compared with (default: the first, rand in prs compare's default).") var baseline: String?
    @Option(help: "Bootstrap resamples (default 1000).") var resamples = 1000
    @Option(help: "Report title.") var title = "PRS comparison"

    func validate() throws {
        guard format == "html" || format == "md" else { throw ValidationError("--format \(format): expected html or md") }
        guard resamples >= 100 else { throw ValidationError("--resamples must be at least 100") }
    }

    func run() async throws {
        let logger = Logger(label: "prs.report")
        let root = URL(fileURLWithPath: run)
        let labels = try Self.runLabels(root)
        var runs: [StrategyRun] = []
        var items: [String: PromptItem] = [:]
        var policy: String?
        for label in labels {
            let dir = label == "." ? root : root.appendingPathComponent(label)
            let (store, info) = try OpenRun.read(dir.path)
            guard let kind = StrategyKind(rawValue: info.settings["strategy"] ?? "") else {
                throw CLIFailure.badInput("\(dir.path): unknown strategy \"\(info.settings["strategy"] ?? "")\"")
            }
            policy = policy ?? info.policy
            for s in try store.items() where items[s.item.id] == nil { items[s.item.id] = s.item }
            let trees = try store.trees(strategy: kind.rawValue)
            let wall = try store.wallTime()
            let summary = (try? RunSummaryFile.load(in: dir.path).first) ?? StrategySummary(
                strategy: kind.rawValue, budget: Int(info.settings["budget"] ?? "") ?? 1, trees: trees, failed: 0, wallTimeSeconds: wall)
            runs.append(StrategyRun(label: label == "." ? kind.rawValue : label, strategy: kind, feedback: info.feedback,
                                    budget: Int(info.settings["budget"] ?? "") ?? 1, trees: trees, summary: summary))
        }
        if let baseline, !runs.contains(where: { $0.label == baseline }) {
            throw CLIFailure.badInput("--baseline \(baseline): no such strategy here; have \(runs.map(\.label).joined(separator: ", "))")
        }
        var judged: [String: [WinRate.Outcome]] = [:]
        if let judge {
            let spec = judge == "policy" ? (policy ?? "") : judge
            let generator: any TextGenerator
            do { generator = try Backends.generator(try PolicySpec.parse(spec), options: BackendOptions(), logger: logger) } catch let e as SpecError {
                throw CLIFailure.badInput(e.description)
            }
            let pj = PairwiseJudge(generator: generator)
            let base = runs.first { $0.label == baseline } ?? runs[0]
            for r in runs where r.label != base.label {
                logger.notice("judging", metadata: ["a": "\(r.label)", "b": "\(base.label)", "prompts": "\(r.trees.count)"])
                judged["\(r.label)|\(base.label)"] = try await pj.compare(r, base, items: items)
            }
        }
        let evaluation = Evaluation.compute(runs: runs, items: items, baseline: baseline, judged: judged,
                                            bootstrap: Bootstrap(resamples: resamples, seed: 1))
        let text = format == "md" ? MarkdownReport.render(evaluation, title: title) : try HTMLReport.render(evaluation, title: title)
        do { try RunFiles.write(Data(text.utf8), to: URL(fileURLWithPath: out), what: "the report") } catch let e as RunError {
            throw CLIFailure.failed(e.description)
        }
        print(MarkdownReport.render(evaluation, title: title).split(separator: "\n").prefix(8 + runs.count).joined(separator: "\n"))
        print("wrote \(out)")
    }

    /// The runs of a comparison, in compare.json's order; else every subdirectory with a run store;
    /// else the directory itself.
    static func runLabels(_ root: URL) throws -> [String] {
        struct Entry: Decodable { var label: String }
        if let data = try? Data(contentsOf: root.appendingPathComponent("compare.json")),
           let entries = try? JSONDecoder().decode([Entry].self, from: data) {
            return entries.map(\.label)
        }
        let fm = FileManager.default
        let subs = ((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).sorted().filter {
            fm.fileExists(atPath: root.appendingPathComponent($0).appendingPathComponent("run.sqlite").path)
        }
        if !subs.isEmpty { return subs }
        if fm.fileExists(atPath: root.appendingPathComponent("run.sqlite").path) { return ["."] }
        throw CLIFailure.badInput("\(root.path): no runs here (expected a prs compare directory or run directories)")
    }
}
