import Foundation
import Logging

extension RetryPolicy {
    /// Runs `attempt` until it succeeds, fails in a way not worth retrying, or the retries are
    /// spent; then throws the last `HTTPFailure`, counting the attempts made. `describe` words
    /// a failure for the warning logged before each retry.
    func run<T>(
        logger: Logger, describe: (HTTPFailure) -> String,
        _ attempt: () async throws -> Result<T, HTTPFailure>
    ) async throws -> T {
        var tries = 0
        while true {
            switch try await attempt() {
            case .success(let value):
                return value
            case .failure(var failure):
                // A cancelled caller (a sibling request failed for good) has no use for a retry.
                try Task.checkCancellation()
                tries += 1
                failure.attempts = tries
                guard failure.isRetryable, tries <= maxRetries else { throw failure }
                // Only a status reply carries a Retry-After worth honouring.
                let asked = failure.status == nil ? nil : failure.retryAfter
                let wait = delay(afterAttempt: tries - 1, retryAfter: asked, jitter: Double.random(in: 0..<1))
                logger.warning(
                    "request failed; retrying",
                    metadata: [
                        "url": "\(failure.url)", "attempt": "\(tries)", "wait_s": "\(String(format: "%.2f", wait))",
                        "error": "\(describe(failure))",
                    ])
                try await Task.sleep(nanoseconds: UInt64(wait * 1e9))
            }
        }
    }
}
