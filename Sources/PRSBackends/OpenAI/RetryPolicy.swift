import Foundation

/// When and how long to wait before retrying a request.
///
/// Modelled on the official OpenAI Python client's policy, with a larger default retry
/// count because data-generation jobs run for hours against shared servers:
/// - retried: connection errors, timeouts, HTTP 408, 409, 429 and every 5xx;
/// - never retried: other 4xx, and bodies that are not what the API promises;
/// - delay: `initialDelay × 2^attempt`, capped at `maxDelay`, times a jitter in [0.75, 1];
/// - `Retry-After` (seconds or an HTTP date) and `retry-after-ms` are honoured when they ask
///   for at most `maxRetryAfter`; a longer request falls back to the computed delay.
public struct RetryPolicy: Sendable, Hashable {
    public var maxRetries: Int
    public var initialDelay: Double
    public var maxDelay: Double
    public var maxRetryAfter: Double

    public init(maxRetries: Int = 4, initialDelay: Double = 0.5, maxDelay: Double = 8, maxRetryAfter: Double = 60) {
        self.maxRetries = maxRetries
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    public static func isRetryable(status: Int) -> Bool {
        status == 408 || status == 409 || status == 429 || status >= 500
    }

    /// Seconds to wait after failed attempt number `attempt` (0-based). `retryAfter` is what
    /// the server asked for, if anything; `jitter` is a random draw in [0, 1).
    public func delay(afterAttempt attempt: Int, retryAfter: Double?, jitter: Double) -> Double {
        if let r = retryAfter, r >= 0, r <= maxRetryAfter { return r }
        let base = min(initialDelay * pow(2, Double(attempt)), maxDelay)
        return base * (1 - 0.25 * min(max(jitter, 0), 1))
    }

    /// Reads `retry-after-ms`, then `Retry-After` (delta-seconds or an HTTP date), relative to `now`.
    public static func retryAfter(headers: [(String, String)], now: Date = Date()) -> Double? {
        func header(_ name: String) -> String? {
            headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1.trimmingCharacters(in: .whitespaces)
        }
        if let ms = header("retry-after-ms"), let v = Double(ms) { return v / 1000 }
        guard let value = header("retry-after") else { return nil }
        if let seconds = Double(value) { return seconds }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = f.date(from: value) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }
}
