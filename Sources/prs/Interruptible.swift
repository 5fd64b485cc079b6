import Foundation

/// Runs work that SIGINT or SIGTERM cancels (the work then winds down and reports
/// itself interrupted); a second signal exits at once with status 3.
enum Interruptible {
    /// `onSignal` runs on the first signal too (for work that polls a flag rather than checking cancellation).
    static func run<T: Sendable>(
        onSignal: (@Sendable () -> Void)? = nil, _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let task = Task { try await work() }
        var sources: [any DispatchSourceSignal] = []
        let count = SignalCount()
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if count.increment() > 1 { exit(Exit.interrupted) }
                FileHandle.standardError.write(
                    Data("\nprs: stopping; finished work is kept (again to quit now)\n".utf8))
                onSignal?()
                task.cancel()
            }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }
        return try await task.value
    }
}

final class SignalCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func increment() -> Int {
        lock.lock()
        defer { lock.unlock() }
        n += 1
        return n
    }
}
