import Foundation
import HTTPTypes
import Hummingbird
import LMEngine
import Logging
import NIOCore
import ServiceLifecycle

/// An OpenAI-compatible HTTP server over the embedded engine: chat and text completions (with
/// `n`, seeds, log-probabilities and streaming), models, health, Prometheus metrics and
/// tokenization. Requests for the base model and for its adapters batch together.
public final class ModelServer: Sendable {
    let options: ServerOptions
    let logger: Logger
    let state = ServerState()
    let metrics = ServerMetrics()

    public init(options: ServerOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Listens, loads the model (answering 503 meanwhile), serves until SIGTERM or SIGINT, then
    /// stops accepting and gives requests in flight `drainSeconds` to finish. `onListening` gets
    /// the bound port; `onReady` is called once the model is loaded. Throws when loading fails.
    public func run(onListening: @escaping @Sendable (Int) -> Void = { _ in }, onReady: @escaping @Sendable () -> Void = {}) async throws {
        let router = Router()
        router.add(middleware: Envelope(metrics: metrics, logger: logger))
        if let key = options.apiKey { router.add(middleware: APIKeyCheck(key: key)) }
        routes(router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "prs"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
            logger: logger)
        var config = ServiceGroupConfiguration(
            services: [
                .init(service: app),
                .init(service: Loader(server: self, onReady: onReady), successTerminationBehavior: .ignore),
                .init(service: DrainWatch(state: state, logger: logger), successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        config.maximumGracefulShutdownDuration = .milliseconds(Int64(options.drainSeconds * 1000))
        do { try await ServiceGroup(configuration: config).run() } catch {
            throw state.loadFailure ?? error
        }
        if let failure = state.loadFailure { throw failure }
    }

    func routes(_ router: Router<BasicRequestContext>) {
        router.get("/health") { _, _ -> Response in
            switch self.state.phase {
            case .ready: JSONOut.response(["status": "ok"])
            case .loading: JSONOut.response(["status": "loading"], status: .serviceUnavailable)
            case .draining: JSONOut.response(["status": "shutting down"], status: .serviceUnavailable)
            }
        }
        router.get("/v1/models") { _, _ in JSONOut.response(try self.state.ready().listing) }
        router.get("/metrics") { _, _ in
            let text = self.metrics.render(engine: { self.state.loaded?.engine.statistics() }, inFlight: self.state.inFlight)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        router.post("/v1/chat/completions") { request, _ in try await self.generate(request, .chat) }
        router.post("/v1/completions") { request, _ in try await self.generate(request, .text) }
        router.post("/tokenize") { request, _ in try await self.tokenize(request) }
        router.get("/tokenizer_info") { _, _ in JSONOut.response(try self.state.ready().tokenizerInfo) }
        router.post("/v1/load_lora_adapter") { request, _ in try await self.loadAdapter(request) }
        router.post("/v1/unload_lora_adapter") { request, _ in try await self.unloadAdapter(request) }
        router.post("/detokenize") { request, _ in try await self.detokenize(request) }
    }

    func body(_ body: RequestBody) async throws -> [String: JSONValue] {
        let buffer: ByteBuffer
        do { buffer = try await body.collect(upTo: options.maxBodyBytes) } catch is NIOTooManyBytesError {
            throw APIError.tooLarge(options.maxBodyBytes)
        }
        return try JSONValue.parseObject(Array(buffer.readableBytesView))
    }

    func generate(_ request: Request, _ kind: Job.Kind) async throws -> Response {
        let served = try state.ready()
        let started = ContinuousClock.now
        // A client that goes away cancels the request (and frees its blocks) at once. Watching
        // for that ends the connection after the response, which says so: a client must not
        // send its next request on it.
        var response: Response
        do {
            response = try await generate(request, kind, served, started)
        } catch let e as APIError {
            response = e.response
        }
        response.headers[.connection] = "close"
        return response
    }

    func generate(_ request: Request, _ kind: Job.Kind, _ served: ServedModel, _ started: ContinuousClock.Instant) async throws -> Response {
        try await request.body.consumeWithCancellationOnInboundClose { body in
            let f = Fields(object: try await self.body(body))
            let (name, stack, lease) = try served.resolve(try f.string("model"))
            let job = kind == .chat ? try served.reader.chat(f, modelName: name) : try served.reader.text(f, modelName: name)
            let ticket = try self.state.admit(limit: served.engine.settings.maxBatch + self.options.maxQueue, metrics: self.metrics)
            let out = ResponseWriter(job: job, tokenizer: served.model.tokenizer)
            if job.stream { return self.stream(job, stack, served, out, ticket, lease, started) }
            defer {
                ticket.release()
                lease?.release()
            }
            let first = FirstToken()
            let results = try await self.run(job, stack, served) { _, piece in
                if !piece.tokens.isEmpty, first.mark() { self.metrics.timeToFirstToken.record(ContinuousClock.now - started) }
            }
            self.metrics.requestDuration.record(ContinuousClock.now - started)
            return JSONOut.response(out.body(results))
        }
    }

    /// Runs every prompt of `job` on the engine at once; `onPiece` gets (prompt, piece).
    func run(_ job: Job, _ stack: AdapterStack?, _ served: ServedModel,
             onPiece: @escaping @Sendable (Int, StreamPiece) -> Void) async throws -> [[Completion]] {
        try await withThrowingTaskGroup(of: (Int, [Completion]).self) { group in
            for (p, prompt) in job.prompts.enumerated() {
                group.addTask {
                    (p, try await served.engine.complete(prompt: prompt, n: job.n, options: job.options, adapters: stack,
                                                          onPiece: { onPiece(p, $0) }))
                }
            }
            var results = [[Completion]](repeating: [], count: job.prompts.count)
            for try await (p, r) in group { results[p] = r }
            return results
        }
    }

    enum StreamEvent: Sendable {
        case piece(Int, StreamPiece)
        case done([[Completion]])
        case failed(String)
    }

    /// A server-sent-event response: the generation starts when the body is written and is
    /// cancelled as soon as a write fails (the client went away).
    func stream(_ job: Job, _ stack: AdapterStack?, _ served: ServedModel, _ out: ResponseWriter, _ ticket: Ticket,
                _ lease: AdapterRegistry.Lease?, _ started: ContinuousClock.Instant) -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
            defer {
                ticket.release()
                lease?.release()
            }
            let (events, sink) = AsyncStream.makeStream(of: StreamEvent.self)
            let task = Task {
                do {
                    let r = try await self.run(job, stack, served) { p, piece in sink.yield(.piece(p, piece)) }
                    sink.yield(.done(r))
                } catch is CancellationError {
                } catch {
                    sink.yield(.failed("\(error)"))
                }
                sink.finish()
            }
            var offsets = [Int](repeating: 0, count: job.prompts.count * job.n)
            var firstSeen = false
            do {
                try await writer.write(ByteBuffer(bytes: out.opening()))
                for await event in events {
                    switch event {
                    case .piece(let p, let piece):
                        let index = p * job.n + piece.index
                        if !firstSeen, !piece.tokens.isEmpty {
                            firstSeen = true
                            self.metrics.timeToFirstToken.record(ContinuousClock.now - started)
                        }
                        let echo = job.echo.isEmpty ? 0 : job.echo[p].count
                        let bytes = out.chunks(piece, index: index, offset: echo + offsets[index])
                        offsets[index] += piece.text.count
                        if !bytes.isEmpty { try await writer.write(ByteBuffer(bytes: bytes)) }
                    case .done(let results):
                        try await writer.write(ByteBuffer(bytes: out.closing(results)))
                    case .failed(let message):
                        let e = APIError.server(message)
                        try await writer.write(ByteBuffer(bytes: Array("data: ".utf8) + JSONOut.bytes(["error": ["message": e.message, "type": e.type]]) + Array("\n\n".utf8)))
                    }
                }
                self.metrics.requestDuration.record(ContinuousClock.now - started)
                try await writer.finish(nil)
            } catch {
                task.cancel()
                self.logger.info("stream ended early: the client went away", metadata: ["error": "\(error)"])
                throw error
            }
        })
    }

    func tokenize(_ request: Request) async throws -> Response {
        let served = try state.ready()
        let f = Fields(object: try await body(request.body))
        let tokenizer = served.model.tokenizer
        var ids: [Int32]
        if f["messages"] != nil {
            ids = try served.reader.chat(f, modelName: served.baseName).prompts[0]
        } else {
            // vLLM's `prompt` adds special tokens unless told not to; llama-server's `content` does not.
            let vllm = f["prompt"] != nil
            guard let text = try f.string("prompt") ?? f.string("content") ?? f.string("input") else {
                throw APIError.invalid("prompt (or content) is required: the text to tokenize; or messages", param: "prompt")
            }
            let addSpecial = try f.bool("add_special_tokens") ?? f.bool("add_special") ?? vllm
            ids = addSpecial ? tokenizer.promptTokens(text) : tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        }
        func text(_ t: Int32) -> String { String(decoding: tokenizer.bytes(of: t, special: true), as: UTF8.self) }
        if try f.bool("with_pieces") == true {
            let pieces: [[String: Any]] = ids.map { ["id": Int($0), "piece": text($0)] }
            return JSONOut.response(["tokens": pieces, "count": ids.count, "max_model_len": served.engine.contextTokens])
        }
        var out: [String: Any] = ["tokens": ids.map(Int.init), "count": ids.count, "max_model_len": served.engine.contextTokens]
        if try f.bool("return_token_strs") == true { out["token_strs"] = ids.map(text) }
        return JSONOut.response(out)
    }

    /// The runtime adapter endpoints answer only when the server was started to allow them.
    func runtimeAdapters() throws(APIError) {
        guard options.allowRuntimeLoRA else {
            throw APIError(status: .notFound, message: "Loading adapters at run time is off: start prs serve with --allow-runtime-lora (or PRS_ALLOW_RUNTIME_LORA=1)",
                           type: "invalid_request_error", param: nil, code: "runtime_lora_disabled")
        }
    }

    /// vLLM's `POST /v1/load_lora_adapter {"lora_name", "lora_path"}`: reads the adapter (a GGUF file
    /// or a PEFT directory, `@SCALE` allowed) off the event loop and serves it under its name.
    func loadAdapter(_ request: Request) async throws -> Response {
        try runtimeAdapters()
        let served = try state.ready()
        let f = Fields(object: try await body(request.body))
        guard let name = try f.string("lora_name"), !name.isEmpty else { throw APIError.invalid("lora_name is required", param: "lora_name") }
        guard let spec = try f.string("lora_path"), !spec.isEmpty else { throw APIError.invalid("lora_path is required", param: "lora_path") }
        if served.adapters.contains(name) || name == served.baseName {
            throw APIError.invalid("The lora adapter `\(name)` has already been loaded; unload it first", param: "lora_name", code: "adapter_exists")
        }
        let path = (try? LoRAAdapter.parseSpec(spec))?.path ?? spec
        guard FileManager.default.fileExists(atPath: path) else {
            throw APIError(status: .notFound, message: "lora_path \(path): no such file or directory on the server", type: "invalid_request_error",
                           param: "lora_path", code: "not_found")
        }
        let started = ContinuousClock.now
        let loaded: Result<AdapterStack, any Error> = await withCheckedContinuation { c in
            Thread.detachNewThread { c.resume(returning: Result { try ServedModel.stack(spec, served.model) }) }
        }
        let stack: AdapterStack
        switch loaded {
        case .success(let s): stack = s
        case .failure(let e): throw APIError.invalid("lora_path \(spec): \(e)", param: "lora_path", code: "invalid_adapter")
        }
        try served.adapters.add(name, stack: stack, spec: spec)
        logger.notice("adapter loaded", metadata: ["name": "\(name)", "path": "\(spec)", "took": "\(ContinuousClock.now - started)"])
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "Success: LoRA adapter '\(name)' added successfully.")))
    }

    /// vLLM's `POST /v1/unload_lora_adapter {"lora_name"}`: new requests for it get 404 at once; it
    /// goes when the requests it is serving have finished.
    func unloadAdapter(_ request: Request) async throws -> Response {
        try runtimeAdapters()
        let served = try state.ready()
        let f = Fields(object: try await body(request.body))
        guard let name = try f.string("lora_name"), !name.isEmpty else { throw APIError.invalid("lora_name is required", param: "lora_name") }
        let waited = try await served.adapters.unload(name)
        logger.notice("adapter unloaded", metadata: ["name": "\(name)", "waited_for": "\(waited)"])
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: "Success: LoRA adapter '\(name)' removed successfully.")))
    }

    func detokenize(_ request: Request) async throws -> Response {
        let served = try state.ready()
        let f = Fields(object: try await body(request.body))
        guard let raw = f["tokens"] else { throw APIError.invalid("tokens is required", param: "tokens") }
        guard case .array(let list) = raw else { throw f.wrong("tokens", "an array of token ids", raw) }
        var ids: [Int32] = []
        for (i, v) in list.enumerated() {
            guard case .int(let t) = v, t >= 0, t < Int64(served.model.config.vocabSize) else {
                throw APIError.invalid("tokens[\(i)] is not a token id of this model (0..<\(served.model.config.vocabSize))", param: "tokens")
            }
            ids.append(Int32(t))
        }
        let text = served.model.tokenizer.decode(ids)
        return JSONOut.response(["content": text, "prompt": text])
    }
}

