import Foundation
import Logging
import PRSCore

enum PromptLoading {
    /// Reads a prompt file; bad lines stop the run unless `skipInvalid`, which logs and counts them.
    static func load(_ path: String, skipInvalid: Bool, logger: Logger, quiet: Bool = false) throws -> PromptSet {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw CLIFailure.badInput("\(path): cannot read the prompt file: \(error.localizedDescription)")
        }
        let set = PromptFileParser.parse(data, file: path)
        if !set.problems.isEmpty {
            if !skipInvalid {
                let shown = set.problems.prefix(20).map(\.description).joined(separator: "\n")
                let more = set.problems.count > 20 ? "\n… and \(set.problems.count - 20) more" : ""
                throw CLIFailure.badInput(
                    "\(set.problems.count) bad line(s) in the prompt file:\n\(shown)\(more)\nFix them, or pass "
                        + "--skip-invalid to skip them."
                )
            }
            if quiet { return try nonEmpty(set, path) }
            for p in set.problems { logger.warning("skipping a bad prompt line", metadata: ["problem": "\(p)"]) }
            logger.warning("skipped bad prompt lines", metadata: ["count": "\(set.problems.count)", "file": "\(path)"])
        }
        return try nonEmpty(set, path)
    }

    static func nonEmpty(_ set: PromptSet, _ path: String) throws -> PromptSet {
        guard !set.items.isEmpty else { throw CLIFailure.badInput("\(path): no prompts to sample") }
        return set
    }
}
