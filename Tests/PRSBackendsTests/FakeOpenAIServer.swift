import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore

/// An in-process OpenAI-compatible server whose behaviour is chosen by the first path
/// component of the base URL: `http://127.0.0.1:PORT/MODE/v1`.
///
/// Modes: `plain` (one choice, ignores `n`, like llama-cpp-python), `honour-n`, `rate-limited`
/// (429 with `Retry-After: 1` the first time), `server-error` (always 500), `bad-request` (400),
/// `flaky` (500 twice, then fine), `truncated` (half a JSON body), `html` (not JSON), `no-choices`,
/// `slow` (answers after 3 s), `slowish…` (answers after 0.1 s), `drop` (closes the connection
/// mid-body), `needs-key` (401 without `Authorization: Bearer sekret`).
actor FakeOpenAIServer {
    struct Seen: Sendable {
        var mode: String
        var body: [String: JSONAny]
        var authorization: String?
        /// The body as sent, for nested fields.
        var raw: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
        var text = ""
    }

    private(set) var requests: [Seen] = []
    private var counts: [String: Int] = [:]

    func record(_ s: Seen) -> Int {
        requests.append(s)
        counts[s.mode, default: 0] += 1
        return counts[s.mode]!
    }

    func requests(mode: String) -> [Seen] { requests.filter { $0.mode == mode } }

    /// Runs `body` with the base URL builder of a live server.
    static func with<T: Sendable>(
        _ body: @Sendable (FakeOpenAIServer, _ url: @Sendable (String) -> String) async throws -> T
    ) async throws -> T {
        let state = FakeOpenAIServer()
        let router = Router()
        router.get("/:mode/v1/models") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"object":"list","data":[{"id":"fake-model"}]}"#)))
        }
        router.post("/:mode/v1/chat/completions") { request, context -> Response in
            let mode = context.parameters.get("mode") ?? "plain"
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
            let seen = Seen(
                mode: mode, body: json.mapValues(JSONAny.init), authorization: request.headers[.authorization],
                text: String(decoding: Data(bytes.readableBytesView), as: UTF8.self))
            let count = await state.record(seen)
            let n = json["n"] as? Int ?? 1
            let seed = json["seed"] as? Int ?? -1
            func completion(choices: Int) -> Response {
                let cs = (0..<choices).map { i in
                    #"{"index":\#(i),"message":{"role":"assistant","content":"answer seed=\#(seed) i=\#(i)"},"finish_reason":"stop"}"#
                }
                let body =
                    #"{"id":"x","object":"chat.completion","choices":[\#(cs.joined(separator: ","))],"usage":{"prompt_tokens":7,"completion_tokens":\#(3 * choices)}}"#
                return Response(
                    status: .ok, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: body)))
            }
            func status(_ s: HTTPResponse.Status, _ body: String, _ extra: HTTPFields = [:]) -> Response {
                var h: HTTPFields = [.contentType: "application/json"]
                h.append(contentsOf: extra)
                return Response(status: s, headers: h, body: .init(byteBuffer: ByteBuffer(string: body)))
            }
            switch mode {
            case "judge", "judge-no-tokenizer":
                // A rating with its digit alternatives: 6 (¼), 7 (½), 8 (¼), whatever the bias.
                let top = [("6", 0.25), ("7", 0.5), ("8", 0.25), ("Great", 0.0001)].map {
                    #"{"token":"\#($0.0)","logprob":\#(log($0.1))}"#
                }
                let body =
                    #"{"choices":[{"index":0,"message":{"role":"assistant","content":"7"},"finish_reason":"length","logprobs":{"content":[{"token":"7","logprob":\#(log(0.5)),"top_logprobs":[\#(top.joined(separator: ","))]}]}}],"usage":{"prompt_tokens":30,"completion_tokens":1}}"#
                return status(.ok, body)
            case "honour-n": return completion(choices: n)
            case "rate-limited":
                if count == 1 {
                    return status(.tooManyRequests, #"{"error":"slow down"}"#, [HTTPField.Name("Retry-After")!: "1"])
                }
                return completion(choices: 1)
            case "server-error": return status(.internalServerError, #"{"error":"boom"}"#)
            case "flaky": return count <= 2 ? status(.badGateway, "bad gateway") : completion(choices: 1)
            case "bad-request": return status(.badRequest, #"{"error":{"message":"unknown field top_k"}}"#)
            case "truncated": return status(.ok, #"{"choices":[{"index":0,"message":{"role":"assis"#)
            case "html":
                return Response(
                    status: .ok, headers: [.contentType: "text/html"],
                    body: .init(byteBuffer: ByteBuffer(string: "<html>proxy error</html>")))
            case "no-choices": return status(.ok, #"{"choices":[]}"#)
            case "slow":
                try await Task.sleep(nanoseconds: 3_000_000_000)
                return completion(choices: 1)
            case let m where m.hasPrefix("slowish"):
                // Long enough that balancing, not which client task the scheduler runs first, decides the split.
                try await Task.sleep(nanoseconds: 100_000_000)
                return completion(choices: 1)
            case "drop":
                return Response(
                    status: .ok, headers: [.contentType: "application/json", .contentLength: "500"],
                    body: ResponseBody { writer in
                        try await writer.write(ByteBuffer(string: #"{"choices":[{"#))
                        throw CancellationError()
                    })
            case "needs-key":
                guard request.headers[.authorization] == "Bearer sekret" else {
                    return status(.unauthorized, #"{"error":"bad key"}"#)
                }
                return completion(choices: 1)
            default: return completion(choices: 1)
            }
        }
        // llama.cpp's and vLLM's tokenizer endpoint, at the server's root: a digit is token 100 + digit.
        router.post("/:mode/tokenize") { request, context -> Response in
            guard context.parameters.get("mode") == "judge" else { return Response(status: .notFound) }
            let bytes = try await request.body.collect(upTo: 1 << 16)
            let json = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
            let text = json["content"] as? String ?? ""
            let ids = text.count == 1 && text.first!.isNumber ? [100 + Int(text)!] : [1, 2]
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"tokens":\#(ids)}"#)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            let port = client.port!
            return try await body(state) { mode in "http://127.0.0.1:\(port)/\(mode)/v1" }
        }
    }
}

/// A JSON value seen by the fake server, kept Sendable.
enum JSONAny: Sendable, Equatable {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)
    case other

    init(_ v: Any) {
        switch v {
        case let b as Bool where type(of: v) == type(of: true): self = .bool(b)
        case let i as Int: self = .int(i)
        case let d as Double: self = .double(d)
        case let s as String: self = .string(s)
        default: self = .other
        }
    }
}
