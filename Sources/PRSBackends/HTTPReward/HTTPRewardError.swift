/// A request to an HTTP reward model that failed for good: which endpoint, what was sent,
/// and what came back.
public struct HTTPRewardError: Error, Sendable, CustomStringConvertible {
    let failure: HTTPFailure
    let endpoint: HTTPRewardSpec.Endpoint

    init(_ failure: HTTPFailure, endpoint: HTTPRewardSpec.Endpoint) {
        self.failure = failure
        self.endpoint = endpoint
    }

    /// The URL of the last attempt.
    public var url: String { failure.url }
    /// How many attempts were made.
    public var attempts: Int { failure.attempts }
    /// A short account of the request: inputs, model, format.
    public var request: String { failure.request }
    /// The HTTP status, when the server answered with an error status.
    public var status: Int? { failure.status }

    public var description: String {
        let expected = endpoint == .getReward ? "an OpenRLHF /get_reward reply" : "a vLLM /\(endpoint.rawValue) reply"
        return failure.describe(
            expected: expected,
            notFoundHint:
                "check the URL: its path ends in the endpoint the server serves (/pooling, /classify, /score or "
                + "/get_reward)"
        )
    }
}
