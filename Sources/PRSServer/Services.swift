import Foundation
import HTTPTypes
import Hummingbird
import LMEngine
import Logging
import NIOCore
import PRSCore
import ServiceLifecycle

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
            logger.notice(
                "model loaded",
                metadata: [
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
