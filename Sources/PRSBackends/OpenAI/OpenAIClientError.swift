/// A request to an OpenAI-compatible server that failed for good: what was sent where,
/// and what came back.
public struct OpenAIClientError: Error, Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case status(Int, body: String)
        case badBody(String, body: String)
        case transport(String)
        case timeout(seconds: Double)
    }

    let kind: Kind
    /// The URL of the last attempt.
    public let url: String
    /// How many attempts were made.
    public let attempts: Int
    /// A short account of the request: model, message count, n.
    public let request: String
    /// What the server asked for in `Retry-After`, in seconds.
    var retryAfter: Double?

    init(kind: Kind, url: String, attempts: Int, request: String, retryAfter: Double? = nil) {
        self.kind = kind
        self.url = url
        self.attempts = attempts
        self.request = request
        self.retryAfter = retryAfter
    }

    /// The HTTP status, when the server answered with an error status.
    public var status: Int? { if case .status(let s, _) = kind { s } else { nil } }

    var isRetryable: Bool {
        switch kind {
        case .status(let s, _): RetryPolicy.isRetryable(status: s)
        case .transport, .timeout: true
        case .badBody: false
        }
    }

    func after(attempts: Int) -> OpenAIClientError {
        OpenAIClientError(kind: kind, url: url, attempts: attempts, request: request, retryAfter: retryAfter)
    }

    public var description: String {
        let tries = attempts > 1 ? " (after \(attempts) attempts)" : ""
        switch kind {
        case .status(let s, let body):
            let hint = s == 401 || s == 403 ? " — check the API key (PRS_API_KEY or OPENAI_API_KEY)" :
                s == 404 ? " — check the base URL (it usually ends in /v1) and the model name" : ""
            return "POST \(url) [\(request)]: HTTP \(s)\(tries): \(Self.excerpt(body))\(hint)"
        case .badBody(let why, let body):
            return "POST \(url) [\(request)]: the response is not an OpenAI chat completion: \(why); body: \(Self.excerpt(body))"
        case .transport(let why):
            return "POST \(url) [\(request)]: the connection failed\(tries): \(why) — is the server running, and is the URL right?"
        case .timeout(let s):
            return "POST \(url) [\(request)]: no complete response within \(Self.format(s)) s\(tries) — raise --timeout or check the server"
        }
    }

    static func excerpt(_ body: String) -> String {
        let flat = body.replacingOccurrences(of: "\n", with: " ")
        if flat.isEmpty { return "(empty body)" }
        return flat.count > 300 ? String(flat.prefix(300)) + "…" : flat
    }

    static func format(_ s: Double) -> String {
        s == s.rounded() ? String(Int(s)) : String(s)
    }
}
