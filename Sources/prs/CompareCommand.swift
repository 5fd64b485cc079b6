import ArgumentParser
import Foundation
import Logging
import PRSCore
import PRSRunner

struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Run several strategies on the same prompts, reward and seed, at the same budget, into one directory.",
        discussion: """
            --strategies is a comma-separated list of NAME[:SPLIT][@FEEDBACK]: a strategy (rand, prand, greedy, \
            prs, prs-nofeedback), optionally a PRS split written with + (prs:2+2+2+2) and a feedback source \
            (prs@verifier, prs@model:openai:http://h:8000/v1). Each runs into RUN/LABEL with its own store, so \
            the command resumes like prs sample. Then: prs report RUN --out report.html.

            Example:
              prs compare --prompts examples/prefs-heldout.jsonl --out runs/cmp --budget 8 --reward rubric \
            --strategies rand,prand,prs
            """
    )

    @OptionGroup var options: SampleOptions
    @Option(help: "Strategies to compare (default rand,prand,greedy,prs,prs-nofeedback).") var strategies =
        "rand,prand,greedy,prs,prs-nofeedback"

    static func entries(_ text: String) throws -> [(entry: String, name: String, split: String?, feedback: String?)] {
        try text.split(separator: ",").map { raw in
            let s = raw.trimmingCharacters(in: .whitespaces)
            let at = s.firstIndex(of: "@")
            let head = at.map { String(s[..<$0]) } ?? s
            let feedback = at.map { String(s[s.index(after: $0)...]) }
            let parts = head.split(separator: ":", maxSplits: 1).map(String.init)
            guard let name = parts.first, StrategyKind(rawValue: name) != nil else {
                throw CLIFailure.badInput(
                    "--strategies: \"\(s)\": expected NAME[:SPLIT][@FEEDBACK] with NAME one of "
                        + "\(StrategyKind.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            return (s, name, parts.count > 1 ? parts[1].replacingOccurrences(of: "+", with: ",") : nil, feedback)
        }
    }

    static func label(_ entry: String) -> String {
        String(entry.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : ($0 == "@" ? "+" : "-") })
    }

    func run() async throws {
        let logger = Logger(label: "prs.compare")
        let parsed = try Self.entries(strategies)
        guard let root = options.out else {
            throw CLIFailure.badInput("missing --out (the comparison's run directory)")
        }
        let labels = parsed.map { Self.label($0.entry) }
        guard Set(labels).count == labels.count else {
            throw CLIFailure.badInput("--strategies names one strategy twice")
        }
        var jobs: [(SampleJob, SampleSettings)] = []
        for (p, label) in zip(parsed, labels) {
            var flags = options
            flags.strategy = p.name
            flags.split = p.split
            flags.feedback = p.feedback ?? options.feedback
            flags.out = URL(fileURLWithPath: root).appendingPathComponent(label).path
            if p.name != "prs" && p.name != "prs-nofeedback" { flags.split = nil }
            let settings = try SampleSettings.resolve(flags: flags)
            jobs.append((try SampleJob.prepare(settings: settings, logger: logger), settings))
        }
        let base = try Backends(settings: jobs[0].1, logger: logger)
        let manifest = zip(parsed, zip(labels, jobs)).map { p, lj in
            CompareManifest.Entry(label: lj.0, spec: p.entry, strategy: p.name, feedback: "\(lj.1.1.feedback)")
        }
        try CompareManifest.write(manifest, to: URL(fileURLWithPath: root))
        var summaries: [StrategySummary] = []
        var bests: [(label: String, values: [Double])] = []
        for ((job, settings), label) in zip(jobs, labels) {
            logger.notice("comparing", metadata: ["strategy": "\(label)"])
            let backends = Backends(
                policy: base.policy, reward: base.reward,
                feedback: try Backends.feedback(settings, options: settings.backendOptions, logger: logger))
            let outcome = try await job.run(backends: backends)
            summaries.append(outcome.summary)
            bests.append(
                (label, try job.store.trees(strategy: settings.strategy.kind.rawValue).compactMap { $0.best?.reward }))
            try SampleJob.report(outcome, settings: settings, items: job.items.count)
        }
        print(SummaryTable.render(summaries, headers: labels))
        if let r = SummaryTable.refinements(summaries, headers: labels) { print("\n" + r) }
        if let reading = ComparisonReading.sentence(bests, budget: jobs[0].1.strategy.budget) { print(reading) }
        print("next: prs report \(root) --out \(root)/report.html")
    }
}
