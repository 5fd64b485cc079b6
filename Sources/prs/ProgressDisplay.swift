import Foundation
import Logging
import PRSRunner

/// Shows run progress: a line rewritten in place on a terminal; otherwise (CI, files) a log
/// line at the start and about one per 10% of the items.
final class ProgressDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal = isatty(STDERR_FILENO) != 0
    private let logger: Logger
    private var lastDecile = -1
    private var last: RunProgress?

    init(logger: Logger) { self.logger = logger }

    func update(_ p: RunProgress) {
        lock.lock()
        defer { lock.unlock() }
        last = p
        if terminal {
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(p.line)".utf8))
        } else {
            let finished = p.resumed + p.done + p.failed
            let decile = p.total > 0 ? finished * 10 / p.total : 10
            if decile > lastDecile {
                lastDecile = decile
                logger.notice("progress", metadata: ["status": "\(p.line)"])
            }
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if terminal, last != nil { FileHandle.standardError.write(Data("\n".utf8)) }
        else if let p = last, lastDecile < 10 { logger.notice("progress", metadata: ["status": "\(p.line)"]) }
    }
}
