import Foundation
import HTTPTypes
import Hummingbird
import LMEngine
import Logging
import NIOCore
import PRSCore
import ServiceLifecycle

/// `POST /v1/chat/completions` and `POST /v1/completions`: read, admitted, run on the engine, answered whole or streamed.
extension ModelServer {
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

    func generate(
        _ request: Request, _ kind: Job.Kind, _ served: ServedModel, _ started: ContinuousClock.Instant
    ) async throws -> Response {
        try await request.body.consumeWithCancellationOnInboundClose { body in
            let f = Fields(object: try await self.body(body))
            let (name, stack, lease) = try served.resolve(try f.string("model"))
            let job =
                kind == .chat ? try served.reader.chat(f, modelName: name) : try served.reader.text(f, modelName: name)
            let ticket = try self.state.admit(
                limit: served.engine.settings.maxBatch + self.options.maxQueue, metrics: self.metrics)
            let out = ResponseWriter(job: job, tokenizer: served.model.tokenizer)
            if job.stream { return self.stream(job, stack, served, out, ticket, lease, started) }
            defer {
                ticket.release()
                lease?.release()
            }
            let first = FirstToken()
            let results = try await self.run(job, stack, served) { _, piece in
                if !piece.tokens.isEmpty, first.mark() {
                    self.metrics.timeToFirstToken.record(ContinuousClock.now - started)
                }
            }
            self.metrics.requestDuration.record(ContinuousClock.now - started)
            return JSONOut.response(out.body(results))
        }
    }

    /// Runs every prompt of `job` on the engine at once; `onPiece` gets (prompt, piece).
    func run(
        _ job: Job, _ stack: AdapterStack?, _ served: ServedModel,
        onPiece: @escaping @Sendable (Int, StreamPiece) -> Void
    ) async throws -> [[Completion]] {
        try await withThrowingTaskGroup(of: (Int, [Completion]).self) { group in
            for (p, prompt) in job.prompts.enumerated() {
                group.addTask {
                    (
                        p,
                        try await served.engine.complete(
                            prompt: prompt, n: job.n, options: job.options, adapters: stack,
                            onPiece: { onPiece(p, $0) })
                    )
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
    func stream(
        _ job: Job, _ stack: AdapterStack?, _ served: ServedModel, _ out: ResponseWriter, _ ticket: Ticket,
        _ lease: AdapterRegistry.Lease?, _ started: ContinuousClock.Instant
    ) -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { [self] writer in
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
                            try await writer.write(
                                ByteBuffer(
                                    bytes: Array("data: ".utf8)
                                        + JSONOut.bytes(
                                            CompletionWire.StreamError(error: .init(message: e.message, type: e.type)))
                                        + Array("\n\n".utf8)))
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
