import AsyncHTTPClient
import Foundation
import Logging
import PRSCore

/// A `TextGenerator` backed by one or more OpenAI-compatible servers (`/v1/chat/completions`).
///
/// `n > 1` is sent as `n`, and the number of choices that come back is counted, never
/// trusted: llama-cpp-python's server drops `n`, llama.cpp's honours it up to its slot
/// count. Missing choices are fanned out as single requests with seeds `seed+i`, and the
/// endpoint's limit is remembered so later requests ask for what it gives.
public struct OpenAIGenerator: TextGenerator {
    public typealias Endpoint = PolicySpec.Endpoint

    public let identity: String
    let pool: EndpointPool
    let models: ModelNames
    let tokenIDs = TokenIDs()
    let client: HTTPClient
    let retry: RetryPolicy
    let timeout: Double
    let apiKey: String?
    let logger: Logger

    /// - Parameters:
    ///   - concurrencyPerEndpoint: requests in flight per base URL.
    ///   - timeout: seconds for one whole attempt (connect, head and body).
    public init(
        endpoints: [Endpoint], concurrencyPerEndpoint: Int = 8, timeout: Double = 300,
        retry: RetryPolicy = RetryPolicy(), apiKey: String? = nil, logger: Logger, client: HTTPClient = .prs
    ) {
        precondition(!endpoints.isEmpty, "at least one endpoint")
        identity = "openai:" + endpoints.map { $0.baseURL + ($0.model.map { "#" + $0 } ?? "") }.joined(separator: ",")
        pool = EndpointPool(endpoints.map { ($0.baseURL, $0.model) }, limitPerEndpoint: concurrencyPerEndpoint)
        models = ModelNames()
        self.client = client
        self.retry = retry
        self.timeout = timeout
        self.apiKey = apiKey
        self.logger = logger
    }

    public func generate(_ request: GenerationRequest) async throws -> [Generation] {
        if request.choices != nil { return try await attempt(request, n: 1, seedOffset: 0) }
        let n = max(1, request.n)
        var results = try await attempt(request, n: n, seedOffset: 0)
        if results.count >= n { return Array(results.prefix(n)) }
        let start = results.count
        let rest = try await withThrowingTaskGroup(of: (Int, Generation).self) { group in
            for i in start..<n {
                group.addTask {
                    guard let g = try await attempt(request, n: 1, seedOffset: i).first else {
                        throw SamplerError.wrongCount(asked: 1, got: 0)
                    }
                    return (i, g)
                }
            }
            var out = [Generation?](repeating: nil, count: n - start)
            for try await (i, g) in group { out[i - start] = g }
            return out.compactMap { $0 }
        }
        results += rest
        return results
    }

    /// One logical request with retries; returns between 1 and `n` generations.
    func attempt(_ request: GenerationRequest, n: Int, seedOffset: Int) async throws -> [Generation] {
        do {
            return try await retry.run(logger: logger, describe: { OpenAIClientError($0).description }) {
                let i = await pool.acquire()
                let endpoint = await pool.endpoint(i)
                let ask = endpoint.maxN.map { min($0, n) } ?? n
                let outcome: Result<[Generation], HTTPFailure>
                do {
                    let model = try await modelName(endpoint)
                    let seed = request.parameters.seed.map { $0 + UInt64(seedOffset) }
                    var body = ChatCompletionBody(
                        model: model, messages: request.messages, n: ask, parameters: request.parameters, seed: seed)
                    if let prefill = request.prefill, !prefill.isEmpty {
                        body.messages.append(.init(role: .assistant, content: prefill))
                        body.continue_final_message = true
                        body.add_generation_prompt = false
                    }
                    if let choices = request.choices {
                        body.n = nil
                        body.max_tokens = 1
                        body.temperature = 0
                        body.logprobs = true
                        body.top_logprobs = 20  // servers that ignore logit_bias in their log-probabilities still show the digits among the 20
                        body.logit_bias = await choiceBias(choices, endpoint: endpoint.baseURL, model: model)
                    }
                    outcome = await send(body, to: endpoint.baseURL + "/chat/completions", seed: seed)
                } catch let f as HTTPFailure {
                    outcome = .failure(f)
                } catch {
                    await pool.release(i)
                    throw error
                }
                await pool.release(i)
                if case .success(let gens) = outcome { await pool.observe(endpoint: i, asked: ask, got: gens.count) }
                return outcome
            }
        } catch let f as HTTPFailure {
            throw OpenAIClientError(f)
        }
    }

