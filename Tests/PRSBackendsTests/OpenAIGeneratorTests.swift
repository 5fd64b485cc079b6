import Foundation
import Logging
import PRSBackends
import PRSCore
import Testing

/// The client against a real HTTP server (in-process), one behaviour per base URL.
@Suite struct OpenAIGeneratorTests {
    let fastRetry = RetryPolicy(maxRetries: 2, initialDelay: 0.05, maxDelay: 0.1, maxRetryAfter: 5)

    /// A generous timeout: the in-process server's handler awaits an actor on the shared
    /// cooperative pool, which the model-heavy suites running alongside can hold for a minute
    /// on two cores; a timeout there would be retried and counted as an extra request.
    func client(
        _ url: String, timeout: Double = 900, retry: RetryPolicy? = nil, apiKey: String? = nil, model: String? = "m"
    ) -> OpenAIGenerator {
        OpenAIGenerator(
            endpoints: [.init(baseURL: url, model: model)], timeout: timeout,
            retry: retry ?? fastRetry, apiKey: apiKey, logger: Logger(label: "test"))
    }

    func request(n: Int = 1, seed: UInt64 = 100) -> GenerationRequest {
        GenerationRequest(
            messages: [.user("hi")], n: n,
            parameters: SamplingParameters(temperature: 0.8, topK: 50, maxTokens: 16, seed: seed))
    }

    @Test func fansOutWhenTheServerDropsN() async throws {
        try await FakeOpenAIServer.with { server, url in
            let out = try await client(url("plain")).generate(request(n: 3, seed: 100))
            #expect(out.map(\.text).sorted() == ["answer seed=100 i=0", "answer seed=101 i=0", "answer seed=102 i=0"])
            #expect(out.map(\.seed) == [100, 101, 102])
            let seen = await server.requests(mode: "plain")
            #expect(seen.count == 3)
            // The first request asks for n=3; the fan-out ones do not send n.
            #expect(seen.filter { $0.body["n"] == .int(3) }.count == 1)
            #expect(seen.allSatisfy { $0.body["top_k"] == .int(50) && $0.body["model"] == .string("m") })
        }
    }

    @Test func remembersThatAnEndpointDropsN() async throws {
        try await FakeOpenAIServer.with { server, url in
            let c = client(url("plain"))
            _ = try await c.generate(request(n: 2))
            _ = try await c.generate(request(n: 2))
            let seen = await server.requests(mode: "plain")
            #expect(seen.count == 4)
            #expect(seen.filter { $0.body["n"] != nil }.count == 1, "n is probed once, then fanned out")
        }
    }

    @Test func usesNativeNWhenHonoured() async throws {
        try await FakeOpenAIServer.with { server, url in
            let out = try await client(url("honour-n")).generate(request(n: 4))
            #expect(out.count == 4)
            #expect(await server.requests(mode: "honour-n").count == 1)
            #expect(out.map(\.usage.completionTokens).reduce(0, +) == 12)
        }
    }

    @Test func honoursRetryAfterOn429() async throws {
        try await FakeOpenAIServer.with { server, url in
            let started = Date()
            let out = try await client(url("rate-limited")).generate(request())
            #expect(out.count == 1)
            #expect(Date().timeIntervalSince(started) >= 0.9, "waited for Retry-After: 1")
            #expect(await server.requests(mode: "rate-limited").count == 2)
        }
    }

    @Test func retriesTransient5xxThenSucceeds() async throws {
        try await FakeOpenAIServer.with { server, url in
            let out = try await client(url("flaky")).generate(request())
            #expect(out.first?.text.hasPrefix("answer") == true)
            #expect(await server.requests(mode: "flaky").count == 3)
        }
    }

