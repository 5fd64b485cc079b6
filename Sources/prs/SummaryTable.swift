import Foundation
import PRSCore

/// Strategy summaries side by side, for a terminal.
enum SummaryTable {
    static func render(_ summaries: [StrategySummary], headers: [String]? = nil) -> String {
        func f(_ v: Double?, _ digits: Int = 3) -> String { v.map { String(format: "%.\(digits)f", $0) } ?? "—" }
        func improving(_ s: StrategySummary) -> String {
            guard let rate = s.improvingPairRate else { return "—" }
            return String(format: "%d (%.0f%%)", s.improvingPairs, rate * 100)
        }
        func prompts(_ s: StrategySummary) -> String { s.failed > 0 ? "\(s.prompts) (+\(s.failed) failed)" : "\(s.prompts)" }
        func layers(_ s: StrategySummary) -> String { s.meanRewardPerLayer.map { f($0) }.joined(separator: " / ") }
        let rows: [(String, (StrategySummary) -> String)] = [
            ("prompts", prompts),
            ("budget N", { s in "\(s.budget)" }),
            ("mean best reward", { s in f(s.meanBestReward) }),
            ("mean top-3 reward", { s in f(s.meanTop3Reward) }),
            ("mean reward by layer", layers),
            ("improving pairs", improving),
            ("responses (unscored)", { s in "\(s.responses) (\(s.unscoredResponses))" }),
            ("feedback generations", { s in "\(s.feedbackGenerations)" }),
            ("tokens in / out", { s in "\(s.promptTokens) / \(s.completionTokens)" }),
            ("wall time", { s in String(format: "%.1f s", s.wallTimeSeconds) }),
        ]
        let header = [""] + (headers ?? summaries.map(\.strategy))
        let body = rows.map { row in [row.0] + summaries.map(row.1) }
        let all = [header] + body
        let widths = (0..<header.count).map { c in all.map { $0[c].count }.max() ?? 0 }
        return all.map { r in
            r.enumerated().map { c, cell in
                c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                       : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "   ")
        }.joined(separator: "\n")
    }
}
