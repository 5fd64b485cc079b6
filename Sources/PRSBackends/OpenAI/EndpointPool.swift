/// Base URLs of one model, balanced by outstanding requests, with a per-endpoint limit.
///
/// An actor at a resource boundary: `acquire` hands out the endpoint with the fewest
/// requests in flight (the first on ties) and waits while every endpoint is at its limit.
actor EndpointPool {
    struct Endpoint: Sendable {
        let baseURL: String
        let model: String?
        var outstanding = 0
        /// The most choices the server returned for one request; `nil` until a request with `n > 1` was answered.
        var maxN: Int?
    }

    private var endpoints: [Endpoint]
    private let limit: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    init(_ endpoints: [(baseURL: String, model: String?)], limitPerEndpoint: Int) {
        self.endpoints = endpoints.map { Endpoint(baseURL: $0.baseURL, model: $0.model) }
        self.limit = max(1, limitPerEndpoint)
    }

    /// Index of the endpoint to use; pair with `release`.
    func acquire() async -> Int {
        while true {
            if let i = leastLoaded() {
                endpoints[i].outstanding += 1
                return i
            }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    func release(_ i: Int) {
        endpoints[i].outstanding -= 1
        if !waiters.isEmpty { waiters.removeFirst().resume() }
    }

    func endpoint(_ i: Int) -> Endpoint { endpoints[i] }

    /// Records how many choices a request for `asked > 1` returned.
    func observe(endpoint i: Int, asked: Int, got: Int) {
        guard asked > 1 else { return }
        let seen = min(asked, got)
        if got < asked {
            endpoints[i].maxN = seen
        } else if endpoints[i].maxN == nil || seen > endpoints[i].maxN! {
            endpoints[i].maxN = seen
        }
    }

    private func leastLoaded() -> Int? {
        var best: Int?
        for i in endpoints.indices where endpoints[i].outstanding < limit {
            if best == nil || endpoints[i].outstanding < endpoints[best!].outstanding { best = i }
        }
        return best
    }
}
