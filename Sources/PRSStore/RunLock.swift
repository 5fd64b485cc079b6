import Foundation

/// One process per run (or loop) directory: an exclusive `flock` on `RUN/run.lock` (`LOOP/loop.lock`), which the kernel
/// releases when the process ends, however it ends. The file names the holder (pid, host,
/// start time) so a second process can say who has the run.
final class RunLock: @unchecked Sendable {
    private let fd: Int32

    init(directory: URL, name: String = "run.lock") throws {
        let path = directory.appendingPathComponent(name).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw StoreError(
                "\(path): cannot open the lock file: \(String(cString: strerror(errno))) (is the run directory "
                    + "writable?)"
            )
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder =
                (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                ?? ""
            close(fd)
            throw StoreError(
                "\(directory.path) is in use by another prs process (\(holder.isEmpty ? "unknown" : holder)); wait "
                    + "for it to finish or stop it first"
            )
        }
        let host = ProcessInfo.processInfo.hostName
        let started = ISO8601DateFormatter().string(from: Date())
        let text = "pid \(getpid()), host \(host), started \(started)\n"
        _ = ftruncate(fd, 0)
        _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        self.fd = fd
    }

    deinit {
        _ = flock(fd, LOCK_UN)
        close(fd)
    }
}