    /// Sends one chat completion and turns the reply into generations or a classified failure.
    func send(_ body: ChatCompletionBody, to url: String, seed: UInt64?) async -> Result<[Generation], HTTPFailure> {
        let summary = "model \(body.model ?? "default"), \(body.messages.count) messages, n=\(body.n ?? 1)"
        func fail(_ why: String, body: String) -> Result<[Generation], HTTPFailure> {
            .failure(HTTPFailure(kind: .badBody(why, body: body), url: url, request: summary))
        }
        let payload: Data
        do { payload = try JSONEncoder().encode(body) } catch {
            return fail("could not encode the request: \(error)", body: "")
        }
        let started = ContinuousClock.now
        logger.trace(
            "request", metadata: ["url": "\(url)", "n": "\(body.n ?? 1)", "seed": "\(seed.map(String.init) ?? "none")"])
        let reply: HTTPReply
        switch await client.exchange(url, json: payload, apiKey: apiKey, timeout: timeout, request: summary) {
        case .success(let r): reply = r
        case .failure(let f): return .failure(f)
        }
        let latency = Self.milliseconds(ContinuousClock.now - started)
        let text = reply.text
        let decoded: ChatCompletionResponse
        do {
            decoded = try JSONDecoder().decode(ChatCompletionResponse.self, from: reply.data)
        } catch {
            return fail(describeDecodingError(error), body: text)
        }
        guard !decoded.choices.isEmpty else { return fail("it has no choices", body: text) }
        let choices = decoded.choices.enumerated().sorted {
            ($0.element.index ?? $0.offset) < ($1.element.index ?? $1.offset)
        }.map(\.element)
        var gens: [Generation] = []
        let k = choices.count
        let promptTokens = decoded.usage?.prompt_tokens ?? 0
        let completion = decoded.usage?.completion_tokens ?? 0
        for (j, c) in choices.enumerated() {
            guard let content = c.message?.content else {
                return fail("choices[\(j)].message.content is missing", body: text)
            }
            // Usage covers all choices: the prompt was read once per choice's conditioning,
            // completion tokens are shared out (the remainder to the first choice).
            let share = completion / k + (j == 0 ? completion % k : 0)
            let lp = c.logprobs?.content?.map { e in
                TokenLogprob(
                    token: e.token, logprob: e.logprob,
                    top: (e.top_logprobs ?? []).map { TokenLogprob.Alternative(token: $0.token, logprob: $0.logprob) })
            }
            gens.append(
                Generation(
                    text: content, finishReason: FinishReason(openAI: c.finish_reason),
                    usage: TokenUsage(promptTokens: promptTokens, completionTokens: share),
                    seed: seed, latencyMs: latency, logprobs: lp))
        }
        return .success(gens)
    }

    /// `logit_bias` making the choices the only likely tokens: their ids from the server's tokenizer
    /// (`/tokenize` of llama.cpp and vLLM, or llama-cpp-python's `/extras/tokenize`); nil when the
    /// server cannot say or a choice is not one token, and the reply's alternatives are read instead.
    func choiceBias(_ choices: [String], endpoint: String, model: String?) async -> [String: Double]? {
        var bias: [String: Double] = [:]
        for c in choices {
            guard
                let ids = await tokenIDs.lookup(
                    endpoint + "|" + c,
                    { [client, apiKey, timeout] in
                        var root = endpoint
                        if root.hasSuffix("/v1") { root.removeLast(3) }
                        struct Body: Encodable {
                            var content: String
                            var prompt: String
                            var input: String
                            var model: String?
                            var add_special: Bool
                            var add_special_tokens: Bool
                        }
                        struct Reply: Decodable { var tokens: [Int] }
                        guard
                            let payload = try? JSONEncoder().encode(
                                Body(
                                    content: c, prompt: c, input: c, model: model, add_special: false,
                                    add_special_tokens: false))
                        else { return nil }
                        for path in ["/tokenize", "/extras/tokenize"] {
                            if case .success(let r) = await client.exchange(
                                root + path, json: payload, apiKey: apiKey, timeout: timeout, request: "tokenize"),
                                let reply = try? JSONDecoder().decode(Reply.self, from: r.data)
                            {
                                return reply.tokens
                            }
                        }
                        return nil
                    }), ids.count == 1
            else { return nil }
            bias[String(ids[0])] = 100
        }
        return bias
    }

    /// The model to name in requests to `endpoint`: the configured one, or the first listed.
    func modelName(_ endpoint: EndpointPool.Endpoint) async throws -> String? {
        if let m = endpoint.model { return m }
        return try await models.resolve(endpoint.baseURL) { [client, apiKey, timeout] in
            let url = endpoint.baseURL + "/models"
            let reply = try await client.exchange(
                url, method: .GET, apiKey: apiKey, timeout: timeout, request: "list models", limit: 8 << 20
            ).get()
            struct Models: Decodable {
                struct M: Decodable { var id: String }
                var data: [M]
            }
            return (try? JSONDecoder().decode(Models.self, from: reply.data))?.data.first?.id
        }
    }

    static func milliseconds(_ d: Duration) -> Double { d.inSeconds * 1000 }
}

/// Token ids of texts on a server, asked once per base URL and text (nil: the server could not say).
actor TokenIDs {
    private var known: [String: [Int]?] = [:]
    func lookup(_ key: String, _ fetch: @Sendable () async -> [Int]?) async -> [Int]? {
        if let k = known[key] { return k }
        let found = await fetch()
        known[key] = .some(found)
        return found
    }
}

/// Model names found by `GET /models`, asked once per base URL.
actor ModelNames {
    private var names: [String: String?] = [:]
    func resolve(_ baseURL: String, _ fetch: @Sendable () async throws -> String?) async throws -> String? {
        if let known = names[baseURL] { return known }
        let found = try await fetch()
        names[baseURL] = .some(found)
        return found
    }
}
