import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A complete 2xx reply.
struct HTTPReply: Sendable {
    var body: ByteBuffer
    var text: String { String(buffer: body) }
    var data: Data { Data(body.readableBytesView) }
}

extension HTTPClient {
    /// One attempt at a request, sent with `Authorization: Bearer` when there is a key, under a
    /// deadline for the whole exchange (connect, head and body). Anything but a complete 2xx
    /// reply comes back as a classified `HTTPFailure`, never as a raw error.
    func exchange(
        _ url: String, method: HTTPMethod = .POST, json: Data? = nil, apiKey: String?,
        timeout: Double, request: String, limit: Int = 64 << 20
    ) async -> Result<HTTPReply, HTTPFailure> {
        func fail(_ kind: HTTPFailure.Kind, retryAfter: Double? = nil) -> Result<HTTPReply, HTTPFailure> {
            .failure(
                HTTPFailure(kind: kind, method: method.rawValue, url: url, request: request, retryAfter: retryAfter))
        }
        let reply: (HTTPResponseStatus, HTTPHeaders, ByteBuffer)
        do {
            reply = try await withTimeout(seconds: timeout) { [self] in
                var req = HTTPClientRequest(url: url)
                req.method = method
                if let apiKey { req.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
                if let json {
                    req.headers.add(name: "Content-Type", value: "application/json")
                    req.body = .bytes(ByteBuffer(bytes: json))
                }
                let response = try await execute(req, timeout: .seconds(Int64(max(1, timeout.rounded(.up)))))
                let bytes = try await response.body.collect(upTo: limit)
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
        let (status, headers, bytes) = reply
        guard (200..<300).contains(Int(status.code)) else {
            let after = RetryPolicy.retryAfter(headers: headers.map { ($0.name, $0.value) })
            return fail(.status(Int(status.code), body: String(buffer: bytes)), retryAfter: after)
        }
        return .success(HTTPReply(body: bytes))
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
