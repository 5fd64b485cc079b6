import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PRSCore

/// An error as OpenAI's API shapes it: `{"error": {"message", "type", "param", "code"}}`, with
/// the HTTP status that goes with it.
struct APIError: Error, Sendable, CustomStringConvertible {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var code: String?
    var retryAfter: Int?

    var description: String { "\(status.code) \(message)" }

    static func invalid(_ message: String, param: String? = nil, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func unknownModel(_ name: String, known: [String]) -> APIError {
        APIError(
            status: .notFound,
            message:
                "The model `\(name)` does not exist; this server has "
                + "\(known.map { "`\($0)`" }.joined(separator: ", "))",
            type: "invalid_request_error", param: "model", code: "model_not_found")
    }

    static let unauthorized = APIError(
        status: .unauthorized, message: "Missing or incorrect API key: send it as `Authorization: Bearer KEY`",
        type: "invalid_request_error", param: nil, code: "invalid_api_key")

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(
            status: .contentTooLarge, message: "The request body is larger than this server's limit of \(limit) bytes",
            type: "invalid_request_error", param: nil, code: "request_too_large")
    }

    static func busy(_ queued: Int) -> APIError {
        APIError(
            status: .tooManyRequests,
            message: "The server's queue is full (\(queued) requests waiting); retry after a moment",
            type: "rate_limit_error", param: nil, code: "queue_full", retryAfter: 1)
    }

    static let loading = APIError(
        status: .serviceUnavailable, message: "The model is still loading", type: "server_error",
        param: nil, code: "loading", retryAfter: 1)

    static let shuttingDown = APIError(
        status: .serviceUnavailable, message: "The server is shutting down", type: "server_error",
        param: nil, code: "shutting_down", retryAfter: 5)

    static func notFound(_ path: String) -> APIError {
        APIError(
            status: .notFound, message: "No route \(path)", type: "invalid_request_error", param: nil, code: "not_found"
        )
    }

    static func methodNotAllowed(_ path: String) -> APIError {
        APIError(
            status: .methodNotAllowed, message: "Method not allowed on \(path)", type: "invalid_request_error",
            param: nil, code: nil)
    }

    static func server(_ message: String) -> APIError {
        APIError(status: .internalServerError, message: message, type: "server_error", param: nil, code: nil)
    }

    /// OpenAI's error envelope: `{"error": {"message", "type", "param", "code"}}`, nulls written.
    struct Envelope: Encodable, Sendable {
        struct Detail: Encodable, Sendable {
            var message: String
            var type: String
            var param: OrNull<String>
            var code: OrNull<String>
        }
        var error: Detail
    }

    var response: Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        let body = Envelope(error: .init(message: message, type: type, param: OrNull(param), code: OrNull(code)))
        return Response(
            status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONOut.bytes(body))))
    }
}
