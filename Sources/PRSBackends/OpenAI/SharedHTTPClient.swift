import AsyncHTTPClient

extension HTTPClient {
    /// The process-wide client of prs's HTTP backends. Unlike `HTTPClient.shared` it fails a
    /// request at once when a connection cannot be made, so `RetryPolicy` (not the pool's own
    /// hidden backoff) decides when to try again and the error names the refused URL.
    /// Lives for the process, so it is never shut down.
    public static let prs: HTTPClient = {
        var config = HTTPClient.Configuration()
        config.timeout.connect = .seconds(10)
        config.connectionPool.retryConnectionEstablishment = false
        config.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }()
}
