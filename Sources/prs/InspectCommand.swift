import ArgumentParser
import Foundation
import PRSCore

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the summary of one or more runs, side by side."
    )

    @Argument(help: "Run directories (each with summary.json).") var runs: [String]

    func validate() throws {
        if runs.isEmpty { throw ValidationError("name at least one run directory") }
    }

    func run() async throws {
        struct File: Decodable { var strategies: [StrategySummary] }
        var summaries: [StrategySummary] = []
        var labels: [String] = []
        for run in runs {
            let url = URL(fileURLWithPath: run).appendingPathComponent("summary.json")
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw CLIFailure.badInput("\(url.path): cannot read (is \(run) a run directory?): \(error.localizedDescription)")
            }
            do {
                let found = try JSONDecoder().decode(File.self, from: data).strategies
                summaries += found
                labels += found.map { "\($0.strategy) (\(URL(fileURLWithPath: run).lastPathComponent))" }
            } catch {
                throw CLIFailure.badInput("\(url.path): not a prs summary: \(error)")
            }
        }
        // Runs of one strategy (say PRS with two feedback sources) are told apart by their directory.
        let names = summaries.map(\.strategy)
        let unique = Set(names).count == names.count
        print(SummaryTable.render(summaries, headers: unique ? names : labels))
    }
}
