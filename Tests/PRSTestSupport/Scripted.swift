import Foundation
import PRSCore

/// A generator for unit tests: answers every request with texts made from its position,
/// and records what it was asked.
public final class ScriptedGenerator: TextGenerator, @unchecked Sendable {
    public let identity = "scripted"
    private let lock = NSLock()
    private var _requests: [GenerationRequest] = []
    /// Makes the text of sample `index` of the `call`-th request.
    let text: @Sendable (_ call: Int, _ index: Int, _ request: GenerationRequest) -> String
    let delay: Double

    public init(
        delay: Double = 0,
        text: @escaping @Sendable (_ call: Int, _ index: Int, _ request: GenerationRequest) -> String = { c, i, _ in
            "r\(c).\(i)"
        }
    ) {
        self.text = text
        self.delay = delay
    }

    public var requests: [GenerationRequest] {
        lock.lock()
        defer { lock.unlock() }
        return _requests
    }

    public func generate(_ request: GenerationRequest) async throws -> [Generation] {
        let call: Int = {
            lock.lock()
            defer { lock.unlock() }
            _requests.append(request)
            return _requests.count - 1
        }()
        if delay > 0 { try await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
        return (0..<request.n).map { i in
            Generation(
                text: text(call, i, request), finishReason: .stop,
                usage: TokenUsage(promptTokens: 10, completionTokens: 5),
                seed: request.parameters.seed.map { $0 + UInt64(i) }, latencyMs: 1)
        }
    }
}

/// A reward for unit tests: a function of the response text (or a failure when it returns nil).
public struct ScriptedReward: RewardModel {
    public let identity = "scripted-reward"
    let value: @Sendable (String) -> Double?

    public init(_ value: @escaping @Sendable (String) -> Double?) { self.value = value }

    /// Rewards read from a table; unknown texts score 0.
    public init(table: [String: Double]) { self.value = { table[$0] ?? 0 } }

    public func score(_ inputs: [RewardInput]) async throws -> [RewardResult] {
        inputs.map { i in
            if let v = value(i.response) {
                RewardResult(value: v, components: ["scripted": v])
            } else {
                RewardResult(failure: "scripted failure")
            }
        }
    }
}
