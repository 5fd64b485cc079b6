import ArgumentParser
import Foundation
import Logging
import PRSBackends
import PRSCore
import PRSRunner
import PRSStore

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Report a prs compare directory (curves, win rates, breakdowns, an item browser) or a prs loop directory "
            + "(the policy by iteration).",
        discussion: """
            RUN is a prs compare directory (or a directory of run directories). --format html writes one \
            self-contained page (SVG charts, no network); md writes the same tables as Markdown. With \
            --judge POLICY, a model also compares each strategy's best answers with the baseline's, in \
            both orders. For a prs loop directory: the held-out reward of each chain's policy by iteration, \
            the training data, loss curves and time per stage, with a page per run beside the report (OUT-runs/).

            Examples:
              prs report runs/cmp --out runs/cmp/report.html
              prs report runs/loop --out runs/loop/report.html
            """
    )

    @Argument(help: "The comparison's directory.") var run: String
    @Option(help: "Output file.") var out: String
    @Option(help: "html (default), md, or json (a comparison's figures without the texts).") var format = "html"
    @Option(
        help:
            "Judge the best answers pairwise with this policy (embedded:PATH.gguf, openai:URL, or 'policy' for the runs' policy)."
    ) var judge: String?
    @Option(help: "The strategy every other is compared with (default: the first, rand in prs compare's default).")
    var baseline: String?
    @Option(help: "Bootstrap resamples (default 1000).") var resamples = 1000
    @Option(help: "Report title.") var title = "PRS comparison"

    func validate() throws {
        guard ["html", "md", "json"].contains(format) else {
            throw ValidationError("--format \(format): expected html, md or json")
        }
        guard resamples >= 100 else { throw ValidationError("--resamples must be at least 100") }
    }

    func run() async throws {
        let logger = Logger(label: "prs.report")
        let root = URL(fileURLWithPath: run)
        if LoopStore.isLoop(root) { return try loopReport(root) }
        let comparison = try ReportInputs.comparison(root)
        let runs = comparison.runs.map(\.run)
        let items = comparison.items
        let policy = comparison.runs.first?.info.policy
        if let baseline, !runs.contains(where: { $0.label == baseline }) {
            throw CLIFailure.badInput(
                "--baseline \(baseline): no such strategy here; have \(runs.map(\.label).joined(separator: ", "))")
        }
        var judged: [String: [WinRate.Outcome]] = [:]
        if let judge {
            let spec = judge == "policy" ? (policy ?? "") : judge
            let generator: any TextGenerator
            generator = try Backends.generator(try PolicySpec.parse(spec), options: BackendOptions(), logger: logger)
            let pj = PairwiseJudge(generator: generator)
            let base = runs.first { $0.label == baseline } ?? runs[0]
            for r in runs where r.label != base.label {
                logger.notice(
                    "judging", metadata: ["a": "\(r.label)", "b": "\(base.label)", "prompts": "\(r.trees.count)"])
                judged["\(r.label)|\(base.label)"] = try await pj.compare(r, base, items: items)
            }
        }
        let evaluation = Evaluation.compute(
            runs: runs, items: items, baseline: baseline, judged: judged,
            bootstrap: Bootstrap(resamples: resamples, seed: 1))
        var figures = evaluation
        figures.items = []
        let text =
            format == "md"
            ? MarkdownReport.render(evaluation, title: title)
            : format == "json"
                ? String(decoding: try RunFiles.prettyJSON(figures), as: UTF8.self)
                : try HTMLReport.render(evaluation, title: title)
        do { try RunFiles.write(Data(text.utf8), to: URL(fileURLWithPath: out), what: "the report") } catch let e
            as RunError
        {
            throw CLIFailure.failed(e.description)
        }
        print(
            MarkdownReport.render(evaluation, title: title).split(separator: "\n").prefix(8 + runs.count).joined(
                separator: "\n"))
        print("wrote \(out)")
    }

    /// A loop directory's report, with a page per run (sampled trees; evaluations beside the starting policy's).
    func loopReport(_ root: URL) throws {
        guard format != "json" else {
            throw CLIFailure.badInput(
                "\(root.path): a loop's figures are in its summary.json already; --format json is for comparisons")
        }
        let title = self.title == "PRS comparison" ? "PRS loop" : self.title
        let outURL = URL(fileURLWithPath: out)
        if format == "md" {
            let summary = try LoopReportPages.summary(root)
            try write(LoopReport.markdown(summary, title: title), to: outURL)
            print(LoopTable.render(summary))
            print("wrote \(out)")
            return
        }
        let written: LoopReportPages.Written
        do { written = try LoopReportPages.writeHTML(root, to: outURL, title: title, resamples: resamples) } catch let e
            as RunError
        {
            throw CLIFailure.failed(e.description)
        }
        print(LoopTable.render(written.summary))
        print("wrote \(out) and \(written.count) run pages in \(written.pages.path)")
    }

    func write(_ text: String, to url: URL) throws {
        do { try RunFiles.write(Data(text.utf8), to: url, what: "the report") } catch let e as RunError {
            throw CLIFailure.failed(e.description)
        }
    }
}