/// Whether a request's first token was seen (set once, from the engine's thread).
final class FirstToken: @unchecked Sendable {
    private let lock = NSLock()
    private var seen = false
    func mark() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if seen { return false }
        seen = true
        return true
    }
}

/// Loads the model off the event loops, then marks the server ready; a failure stops the server.
struct Loader: Service {
    let server: ModelServer
    let onReady: @Sendable () -> Void

    func run() async throws {
        let options = server.options
        let logger = server.logger
        let started = ContinuousClock.now
        let result: Result<ServedModel, any Error> = await withCheckedContinuation { c in
            Thread.detachNewThread { c.resume(returning: Result { try ServedModel(options: options) }) }
        }
        switch result {
        case .success(let served):
            server.state.set(served)
            logger.notice("model loaded", metadata: [
                "model": "\(served.baseName)", "adapters": "\(served.adapters.order.joined(separator: ","))",
                "took": "\(ContinuousClock.now - started)",
            ])
            onReady()
        case .failure(let error):
            server.state.fail(ServerSetupError("\(options.modelPath): \(error)"))
            throw error
        }
    }
}

/// Marks the server as draining when graceful shutdown starts (health turns 503, new generation
/// requests get 503); the HTTP server then stops accepting and lets requests in flight finish.
struct DrainWatch: Service {
    let state: ServerState
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        state.drain()
        logger.notice("shutting down: finishing requests in flight", metadata: ["in_flight": "\(state.inFlight)"])
    }
}

