import Foundation

/// Where the server is: loading, ready or draining; and the generation requests it holds.
final class ServerState: @unchecked Sendable {
    enum Phase { case loading, ready, draining }
    private let lock = NSLock()
    private var served: ServedModel?
    private var failure: (any Error)?
    private var draining = false
    private var held = 0

    var phase: Phase {
        lock.lock()
        defer { lock.unlock() }
        return draining ? .draining : served == nil ? .loading : .ready
    }

    var loaded: ServedModel? {
        lock.lock()
        defer { lock.unlock() }
        return served
    }

    var loadFailure: (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return failure
    }

    var inFlight: Int {
        lock.lock()
        defer { lock.unlock() }
        return held
    }

    func set(_ s: ServedModel) {
        lock.lock()
        served = s
        lock.unlock()
    }

    func fail(_ e: any Error) {
        lock.lock()
        failure = e
        lock.unlock()
    }

    func drain() {
        lock.lock()
        draining = true
        lock.unlock()
    }

    /// The model, or 503 while it loads.
    func ready() throws(APIError) -> ServedModel {
        lock.lock()
        defer { lock.unlock() }
        guard let served else { throw .loading }
        return served
    }

    /// Admits a generation request, or refuses it: 503 while draining, 429 when `limit` are held.
    func admit(limit: Int, metrics: ServerMetrics) throws(APIError) -> Ticket {
        lock.lock()
        defer { lock.unlock() }
        if draining { throw .shuttingDown }
        if held >= limit {
            metrics.rejected.increment()
            throw .busy(held)
        }
        held += 1
        return Ticket(self)
    }

    fileprivate func leave() {
        lock.lock()
        held -= 1
        lock.unlock()
    }
}

/// A held generation request; released once, explicitly or when dropped.
final class Ticket: @unchecked Sendable {
    private let state: ServerState
    private let lock = NSLock()
    private var done = false

    fileprivate init(_ state: ServerState) { self.state = state }

    func release() {
        lock.lock()
        let first = !done
        done = true
        lock.unlock()
        if first { state.leave() }
    }

    deinit { release() }
}
