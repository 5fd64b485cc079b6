import Foundation
import HTTPTypes
import Hummingbird
import LMEngine
import Logging
import NIOCore
import PRSCore
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
    public func run(
        onListening: @escaping @Sendable (Int) -> Void = { _ in }, onReady: @escaping @Sendable () -> Void = {}
    ) async throws {
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
            case .ready: JSONOut.response(HealthBody(status: "ok"))
            case .loading: JSONOut.response(HealthBody(status: "loading"), status: .serviceUnavailable)
            case .draining: JSONOut.response(HealthBody(status: "shutting down"), status: .serviceUnavailable)
            }
        }
        router.get("/v1/models") { _, _ in JSONOut.response(try self.state.ready().listing) }
        router.get("/metrics") { _, _ in
            let text = self.metrics.render(
                engine: { self.state.loaded?.engine.statistics() }, inFlight: self.state.inFlight)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
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
}
