import Foundation
import Logging
import PRSRunner

/// Shows run progress: a line rewritten in place on a terminal, a log line every
/// 10 seconds otherwise (CI, files).
final class ProgressDisplay: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal = isatty(STDERR_FILENO) != 0
    private let logger: Logger
    private var lastLog = Date.distantPast
    private var last: RunProgress?

    init(logger: Logger) { self.logger = logger }

    func update(_ p: RunProgress) {
        lock.lock()
        defer { lock.unlock() }
        last = p
        if terminal {
            FileHandle.standardError.write(Data("\r\u{1B}[2K\(p.line)".utf8))
        } else if Date().timeIntervalSince(lastLog) >= 10 {
            lastLog = Date()
            logger.info("progress", metadata: ["status": "\(p.line)"])
        }
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if terminal, last != nil { FileHandle.standardError.write(Data("\n".utf8)) }
        else if let p = last { logger.info("progress", metadata: ["status": "\(p.line)"]) }
    }
}