/// Turns every failure into OpenAI's error envelope and counts requests by endpoint and status.
struct Envelope: RouterMiddleware {
    typealias Context = BasicRequestContext
    let metrics: ServerMetrics
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let known = ["/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize",
                     "/tokenizer_info", "/v1/load_lora_adapter", "/v1/unload_lora_adapter"]
        let endpoint = known.contains(path) ? path : "other"
        let response: Response
        do {
            response = try await next(request, context)
        } catch let e as APIError {
            response = e.response
        } catch let e as any HTTPResponseError {
            switch e.status {
            case .notFound: response = APIError.notFound(path).response
            case .methodNotAllowed: response = APIError.methodNotAllowed(path).response
            case .contentTooLarge: response = APIError(status: .contentTooLarge, message: "The request body is too large", type: "invalid_request_error").response
            default: response = APIError(status: e.status, message: "\(e)", type: e.status.code < 500 ? "invalid_request_error" : "server_error").response
            }
        } catch is CancellationError {
            metrics.request(endpoint, status: 499)
            throw CancellationError()
        } catch {
            logger.error("request failed", metadata: ["path": "\(path)", "error": "\(error)"])
            response = APIError.server("\(error)").response
        }
        metrics.request(endpoint, status: Int(response.status.code))
        return response
    }
}

extension APIError {
    init(status: HTTPResponse.Status, message: String, type: String) {
        self.init(status: status, message: message, type: type, param: nil, code: nil, retryAfter: nil)
    }
}

/// `Authorization: Bearer KEY` on everything but health, models and metrics.
struct APIKeyCheck: RouterMiddleware {
    typealias Context = BasicRequestContext
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let open = ["/health", "/v1/models", "/metrics"]
        if !open.contains(request.uri.path), request.headers[.authorization] != "Bearer \(key)" { throw APIError.unauthorized }
        return try await next(request, context)
    }
}
