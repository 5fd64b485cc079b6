import Foundation

/// Why one request to a server failed, classified so `RetryPolicy` can decide whether to try
/// again. Internal: each client wraps it in its own public error with its own wording.
struct HTTPFailure: Error, Sendable {
    enum Kind: Sendable {
        case status(Int, body: String)
        case badBody(String, body: String)
        case transport(String)
        case timeout(seconds: Double)
    }

    var kind: Kind
    var method = "POST"
    /// The URL of the last attempt.
    var url: String
    /// A short account of the request, e.g. `model m, 2 messages, n=1`.
    var request: String
    /// How many attempts were made.
    var attempts = 1
    /// What the server asked for in `Retry-After`, in seconds.
    var retryAfter: Double?

    var status: Int? { if case .status(let s, _) = kind { s } else { nil } }

    var isRetryable: Bool {
        switch kind {
        case .status(let s, _): RetryPolicy.isRetryable(status: s)
        case .transport, .timeout: true
        case .badBody: false
        }
    }

    /// ` (after 3 attempts)`, or nothing after one.
    var tries: String { attempts > 1 ? " (after \(attempts) attempts)" : "" }

    /// The message a client's public error shows: what was sent where and what came back.
    /// `expected` names what a good reply is (`an OpenAI chat completion`); `notFoundHint` is
    /// what to check after a 404.
    func describe(expected: String, notFoundHint: String) -> String {
        let head = "\(method) \(url) [\(request)]"
        switch kind {
        case .status(let s, let body):
            let hint =
                s == 401 || s == 403
                ? " — check the API key (PRS_API_KEY or OPENAI_API_KEY)" : s == 404 ? " — \(notFoundHint)" : ""
            return "\(head): HTTP \(s)\(tries): \(Self.excerpt(body))\(hint)"
        case .badBody(let why, let body):
            return "\(head): the response is not \(expected): \(why); body: \(Self.excerpt(body))"
        case .transport(let why):
            return "\(head): the connection failed\(tries): \(why) — is the server running, and is the URL right?"
        case .timeout(let s):
            return
                "\(head): no complete response within \(Self.format(s)) s\(tries) — raise --timeout or check the server"
        }
    }

    /// The body on one line, cut to 300 characters, so an HTML error page does not flood the log.
    static func excerpt(_ body: String) -> String {
        let flat = body.replacingOccurrences(of: "\n", with: " ")
        if flat.isEmpty { return "(empty body)" }
        return flat.count > 300 ? String(flat.prefix(300)) + "…" : flat
    }

    static func format(_ s: Double) -> String {
        s == s.rounded() ? String(Int(s)) : String(s)
    }
}
