import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import PRSCore

/// A `TextGenerator` backed by one or more OpenAI-compatible servers (`/v1/chat/completions`).
///
/// `n > 1` is sent as `n`, and the number of choices that come back is counted, never
/// trusted: llama-cpp-python's server drops `n`, llama.cpp's honours it up to its slot
/// count. Missing choices are fanned out as single requests with seeds `seed+i`, and the
/// endpoint's limit is remembered so later requests ask for what it gives.
public struct OpenAIGenerator: TextGenerator {
    public struct Endpoint: Sendable, Hashable {
        /// The base URL, e.g. `http://127.0.0.1:8080/v1`.
        public var baseURL: String
        /// The model name; when `nil`, the first model `GET /models` lists.
        public var model: String?
        public init(baseURL: String, model: String?) {
            var url = baseURL
            while url.hasSuffix("/") { url.removeLast() }
            self.baseURL = url
            self.model = model
        }
    }

    public let identity: String
    let pool: EndpointPool
    let models: ModelNames
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
        var tries = 0
        while true {
            let i = await pool.acquire()
            let endpoint = await pool.endpoint(i)
            let ask = endpoint.maxN.map { min($0, n) } ?? n
            let outcome: Result<[Generation], OpenAIClientError>
            do {
                let model = try await modelName(endpoint)
                let seed = request.parameters.seed.map { $0 + UInt64(seedOffset) }
                let body = ChatCompletionBody(model: model, messages: request.messages, n: ask, parameters: request.parameters, seed: seed)
                outcome = await send(body, to: endpoint.baseURL + "/chat/completions", seed: seed)
            } catch let e as OpenAIClientError {
                outcome = .failure(e)
            } catch {
                await pool.release(i)
                throw error
            }
            await pool.release(i)
            switch outcome {
            case .success(let gens):
                await pool.observe(endpoint: i, asked: ask, got: gens.count)
                return gens
            case .failure(let error):
                tries += 1
                guard error.isRetryable, tries <= retry.maxRetries else { throw error.after(attempts: tries) }
                let wait = retry.delay(afterAttempt: tries - 1, retryAfter: lastRetryAfter(error), jitter: Double.random(in: 0..<1))
                logger.warning("request failed; retrying", metadata: [
                    "url": "\(error.url)", "attempt": "\(tries)", "wait_s": "\(String(format: "%.2f", wait))",
                    "error": "\(error)"])
                try await Task.sleep(nanoseconds: UInt64(wait * 1e9))
            }
        }
    }

    private func lastRetryAfter(_ e: OpenAIClientError) -> Double? {
        if case .status(_, _) = e.kind { return e.retryAfter }
        return nil
    }

    /// Sends one chat completion and turns the reply into generations or a classified error.
    func send(_ body: ChatCompletionBody, to url: String, seed: UInt64?) async -> Result<[Generation], OpenAIClientError> {
        let summary = "model \(body.model ?? "default"), \(body.messages.count) messages, n=\(body.n ?? 1)"
        func fail(_ k: OpenAIClientError.Kind, retryAfter: Double? = nil) -> Result<[Generation], OpenAIClientError> {
            var e = OpenAIClientError(kind: k, url: url, attempts: 1, request: summary)
            e.retryAfter = retryAfter
            return .failure(e)
        }
        let payload: Data
        do { payload = try JSONEncoder().encode(body) } catch { return fail(.badBody("could not encode the request: \(error)", body: "")) }
        let started = ContinuousClock.now
        logger.trace("request", metadata: ["url": "\(url)", "n": "\(body.n ?? 1)", "seed": "\(seed.map(String.init) ?? "none")"])
        let reply: (HTTPResponseStatus, HTTPHeaders, ByteBuffer)
        do {
            reply = try await withTimeout(seconds: timeout) { [client, apiKey] in
                var req = HTTPClientRequest(url: url)
                req.method = .POST
                req.headers.add(name: "Content-Type", value: "application/json")
                if let apiKey { req.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
                req.body = .bytes(ByteBuffer(bytes: payload))
                let response = try await client.execute(req, timeout: .seconds(Int64(max(1, timeout.rounded(.up)))))
                let bytes = try await response.body.collect(upTo: 64 << 20)
                return (response.status, response.headers, bytes)
            }
        } catch is TimeoutError {
            return fail(.timeout(seconds: timeout))
        } catch is CancellationError {
            return fail(.transport("cancelled"))
        } catch let e as HTTPClientError where e == .deadlineExceeded {
            return fail(.timeout(seconds: timeout))
        } catch {
            return fail(.transport(String(describing: error)))
        }
        let latency = Self.milliseconds(ContinuousClock.now - started)
        let (status, headers, bytes) = reply
        let text = String(buffer: bytes)
        guard (200..<300).contains(Int(status.code)) else {
            let ra = RetryPolicy.retryAfter(headers: headers.map { ($0.name, $0.value) })
            return fail(.status(Int(status.code), body: text), retryAfter: ra)
        }
        let decoded: ChatCompletionResponse
        do {
            decoded = try JSONDecoder().decode(ChatCompletionResponse.self, from: Data(bytes.readableBytesView))
        } catch {
            return fail(.badBody(Self.describe(error), body: text))
        }
        guard !decoded.choices.isEmpty else { return fail(.badBody("it has no choices", body: text)) }
        let choices = decoded.choices.enumerated().sorted { ($0.element.index ?? $0.offset) < ($1.element.index ?? $1.offset) }.map(\.element)
        var gens: [Generation] = []
        let k = choices.count
        let promptTokens = decoded.usage?.prompt_tokens ?? 0
        let completion = decoded.usage?.completion_tokens ?? 0
        for (j, c) in choices.enumerated() {
            guard let content = c.message?.content else {
                return fail(.badBody("choices[\(j)].message.content is missing", body: text))
            }
            // Usage covers all choices: the prompt was read once per choice's conditioning,
            // completion tokens are shared out (the remainder to the first choice).
            let share = completion / k + (j == 0 ? completion % k : 0)
            let lp = c.logprobs?.content?.map { e in
                TokenLogprob(token: e.token, logprob: e.logprob,
                             top: (e.top_logprobs ?? []).map { TokenLogprob.Alternative(token: $0.token, logprob: $0.logprob) })
            }
            gens.append(Generation(
                text: content, finishReason: FinishReason(openAI: c.finish_reason),
                usage: TokenUsage(promptTokens: promptTokens, completionTokens: share),
                seed: seed, latencyMs: latency, logprobs: lp))
        }
        return .success(gens)
    }

    /// The model to name in requests to `endpoint`: the configured one, or the first listed.
    func modelName(_ endpoint: EndpointPool.Endpoint) async throws -> String? {
        if let m = endpoint.model { return m }
        return try await models.resolve(endpoint.baseURL) { [client, apiKey, timeout] in
            let url = endpoint.baseURL + "/models"
            var req = HTTPClientRequest(url: url)
            if let apiKey { req.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
            do {
                let response = try await client.execute(req, timeout: .seconds(Int64(max(1, timeout.rounded(.up)))))
                let bytes = try await response.body.collect(upTo: 8 << 20)
                struct Models: Decodable { struct M: Decodable { var id: String }; var data: [M] }
                guard response.status == .ok else {
                    throw OpenAIClientError(kind: .status(Int(response.status.code), body: String(buffer: bytes)), url: url, attempts: 1, request: "list models")
                }
                return (try? JSONDecoder().decode(Models.self, from: Data(bytes.readableBytesView)))?.data.first?.id
            } catch let e as OpenAIClientError {
                throw e
            } catch {
                throw OpenAIClientError(kind: .transport(String(describing: error)), url: url, attempts: 1, request: "list models")
            }
        }
    }

    static func milliseconds(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }

    /// A decoding error as a path and a reason: `choices[0].message: expected an object`.
    static func describe(_ error: any Error) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }.description
        }
        switch error as? DecodingError {
        case .dataCorrupted(let c)?: return c.codingPath.isEmpty ? "it is not valid JSON" : "\(path(c.codingPath)): \(c.debugDescription)"
        case .keyNotFound(let k, let c)?: return "\(path(c.codingPath + [k])) is missing"
        case .typeMismatch(let t, let c)?: return "\(path(c.codingPath)): expected \(t)"
        case .valueNotFound(let t, let c)?: return "\(path(c.codingPath)): expected \(t), found null"
        default: return String(describing: error)
        }
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

struct TimeoutError: Error {}

/// Runs `work`, throwing `TimeoutError` if it has not finished within `seconds`.
func withTimeout<T: Sendable>(seconds: Double, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await work() }
        group.addTask {
            try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
            throw TimeoutError()
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw TimeoutError() }
        return first
    }
}
