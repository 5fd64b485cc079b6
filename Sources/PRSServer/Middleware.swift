import Foundation
import HTTPTypes
import Hummingbird
import LMEngine
import Logging
import NIOCore
import PRSCore
import ServiceLifecycle

/// Turns every failure into OpenAI's error envelope and counts requests by endpoint and status.
struct Envelope: RouterMiddleware {
    typealias Context = BasicRequestContext
    let metrics: ServerMetrics
    let logger: Logger

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        let known = [
            "/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize",
            "/tokenizer_info", "/v1/load_lora_adapter", "/v1/unload_lora_adapter",
        ]
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
            case .contentTooLarge:
                response =
                    APIError(
                        status: .contentTooLarge, message: "The request body is too large",
                        type: "invalid_request_error"
                    ).response
            default:
                response =
                    APIError(
                        status: e.status, message: "\(e)",
                        type: e.status.code < 500 ? "invalid_request_error" : "server_error"
                    ).response
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

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let open = ["/health", "/v1/models", "/metrics"]
        if !open.contains(request.uri.path), request.headers[.authorization] != "Bearer \(key)" {
            throw APIError.unauthorized
        }
        return try await next(request, context)
    }
}
