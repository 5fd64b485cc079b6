import ArgumentParser
import Foundation
import Logging
import PRSBackends
import PRSCore
import PRSRunner
import PRSStore

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Report a prs compare directory (curves, win rates, breakdowns, an item browser) or a prs loop directory (the policy by iteration).",
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
    @Option(help: "Judge the best answers pairwise with this policy (embedded:PATH.gguf, openai:URL, or 'policy' for the runs' policy).") var judge: String?
    @Option(help: "The strategy every other is compared with (default: the first, rand in prs compare's default).") var baseline: String?
    @Option(help: "Bootstrap resamples (default 1000).") var resamples = 1000
    @Option(help: "Report title.") var title = "PRS comparison"

    func validate() throws {
        guard ["html", "md", "json"].contains(format) else { throw ValidationError("--format \(format): expected html, md or json") }
        guard resamples >= 100 else { throw ValidationError("--resamples must be at least 100") }
    }

    func run() async throws {
        let logger = Logger(label: "prs.report")
        let root = URL(fileURLWithPath: run)
        if LoopStore.isLoop(root) { return try loopReport(root) }
        let labels = try Self.runLabels(root)
        var runs: [StrategyRun] = []
        var items: [String: PromptItem] = [:]
        var policy: String?
        for label in labels {
            let dir = label == "." ? root : root.appendingPathComponent(label)
            let (run, info, stored) = try Self.strategyRun(dir, label: label == "." ? nil : label)
            policy = policy ?? info.policy
            for s in stored where items[s.id] == nil { items[s.id] = s }
            runs.append(run)
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
        var figures = evaluation
        figures.items = []
        let text = format == "md" ? MarkdownReport.render(evaluation, title: title)
            : format == "json" ? String(decoding: try RunFiles.prettyJSON(figures), as: UTF8.self)
            : try HTMLReport.render(evaluation, title: title)
        do { try RunFiles.write(Data(text.utf8), to: URL(fileURLWithPath: out), what: "the report") } catch let e as RunError {
            throw CLIFailure.failed(e.description)
        }
        print(MarkdownReport.render(evaluation, title: title).split(separator: "\n").prefix(8 + runs.count).joined(separator: "\n"))
        print("wrote \(out)")
    }

    /// One run directory as the evaluation reads it, with its info and prompts.
    static func strategyRun(_ dir: URL, label: String?) throws -> (StrategyRun, RunInfo, [PromptItem]) {
        let (store, info) = try OpenRun.read(dir.path)
        guard let kind = StrategyKind(rawValue: info.settings["strategy"] ?? "") else {
            throw CLIFailure.badInput("\(dir.path): unknown strategy \"\(info.settings["strategy"] ?? "")\"")
        }
        let items = try store.items().map(\.item)
        let trees = try store.trees(strategy: kind.rawValue)
        let wall = try store.wallTime()
        let budget = Int(info.settings["budget"] ?? "") ?? 1
        let summary = (try? RunFiles.readSummaries(in: dir).first) ?? StrategySummary(
            strategy: kind.rawValue, budget: budget, trees: trees, failed: 0, wallTimeSeconds: wall, categories: StrategySummary.categories(items))
        return (StrategyRun(label: label ?? kind.rawValue, strategy: kind, feedback: info.feedback, budget: budget, trees: trees, summary: summary), info, items)
    }

    /// A loop directory's report, with a page per run (sampled trees; evaluations beside the starting policy's).
    func loopReport(_ root: URL) throws {
        guard format != "json" else {
            throw CLIFailure.badInput("\(root.path): a loop's figures are in its summary.json already; --format json is for comparisons")
        }
        var summary: LoopSummary
        do { summary = try LoopSummary.load(root) } catch let e as RunError { throw CLIFailure.badInput(e.description) }
        Self.addGains(&summary, root: root)
        let title = self.title == "PRS comparison" ? "PRS loop" : self.title
        let outURL = URL(fileURLWithPath: out)
        if format == "md" {
            try write(LoopReport.markdown(summary, title: title), to: outURL)
            print(LoopTable.render(summary))
            print("wrote \(out)")
            return
        }
        let pagesName = outURL.deletingPathExtension().lastPathComponent + "-runs"
        let pages = outURL.deletingLastPathComponent().appendingPathComponent(pagesName)
        try? FileManager.default.createDirectory(at: pages, withIntermediateDirectories: true)
        var links: [LoopReport.Link] = []
        let baseEval = LoopRunner.directory(root, StageKey(chain: LoopPlan.baseChain, iteration: 0, stage: .evaluate))
        let base = FileManager.default.fileExists(atPath: baseEval.appendingPathComponent("run.sqlite").path) ? try Self.strategyRun(baseEval, label: "iteration 0") : nil
        func page(_ runs: [(StrategyRun, RunInfo, [PromptItem])], name: String, title: String) throws -> String {
            var items: [String: PromptItem] = [:]
            for r in runs { for i in r.2 where items[i.id] == nil { items[i.id] = i } }
            let e = Evaluation.compute(runs: runs.map(\.0), items: items, bootstrap: Bootstrap(resamples: resamples, seed: 1))
            try write(try HTMLReport.render(e, title: title), to: pages.appendingPathComponent(name))
            return pagesName + "/" + name
        }
        if let base { links.append(.init(chain: LoopPlan.baseChain, iteration: 0, label: "evaluation", href: try page([base], name: "iter-0-eval.html", title: "Starting policy: evaluation"))) }
        for chain in summary.order {
            for e in summary.chains[chain] ?? [] where e.iteration > 0 {
                let sample = LoopRunner.directory(root, StageKey(chain: chain, iteration: e.iteration, stage: .sample))
                if FileManager.default.fileExists(atPath: sample.appendingPathComponent("run.sqlite").path) {
                    links.append(.init(chain: chain, iteration: e.iteration, label: "sampled trees",
                                       href: try page([try Self.strategyRun(sample, label: "\(chain) \(e.iteration)")], name: "\(chain)-iter-\(e.iteration)-sample.html",
                                                      title: "\(chain) iteration \(e.iteration): sampled with iteration \(e.iteration - 1)'s policy")))
                }
                let eval = LoopRunner.directory(root, StageKey(chain: chain, iteration: e.iteration, stage: .evaluate))
                if FileManager.default.fileExists(atPath: eval.appendingPathComponent("run.sqlite").path) {
                    let mine = try Self.strategyRun(eval, label: "\(chain) iteration \(e.iteration)")
                    links.append(.init(chain: chain, iteration: e.iteration, label: "evaluation vs iteration 0",
                                       href: try page((base.map { [$0] } ?? []) + [mine], name: "\(chain)-iter-\(e.iteration)-eval.html",
                                                      title: "\(chain) iteration \(e.iteration): held-out samples beside the starting policy's")))
                }
            }
        }
        try write(LoopReport.html(summary, title: title, links: links), to: outURL)
        print(LoopTable.render(summary))
        print("wrote \(out) and \(links.count) run pages in \(pages.path)")
    }

    /// Gains over iteration 0 for evaluations stored before prs recorded them, from the runs themselves.
    static func addGains(_ summary: inout LoopSummary, root: URL) {
        let baseDir = LoopRunner.directory(root, StageKey(chain: LoopPlan.baseChain, iteration: 0, stage: .evaluate))
        guard let base = try? RunStore.read(directory: baseDir).trees(strategy: StrategyKind.prand.rawValue) else { return }
        for chain in summary.order {
            for (i, e) in (summary.chains[chain] ?? []).enumerated() where e.iteration > 0 && e.eval != nil && e.eval?.gainVsBase == nil {
                let dir = LoopRunner.directory(root, StageKey(chain: chain, iteration: e.iteration, stage: .evaluate))
                guard let trees = try? RunStore.read(directory: dir).trees(strategy: StrategyKind.prand.rawValue), var score = e.eval else { continue }
                score.gainVsBase = PolicyScore.gain(trees, over: base)
                summary.chains[chain]![i].apply(score)
            }
        }
    }

    func write(_ text: String, to url: URL) throws {
        do { try RunFiles.write(Data(text.utf8), to: url, what: "the report") } catch let e as RunError { throw CLIFailure.failed(e.description) }
    }

    /// The runs of a comparison, in compare.json's order; else every subdirectory with a run store;
    /// else the directory itself.
    static func runLabels(_ root: URL) throws -> [String] {
        if let entries = CompareManifest.read(root) { return entries.map(\.label) }
        let fm = FileManager.default
        let subs = ((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).sorted().filter {
            fm.fileExists(atPath: root.appendingPathComponent($0).appendingPathComponent("run.sqlite").path)
        }
        if !subs.isEmpty { return subs }
        if fm.fileExists(atPath: root.appendingPathComponent("run.sqlite").path) { return ["."] }
        throw CLIFailure.badInput("\(root.path): no runs here (expected a prs compare directory or run directories)")
    }
}
