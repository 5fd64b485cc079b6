import ArgumentParser
import Foundation
import PRSCore
import PRSRunner
import PRSStore

struct Merge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join shard runs (prs sample --shard I/N) into one run.",
        discussion:
            "Refuses runs of different settings (other than the shard) and runs that share a prompt.\n\nExample:\n  "
            + "prs merge runs/shard0 runs/shard1 --out runs/all"
    )

    @Argument(help: "Shard run directories.") var runs: [String]
    @Option(help: "The merged run directory (new).") var out: String

    func validate() throws {
        if runs.count < 2 { throw ValidationError("name at least two run directories to merge") }
    }

    func run() async throws {
        let sources = try runs.map { try ReportInputs.open($0) }
        let first = sources[0].1
        for (i, (_, info)) in sources.enumerated().dropFirst() {
            let keys = first.differences(from: info, ignoring: ["shard"])
            if !keys.isEmpty {
                let what = keys.map { "\($0): \(first.settings[$0] ?? "(unset)") vs \(info.settings[$0] ?? "(unset)")" }
                    .joined(separator: "; ")
                throw CLIFailure.badInput(
                    "\(runs[i]) was run with other settings than \(runs[0]) (\(what)); only shards of one "
                        + "configuration merge"
                )
            }
        }
        let outURL = URL(fileURLWithPath: out)
        if FileManager.default.fileExists(atPath: outURL.appendingPathComponent("run.sqlite").path) {
            throw CLIFailure.badInput("\(out) already holds a run; merge into a new directory")
        }
        do {
            let merged = try RunStore.open(directory: outURL)
            var info = first
            info.settings["shard"] = ""
            info.createdAt = Date()
            try merged.saveInfo(info)
            for (store, _) in sources { try merged.merge(from: store) }
            let strategy = first.settings["strategy"] ?? "prs"
            let trees = try merged.trees(strategy: strategy)
            let failures = try merged.items().filter { $0.state == .failed }.map { ($0.item.id, $0.error ?? "") }
            let wall = try sources.map { try $0.0.wallTime() }.reduce(0, +)
            try merged.addWallTime(wall)
            let summary = StrategySummary(
                strategy: strategy, budget: Int(first.settings["budget"] ?? "") ?? 0, trees: trees,
                failed: failures.count, wallTimeSeconds: wall,
                categories: StrategySummary.categories(try merged.items().map(\.item)))
            let counts = try merged.counts()
            try RunFiles.writeTrees(trees, to: outURL)
            try RunFiles.writeSummary(summary, failures: failures, counts: counts, interrupted: false, to: outURL)
            print(SummaryTable.render([summary]))
            print(RunSetup.describe(counts))
            print("merged \(runs.count) runs into \(out)")
        } catch let e as StoreError {
            throw CLIFailure.failed(e.description)
        } catch let e as RunError {
            throw CLIFailure.failed(e.description)
        }
    }
}
