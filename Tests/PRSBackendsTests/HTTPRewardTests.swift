import Foundation
import Logging
import PRSBackends
import PRSCore
import Testing

/// The HTTP reward model against an in-process server speaking each protocol.
@Suite struct HTTPRewardTests {
    let fastRetry = RetryPolicy(maxRetries: 2, initialDelay: 0.05, maxDelay: 0.1, maxRetryAfter: 5)

    /// Five responses of different lengths to two prompts, one with a preference.
    let inputs = ["a", "bbb", "cc", "dddddd", "eeee"].enumerated().map { i, r in
        RewardInput(
            prompt: i < 3 ? "Say something." : "Name a colour.", preference: i < 3 ? nil : Preference(text: "short"),
            response: r)
    }

    func model(_ url: String, apiKey: String? = nil) throws -> HTTPRewardModel {
        HTTPRewardModel(
            spec: try HTTPRewardSpec.parse(url), timeout: 900, retry: fastRetry, apiKey: apiKey,
            logger: Logger(label: "test"))
    }

    func expected(_ inputs: [RewardInput]) -> [Double] { inputs.map { FakeRewardServer.reward($0.response) } }

    @Test(arguments: [
        ("pooling", "#format=raw&batch=2", 3),
        ("pooling", "#model=rm", 5),  // chat: one conversation a request
        ("classify", "#batch=2", 3),
        ("classify", "#format=raw&batch=4", 2),
        ("score", "#batch=2", 3),
        ("get_reward", "#batch=2&concurrency=1", 3),
        ("get_reward", "#format=raw", 1),
    ])
    func scoresInOrderInBatches(endpoint: String, options: String, requests: Int) async throws {
        try await FakeRewardServer.with { server, url in
            let rm = try model(url("ok", endpoint) + options)
            let out = try await rm.score(inputs)
            #expect(out.map(\.value) == expected(inputs))
            #expect(out.allSatisfy { $0.components == ["http": $0.value!] && $0.failure == nil })
            let seen = await server.requests(mode: "ok")
            #expect(seen.count == requests)
            #expect(seen.allSatisfy { ($0.json["model"] as? String) == (options.contains("model=rm") ? "rm" : nil) })
        }
    }

    @Test(arguments: ["scalar", "per-token", "shuffled"])
    func readsEveryShapeOfPoolingData(mode: String) async throws {
        try await FakeRewardServer.with { server, url in
            let out = try await model(url(mode, "pooling") + "#format=raw&batch=5").score(inputs)
            #expect(out.map(\.value) == expected(inputs))
        }
    }

    @Test func sendsNothingForNoInputs() async throws {
        try await FakeRewardServer.with { server, url in
            let out = try await model(url("ok", "pooling")).score([])
            #expect(out.isEmpty)
            #expect(await server.requests.isEmpty)
        }
    }

    @Test func retriesA500ThenSucceeds() async throws {
        try await FakeRewardServer.with { server, url in
            let out = try await model(url("flaky", "score")).score(inputs)
            #expect(out.map(\.value) == expected(inputs))
            #expect(await server.requests(mode: "flaky").count == 2)
        }
    }

    @Test func honoursRetryAfterOn429() async throws {
        try await FakeRewardServer.with { server, url in
            let started = Date()
            let out = try await model(url("rate-limited", "get_reward")).score(inputs)
            #expect(out.map(\.value) == expected(inputs))
            #expect(Date().timeIntervalSince(started) >= 0.9, "waited for Retry-After: 1")
            #expect(await server.requests(mode: "rate-limited").count == 2)
        }
    }

    @Test func doesNotRetry400AndNamesTheURLAndBody() async throws {
        try await FakeRewardServer.with { server, url in
            let error = await #expect(throws: HTTPRewardError.self) {
                try await model(url("bad-request", "classify")).score(inputs)
            }
            #expect(error?.status == 400)
            let text = error.map(String.init(describing:)) ?? ""
            #expect(text.contains("POST \(url("bad-request", "classify"))"), "\(text)")
            #expect(text.contains("HTTP 400: "), "\(text)")
            #expect(text.contains("maximum context length is 8192 tokens"), "\(text)")
            #expect(await server.requests(mode: "bad-request").count == 1)
        }
    }

    @Test(arguments: [
        ("html", "pooling", "is not a vLLM /pooling reply: it is not valid JSON; body: <html>502 proxy error</html>"),
        ("wrong-count", "score", "is not a vLLM /score reply: it has 4 results for a batch of 5"),
        ("wrong-count", "get_reward", "is not an OpenRLHF /get_reward reply: it has 4 rewards for a batch of 5"),
        ("missing-key", "classify", "is not a vLLM /classify reply: data is missing"),
        ("missing-key", "get_reward", "rewards is missing"),
        ("nan", "get_reward", "it holds NaN or Infinity"),
        ("two-labels", "classify", "data[0].probs has 2 values"),
    ])
    func rejectsABadReplyWithoutRetrying(mode: String, endpoint: String, message: String) async throws {
        try await FakeRewardServer.with { server, url in
            // Raw text, so even /pooling sends all five inputs in one request.
            let error = await #expect(throws: HTTPRewardError.self) {
                try await model(url(mode, endpoint) + (endpoint == "score" ? "#batch=5" : "#format=raw&batch=5")).score(
                    inputs)
            }
            let text = error.map(String.init(describing:)) ?? ""
            #expect(text.contains(message), "\(text)")
            #expect(text.contains(url(mode, endpoint)), "\(text)")
            #expect(text.contains("[5 inputs, model default, format "), "\(text)")
            #expect(await server.requests(mode: mode).count == 1, "a bad body is not retried")
        }
    }

    @Test func sendsTheAPIKey() async throws {
        try await FakeRewardServer.with { server, url in
            _ = try await model(url("ok", "pooling"), apiKey: "sekret").score(Array(inputs.prefix(1)))
            #expect(await server.requests.first?.authorization == "Bearer sekret")
        }
    }

    @Test func makeParsesTheSpec() throws {
        let rm = try HTTPRewardModel.make(url: "http://h:8000/pooling#model=X", logger: Logger(label: "test"))
        #expect(rm.identity == "http[pooling http://h:8000/pooling model=X format=chat]")
        #expect(throws: SpecError.self) {
            try HTTPRewardModel.make(url: "http://h:8000/embeddings", logger: Logger(label: "test"))
        }
    }
}
