import Foundation
import Logging
import PRSRunner

/// A progress line: rewritten in place on a terminal; otherwise (CI, files) a log line about
/// every 10% of the work, counted afresh for each `group` (a loop's stage).
class LineProgress: @unchecked Sendable {
    private let lock = NSLock()
    let terminal = isatty(STDERR_FILENO) != 0
    let logger: Logger
    private var group = -1
    private var lastDecile = -1
    private var lastDone = 0
    private var last: String?

    init(logger: Logger) { self.logger = logger }

    /// `always`: logged even within a decile already logged (training's validation lines).
    func show(_ line: String, done: Int, total: Int, group: Int = 0, always: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        last = line
        if terminal {
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(line)".utf8))
            return
        }
        // A new group, or a count that went back (the next run of a stage: a loop's evaluation
        // samples, then greedy answers, then its search runs): its deciles are logged afresh.
        if group != self.group || done < lastDone {
            self.group = group
            lastDecile = -1
        }
        lastDone = done
        let decile = total > 0 ? done * 10 / total : 10
        if decile > lastDecile || always {
            lastDecile = decile
            logger.notice("progress", metadata: ["status": "\(line)"])
        }
    }

    /// Ends the line on a terminal; elsewhere logs the last state unless the 100% line was logged.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if terminal, last != nil {
            FileHandle.standardError.write(Data("\n".utf8))
        } else if let line = last, lastDecile < 10 {
            logger.notice("progress", metadata: ["status": "\(line)"])
        }
        last = nil
    }
}

/// Shows a run's progress (`12/40 items · 0.8/s · ETA 35s · …`).
final class ProgressDisplay: LineProgress, @unchecked Sendable {
    func update(_ p: RunProgress) { show(p.line, done: p.resumed + p.done + p.failed, total: p.total) }
}