    @Test func gives500AfterRetriesWithURLAndStatus() async throws {
        try await FakeOpenAIServer.with { server, url in
            let error = await #expect(throws: OpenAIClientError.self) {
                try await client(url("server-error")).generate(request())
            }
            #expect(error?.status == 500)
            #expect(error?.attempts == 3)
            let text = error.map(String.init(describing:)) ?? ""
            #expect(text.contains(url("server-error") + "/chat/completions"))
            #expect(text.contains("HTTP 500"))
            #expect(text.contains("boom"))
            #expect(await server.requests(mode: "server-error").count == 3)
        }
    }

    @Test func doesNotRetry400AndShowsTheBody() async throws {
        try await FakeOpenAIServer.with { server, url in
            let error = await #expect(throws: OpenAIClientError.self) {
                try await client(url("bad-request")).generate(request())
            }
            #expect(error?.status == 400)
            #expect(String(describing: error!).contains("unknown field top_k"))
            #expect(await server.requests(mode: "bad-request").count == 1)
        }
    }

    @Test(arguments: ["truncated", "html", "no-choices"])
    func rejectsBodiesThatAreNotCompletions(mode: String) async throws {
        try await FakeOpenAIServer.with { server, url in
            let error = await #expect(throws: OpenAIClientError.self) {
                try await client(url(mode)).generate(request())
            }
            let text = String(describing: error!)
            #expect(text.contains("is not an OpenAI chat completion"), "\(text)")
            #expect(text.contains(url(mode)))
            #expect(await server.requests(mode: mode).count == 1, "a bad body is not retried")
        }
    }

    @Test func timesOutOnAStalledServer() async throws {
        try await FakeOpenAIServer.with { server, url in
            let c = client(url("slow"), timeout: 0.5, retry: RetryPolicy(maxRetries: 1, initialDelay: 0.05))
            let error = await #expect(throws: OpenAIClientError.self) { try await c.generate(request()) }
            #expect(String(describing: error!).contains("no complete response within 0.5 s"))
            #expect(error?.attempts == 2)
        }
    }

    @Test func reportsADroppedConnection() async throws {
        try await FakeOpenAIServer.with { server, url in
            let error = await #expect(throws: OpenAIClientError.self) {
                try await client(url("drop")).generate(request())
            }
            let text = String(describing: error!)
            #expect(
                text.contains("the connection failed") || text.contains("is not an OpenAI chat completion"), "\(text)")
            #expect(await server.requests(mode: "drop").count >= 1)
        }
    }

    @Test func reportsAnUnreachableServer() async throws {
        // Port 9 (discard) is closed on loopback here; connecting is refused at once.
        let error = await #expect(throws: OpenAIClientError.self) {
            try await client("http://127.0.0.1:9/v1", retry: RetryPolicy(maxRetries: 1, initialDelay: 0.01)).generate(
                request())
        }
        let text = String(describing: error!)
        #expect(text.contains("http://127.0.0.1:9/v1/chat/completions"))
        #expect(text.contains("the connection failed"))
        #expect(error?.attempts == 2)
    }

    @Test func sendsTheAPIKey() async throws {
        try await FakeOpenAIServer.with { server, url in
            let bad = await #expect(throws: OpenAIClientError.self) {
                try await client(url("needs-key")).generate(request())
            }
            #expect(String(describing: bad!).contains("check the API key"))
            let out = try await client(url("needs-key"), apiKey: "sekret").generate(request())
            #expect(out.count == 1)
        }
    }

    @Test func asksTheServerForTheModelWhenNoneIsNamed() async throws {
        try await FakeOpenAIServer.with { server, url in
            _ = try await client(url("plain"), model: nil).generate(request())
            #expect(await server.requests(mode: "plain").first?.body["model"] == .string("fake-model"))
        }
    }

    @Test func balancesAcrossBaseURLs() async throws {
        try await FakeOpenAIServer.with { server, url in
            let c = OpenAIGenerator(
                endpoints: [
                    .init(baseURL: url("slowish-a"), model: "m"), .init(baseURL: url("slowish-b"), model: "m"),
                ],
                concurrencyPerEndpoint: 2, retry: fastRetry, logger: Logger(label: "t"))
            let out = try await c.generate(request(n: 8))
            #expect(out.count == 8)
            let a = await server.requests(mode: "slowish-a").count
            let b = await server.requests(mode: "slowish-b").count
            #expect(a + b >= 8)
            #expect(a >= 3 && b >= 3, "both endpoints used: \(a) and \(b)")
        }
    }
}

/// The judge at a forced position over HTTP: the reply prefilled, the digits' token ids from the
/// server's tokenizer as `logit_bias`, one token, and the rating read from the distribution.
@Suite struct ForcedJudgeOverHTTPTests {
    func judge(_ url: String) -> JudgeReward {
        JudgeReward(
            generator: OpenAIGenerator(
                endpoints: [.init(baseURL: url, model: "m")], retry: RetryPolicy(maxRetries: 1, initialDelay: 0.05),
                logger: Logger(label: "test")))
    }

    @Test func theRatingIsTheExpectedDigitAndTheRequestForcesIt() async throws {
        try await FakeOpenAIServer.with { server, url in
            let r = try await judge(url("judge")).score([
                RewardInput(prompt: "Say hi", preference: nil, response: "Hi!")
            ])
            #expect(
                abs(r[0].value! - (7.0 - 1) / 8) < 1e-9, "the expected rating of ¼·6 + ½·7 + ¼·8, the non-digit ignored"
            )
            let seen = try #require(await server.requests(mode: "judge").first).raw
            let bias = try #require(seen["logit_bias"] as? [String: Double])
            #expect(bias == Dictionary(uniqueKeysWithValues: (1...9).map { ("\(100 + $0)", 100.0) }))
            #expect(
                seen["max_tokens"] as? Int == 1 && seen["top_logprobs"] as? Int == 20
                    && seen["logprobs"] as? Bool == true)
            let messages = try #require(seen["messages"] as? [[String: String]])
            #expect(
                messages.last == ["role": "assistant", "content": "Rating: "], "the reply is started for the judge")
            #expect(seen["continue_final_message"] as? Bool == true)
        }
    }

    @Test func withoutTheServersTokenizerTheDistributionIsStillRead() async throws {
        try await FakeOpenAIServer.with { server, url in
            let r = try await judge(url("judge-no-tokenizer")).score([
                RewardInput(prompt: "Say hi", preference: nil, response: "Hi!")
            ])
            #expect(abs(r[0].value! - 0.75) < 1e-9)
            let seen = try #require(await server.requests(mode: "judge-no-tokenizer").first).raw
            #expect(seen["logit_bias"] == nil)
        }
    }
}
