import Foundation
import PRSBackends
import Testing

@Suite struct RetryPolicyTests {
    @Test func backsOffExponentiallyWithJitterAndACap() {
        let p = RetryPolicy(maxRetries: 5, initialDelay: 0.5, maxDelay: 8)
        #expect(p.delay(afterAttempt: 0, retryAfter: nil, jitter: 0) == 0.5)
        #expect(p.delay(afterAttempt: 2, retryAfter: nil, jitter: 0) == 2)
        #expect(p.delay(afterAttempt: 10, retryAfter: nil, jitter: 0) == 8)
        #expect(p.delay(afterAttempt: 2, retryAfter: nil, jitter: 1) == 1.5)
    }

    @Test func honoursRetryAfterUpToTheLimit() {
        let p = RetryPolicy(maxRetryAfter: 60)
        #expect(p.delay(afterAttempt: 0, retryAfter: 3, jitter: 0.5) == 3)
        #expect(
            p.delay(afterAttempt: 0, retryAfter: 600, jitter: 0) == 0.5, "too long a Retry-After falls back to backoff")
    }

    @Test func readsRetryAfterForms() {
        #expect(RetryPolicy.retryAfter(headers: [("Retry-After", "7")]) == 7)
        #expect(RetryPolicy.retryAfter(headers: [("retry-after-ms", "250"), ("Retry-After", "7")]) == 0.25)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let date = "Tue, 14 Nov 2023 22:13:30 GMT"  // now + 10 s
        #expect(RetryPolicy.retryAfter(headers: [("Retry-After", date)], now: now) == 10)
        #expect(RetryPolicy.retryAfter(headers: [("Retry-After", "soon")]) == nil)
        #expect(RetryPolicy.retryAfter(headers: []) == nil)
    }

    @Test func classifiesStatuses() {
        for s in [408, 409, 429, 500, 502, 503] { #expect(RetryPolicy.isRetryable(status: s)) }
        for s in [400, 401, 403, 404, 422] { #expect(!RetryPolicy.isRetryable(status: s)) }
    }
}
