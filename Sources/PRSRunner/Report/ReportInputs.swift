import Foundation
import PRSCore
import PRSStore

/// A directory a report cannot read (no runs, an empty store, an unreadable setting): bad input,
/// named with its path.
public struct ReportInputError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// A run directory as reports read it: its trees for the evaluation, its settings and its prompts.
public struct ReportedRun: Sendable {
    public var run: StrategyRun
    public var info: RunInfo
    public var items: [PromptItem]
}

/// What `prs report`, `prs inspect`, `prs export` and `prs merge` read: run directories and
/// comparisons, opened read-only.
public enum ReportInputs {
    /// A run directory's store and settings.
    public static func open(_ path: String) throws -> (RunStore, RunInfo) {
        do {
            let store = try RunStore.read(directory: URL(fileURLWithPath: path))
            guard let info = try store.info() else { throw ReportInputError("\(path): the run store holds no run yet") }
            return (store, info)
        } catch let e as StoreError {
            throw ReportInputError(e.description)
        }
    }

    /// One run directory as the evaluation reads it, with its info and prompts; its summary.json
    /// when there is one, else a summary computed from its trees.
    public static func run(_ dir: URL, label: String?) throws -> ReportedRun {
        let (store, info) = try open(dir.path)
        let settings: RunSettings
        do { settings = try info.run() } catch let e as SpecError {
            throw ReportInputError("\(dir.path): \(e.description)")
        }
        let kind = settings.strategy
        let items = try store.items().map(\.item)
        let trees = try store.trees(strategy: kind.rawValue)
        let wall = try store.wallTime()
        let summary =
            (try? RunFiles.readSummaries(in: dir).first)
            ?? StrategySummary(
                strategy: kind.rawValue, budget: settings.budget, trees: trees, failed: 0, wallTimeSeconds: wall,
                categories: StrategySummary.categories(items))
        let run = StrategyRun(
            label: label ?? kind.rawValue, strategy: kind, feedback: info.feedback, budget: settings.budget,
            trees: trees, summary: summary)
        return ReportedRun(run: run, info: info, items: items)
    }

    /// The runs of a comparison, in compare.json's order; else every subdirectory with a run store;
    /// else the directory itself (labelled `.`).
    public static func runLabels(_ root: URL) throws -> [String] {
        if let entries = CompareManifest.read(root) { return entries.map(\.label) }
        let fm = FileManager.default
        let subs = ((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).sorted().filter {
            fm.fileExists(atPath: root.appendingPathComponent($0).appendingPathComponent("run.sqlite").path)
        }
        if !subs.isEmpty { return subs }
        if fm.fileExists(atPath: root.appendingPathComponent("run.sqlite").path) { return ["."] }
        throw ReportInputError("\(root.path): no runs here (expected a prs compare directory or run directories)")
    }

    /// Every run of a comparison directory, and their prompts by id (the first run's copy of each).
    public static func comparison(_ root: URL) throws -> (runs: [ReportedRun], items: [String: PromptItem]) {
        var runs: [ReportedRun] = []
        var items: [String: PromptItem] = [:]
        for label in try runLabels(root) {
            let dir = label == "." ? root : root.appendingPathComponent(label)
            let r = try run(dir, label: label == "." ? nil : label)
            for s in r.items where items[s.id] == nil { items[s.id] = s }
            runs.append(r)
        }
        return (runs, items)
    }
}

/// A loop directory's report: the summary (with gains over iteration 0 for evaluations stored
/// before prs recorded them) and a page per run beside the report.
public enum LoopReportPages {
    public struct Written: Sendable {
        public var summary: LoopSummary
        public var pages: URL
        public var count: Int
    }

    /// The loop's summary, with gains filled in from the runs where it lacks them.
    public static func summary(_ root: URL) throws -> LoopSummary {
        var summary: LoopSummary
        do { summary = try LoopSummary.load(root) } catch let e as RunError { throw ReportInputError(e.description) }
        addGains(&summary, root: root)
        return summary
    }

