import AsyncHTTPClient
import Foundation
import Logging
import PRSCore

/// A reward model behind HTTP: vLLM's `/pooling`, `/classify` or `/score`, or OpenRLHF's
/// `/get_reward` (see `HTTPRewardSpec` for the options, `RewardRequests` and `RewardReplies`
/// for the wire formats).
///
/// Inputs are sent in batches of `spec.batch` with `spec.concurrency` requests in flight; a
/// request is retried by `RetryPolicy`. A reply without one finite reward per input throws.
public struct HTTPRewardModel: RewardModel {
    public let spec: HTTPRewardSpec
    let client: HTTPClient
    let retry: RetryPolicy
    let timeout: Double
    let apiKey: String?
    let logger: Logger

    public var identity: String { spec.identity }

    /// - Parameter timeout: seconds for one whole attempt (connect, head and body).
    public init(
        spec: HTTPRewardSpec, timeout: Double = 300, retry: RetryPolicy = RetryPolicy(),
        apiKey: String? = nil, logger: Logger, client: HTTPClient = .prs
    ) {
        self.spec = spec
        self.timeout = timeout
        self.retry = retry
        self.apiKey = apiKey
        self.logger = logger
        self.client = client
    }

    /// The model for `http:URL`: parses `url` (the text after `http:`) and takes the API key
    /// from `PRS_API_KEY` or `OPENAI_API_KEY`.
    public static func make(
        url: String, logger: Logger, timeout: Double = 300, retry: RetryPolicy = RetryPolicy()
    ) throws -> HTTPRewardModel {
        let env = ProcessInfo.processInfo.environment
        return HTTPRewardModel(
            spec: try HTTPRewardSpec.parse(url), timeout: timeout, retry: retry,
            apiKey: env["PRS_API_KEY"] ?? env["OPENAI_API_KEY"], logger: logger)
    }

    public func score(_ inputs: [RewardInput]) async throws -> [RewardResult] {
        let size = RewardRequests.batchLimit(spec)
        let batches = stride(from: 0, to: inputs.count, by: size).map {
            Array(inputs[$0..<min($0 + size, inputs.count)])
        }
        let rewards = try await concurrentMap(batches.count, limit: spec.concurrency) { i in
            try await scoreBatch(batches[i])
        }
        return rewards.joined().map { RewardResult(value: $0, components: ["http": $0]) }
    }

    /// One request with retries; one reward per input.
    func scoreBatch(_ batch: [RewardInput]) async throws -> [Double] {
        let summary = RewardRequests.summary(count: batch.count, spec)
        let payload = try RewardRequests.body(batch, spec)
        do {
            return try await retry.run(
                logger: logger, describe: { HTTPRewardError($0, endpoint: spec.endpoint).description }
            ) {
                await send(payload, count: batch.count, summary: summary)
            }
        } catch let f as HTTPFailure {
            throw HTTPRewardError(f, endpoint: spec.endpoint)
        }
    }

    func send(_ payload: Data, count: Int, summary: String) async -> Result<[Double], HTTPFailure> {
        logger.trace("reward request", metadata: ["url": "\(spec.url)", "inputs": "\(count)"])
        switch await client.exchange(spec.url, json: payload, apiKey: apiKey, timeout: timeout, request: summary) {
        case .failure(let f):
            return .failure(f)
        case .success(let reply):
            do throws(RewardReplies.BadReply) {
                return .success(try RewardReplies.rewards(spec.endpoint, reply.data, count: count))
            } catch {
                return .failure(
                    HTTPFailure(kind: .badBody(error.why, body: reply.text), url: spec.url, request: summary))
            }
        }
    }
}
