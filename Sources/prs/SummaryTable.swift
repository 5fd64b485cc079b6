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
        func prompts(_ s: StrategySummary) -> String {
            s.failed > 0 ? "\(s.prompts) (+\(s.failed) failed)" : "\(s.prompts)"
        }
        func layers(_ s: StrategySummary) -> String { s.meanRewardPerLayer.map { f($0) }.joined(separator: " / ") }
        let rows: [(String, (StrategySummary) -> String)] = [
            ("prompts", prompts),
            ("budget N", { s in "\(s.budget)" }),
            ("mean best reward", { s in f(s.meanBestReward) }),
            ("mean top-3 reward", { s in f(s.meanTop3Reward) }),
            ("mean reward by layer", layers),
            ("improving pairs", improving),
            ("refinements beating their draft", { s in s.refinement?.all.successText ?? "—" }),
            ("reward change by refinement", { s in s.refinement?.all.changeText ?? "—" }),
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
                c == 0
                    ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "   ")
        }.joined(separator: "\n")
    }

    /// Refinement success broken down by layer, feedback source and preference category, one
    /// block per summary that has refinements (95% bootstrap intervals over prompts).
    static func refinements(_ summaries: [StrategySummary], headers: [String]? = nil) -> String? {
        let blocks = zip(headers ?? summaries.map(\.strategy), summaries).compactMap { label, s -> String? in
            guard let r = s.refinement else { return nil }
            let width = r.rows.map(\.group.count).max() ?? 0
            let lines = r.rows.map {
                "  " + $0.group.padding(toLength: width, withPad: " ", startingAt: 0) + "   "
                    + $0.figure.successText + " beat their draft; reward change " + $0.figure.changeText
            }
            return (["refinement success, \(label) (95% intervals over prompts):"] + lines).joined(separator: "\n")
        }
        return blocks.isEmpty ? nil : blocks.joined(separator: "\n")
    }
}
