/// A request to an OpenAI-compatible server that failed for good: what was sent where,
/// and what came back.
public struct OpenAIClientError: Error, Sendable, CustomStringConvertible {
    let failure: HTTPFailure

    init(_ failure: HTTPFailure) { self.failure = failure }

    /// The URL of the last attempt.
    public var url: String { failure.url }
    /// How many attempts were made.
    public var attempts: Int { failure.attempts }
    /// A short account of the request: model, message count, n.
    public var request: String { failure.request }
    /// The HTTP status, when the server answered with an error status.
    public var status: Int? { failure.status }

    public var description: String {
        failure.describe(
            expected: "an OpenAI chat completion",
            notFoundHint: "check the base URL (it usually ends in /v1) and the model name")
    }
}
