import ArgumentParser
import Foundation
import PRSCore
import PRSRunner
import PRSStore

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show runs: settings, item states and summaries side by side, or one item's tree.",
        discussion:
            "With --item, prints that item's tree: one line per node, indented by layer, with its kind, reward and "
            + "the start of its text.\n\nExample:\n  prs inspect runs/x --item p1"
    )

    @Argument(help: "Run directories.") var runs: [String]
    @Option(help: "Print the tree of this item (of the first run).") var item: String?
    @Option(help: "Characters of each text to show with --item (default 100).") var width = 100

    func validate() throws {
        if runs.isEmpty { throw ValidationError("name at least one run directory") }
    }

    func run() async throws {
        if let item { return try printTree(run: runs[0], item: item) }
        var summaries: [StrategySummary] = []
        var labels: [String] = []
        for run in runs {
            if FileManager.default.fileExists(
                atPath: URL(fileURLWithPath: run).appendingPathComponent("run.sqlite").path)
            {
                let (store, info) = try ReportInputs.open(run)
                print(
                    "\(run): \(info.settings["strategy"] ?? "?"), budget \(info.settings["budget"] ?? "?"), policy "
                        + "\(info.policy), reward \(info.reward), feedback \(info.feedback), seed "
                        + "\(info.settings["seed"] ?? "?")\(info.settings["shard"].map { $0.isEmpty ? "" : ", shard \($0)" } ?? "")"
                )
                let settings = info.settings.filter {
                    !["strategy", "budget", "policy", "reward", "feedback", "seed", "shard"].contains($0.key)
                        && !$0.value.isEmpty
                }
                print("  " + settings.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
                print("  " + RunSetup.describe(try store.counts()))
                for s in try store.items() where s.state == .failed {
                    print("  failed \(s.item.id) (\(s.attempts) failed attempt(s)): \(s.error ?? "")")
                }
            }
            guard let found = try? RunFiles.readSummaries(in: URL(fileURLWithPath: run)) else { continue }
            summaries += found
            labels += found.map { "\($0.strategy) (\(URL(fileURLWithPath: run).lastPathComponent))" }
        }
        guard !summaries.isEmpty else { return }
        print()
        // Runs of one strategy (say PRS with two feedback sources) are told apart by their directory.
        let names = summaries.map(\.strategy)
        let headers = Set(names).count == names.count ? names : labels
        print(SummaryTable.render(summaries, headers: headers))
        if let r = SummaryTable.refinements(summaries, headers: headers) { print("\n" + r) }
    }

    func printTree(run: String, item id: String) throws {
        let (store, info) = try ReportInputs.open(run)
        guard let stored = try store.items().first(where: { $0.item.id == id }) else {
            throw CLIFailure.badInput("\(run): no item \"\(id)\"")
        }
        let nodes = try store.nodes(of: id)
        let tree = Tree(id: id, strategy: info.settings["strategy"] ?? "?", nodes: nodes)
        print(
            "item \(id) (\(stored.state.rawValue), \(stored.attempts) failed "
                + "attempt(s))\(stored.error.map { ": \($0)" } ?? "")"
        )
        print("prompt: \(Self.preview(stored.item.prompt, width * 2))")
        if let p = stored.item.preference { print("preference: \(Self.preview(p.text, width * 2))") }
        for n in nodes {
            let indent = String(repeating: "  ", count: n.layer + 1)
            let reward = n.reward.map { String(format: "%.3f", $0) } ?? (n.kind == .feedback ? "" : "unscored")
            let marks = [
                n.id == tree.bestID ? "best" : nil, n.improving == true ? "improving" : nil,
                n.source.map { "from \($0)" },
            ]
            .compactMap { $0 }.joined(separator: ", ")
            print(
                "\(indent)#\(n.id) \(n.kind.rawValue) \(reward)\(marks.isEmpty ? "" : " [\(marks)]")  "
                    + "\(Self.preview(n.text, width))"
            )
            if let e = n.rewardError { print("\(indent)   reward error: \(e)") }
        }
    }

    static func preview(_ s: String, _ n: Int) -> String {
        let flat = s.replacingOccurrences(of: "\n", with: " ⏎ ")
        return flat.count > n ? String(flat.prefix(n)) + "…" : flat
    }
}
