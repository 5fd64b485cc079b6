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
        for run in runs {
            let url = URL(fileURLWithPath: run).appendingPathComponent("summary.json")
            let data: Data
            do { data = try Data(contentsOf: url) } catch {
                throw CLIFailure.badInput("\(url.path): cannot read (is \(run) a run directory?): \(error.localizedDescription)")
            }
            do { summaries += try JSONDecoder().decode(File.self, from: data).strategies } catch {
                throw CLIFailure.badInput("\(url.path): not a prs summary: \(error)")
            }
        }
        print(SummaryTable.render(summaries))
    }
}