    /// Writes the HTML report to `out` and its run pages to `OUT-runs/`.
    public static func writeHTML(_ root: URL, to out: URL, title: String, resamples: Int) throws -> Written {
        let summary = try summary(root)
        let pagesName = out.deletingPathExtension().lastPathComponent + "-runs"
        let pages = out.deletingLastPathComponent().appendingPathComponent(pagesName)
        try? FileManager.default.createDirectory(at: pages, withIntermediateDirectories: true)
        var links: [LoopReport.Link] = []
        let exists = { (dir: URL) in
            FileManager.default.fileExists(atPath: dir.appendingPathComponent("run.sqlite").path)
        }
        let baseEval = LoopRunner.directory(root, StageKey(chain: LoopPlan.baseChain, iteration: 0, stage: .evaluate))
        let base = exists(baseEval) ? try ReportInputs.run(baseEval, label: "iteration 0") : nil
        func page(_ runs: [ReportedRun], name: String, title: String) throws -> String {
            var items: [String: PromptItem] = [:]
            for r in runs { for i in r.items where items[i.id] == nil { items[i.id] = i } }
            let e = Evaluation.compute(
                runs: runs.map(\.run), items: items, bootstrap: Bootstrap(resamples: resamples, seed: 1))
            try RunFiles.write(
                Data(try HTMLReport.render(e, title: title).utf8), to: pages.appendingPathComponent(name),
                what: "the report")
            return pagesName + "/" + name
        }
        if let base {
            links.append(
                .init(
                    chain: LoopPlan.baseChain, iteration: 0, label: "evaluation",
                    href: try page([base], name: "iter-0-eval.html", title: "Starting policy: evaluation")))
        }
        for chain in summary.order {
            for e in summary.chains[chain] ?? [] where e.iteration > 0 {
                let k = e.iteration
                let sample = LoopRunner.directory(root, StageKey(chain: chain, iteration: k, stage: .sample))
                if exists(sample) {
                    let sampled = try ReportInputs.run(sample, label: "\(chain) \(k)")
                    links.append(
                        .init(
                            chain: chain, iteration: k, label: "sampled trees",
                            href: try page(
                                [sampled], name: "\(chain)-iter-\(k)-sample.html",
                                title: "\(chain) iteration \(k): sampled with iteration \(k - 1)'s policy")))
                }
                let eval = LoopRunner.directory(root, StageKey(chain: chain, iteration: k, stage: .evaluate))
                if exists(eval) {
                    let mine = try ReportInputs.run(eval, label: "\(chain) iteration \(k)")
                    links.append(
                        .init(
                            chain: chain, iteration: k, label: "evaluation vs iteration 0",
                            href: try page(
                                (base.map { [$0] } ?? []) + [mine], name: "\(chain)-iter-\(k)-eval.html",
                                title: "\(chain) iteration \(k): held-out samples beside the starting policy's")))
                }
            }
        }
        try RunFiles.write(Data(LoopReport.html(summary, title: title, links: links).utf8), to: out, what: "the report")
        return Written(summary: summary, pages: pages, count: links.count)
    }

    /// Gains over iteration 0 for evaluations stored before prs recorded them, from the runs themselves.
    static func addGains(_ summary: inout LoopSummary, root: URL) {
        let baseDir = LoopRunner.directory(root, StageKey(chain: LoopPlan.baseChain, iteration: 0, stage: .evaluate))
        guard let base = try? RunStore.read(directory: baseDir).trees(strategy: StrategyKind.prand.rawValue) else {
            return
        }
        for chain in summary.order {
            for (i, e) in (summary.chains[chain] ?? []).enumerated()
            where e.iteration > 0 && e.eval != nil && e.eval?.gainVsBase == nil {
                let dir = LoopRunner.directory(root, StageKey(chain: chain, iteration: e.iteration, stage: .evaluate))
                guard let trees = try? RunStore.read(directory: dir).trees(strategy: StrategyKind.prand.rawValue),
                    var score = e.eval
                else { continue }
                score.gainVsBase = PolicyScore.gain(trees, over: base)
                summary.chains[chain]![i].apply(score)
            }
        }
    }
}
