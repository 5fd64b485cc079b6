import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore

/// An in-process reward server speaking vLLM's `/pooling`, `/classify` and `/score` and
/// OpenRLHF's `/get_reward`, at `http://127.0.0.1:PORT/MODE/ENDPOINT`.
///
/// It checks each request the way the real server would (a bad one gets a 400 naming the
/// problem) and rewards a response by its length in characters plus 0.5, so tests can check
/// order, batching and text formatting. Modes: `ok`; `scalar` and `per-token` (other shapes of
/// `/pooling` data); `shuffled` (results out of order, with correct indices); `flaky` (500, then
/// fine); `rate-limited` (429 with `Retry-After: 1`, then fine); `bad-request` (400 with a body);
/// `html` (200 with a web page); `wrong-count` (one result too few); `missing-key` (no
/// `data`/`rewards`); `nan` (a bare NaN reward); `two-labels` (`/classify` with two probs).
actor FakeRewardServer {
    struct Seen: Sendable {
        var mode: String
        var endpoint: String
        var body: Data
        var authorization: String?
        /// The body as a JSON object (for `#expect`s on its fields).
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
    }

    private(set) var requests: [Seen] = []

    func record(_ s: Seen) -> Int {
        requests.append(s)
        return requests.count { $0.mode == s.mode && $0.endpoint == s.endpoint }
    }

    func requests(mode: String) -> [Seen] { requests.filter { $0.mode == mode } }

    static let endpoints = ["pooling", "classify", "score", "get_reward"]

    /// The reward the server gives a response.
    static func reward(_ response: String) -> Double { Double(response.count) + 0.5 }

    /// Runs `body` with a URL builder of a live server: `url("ok", "pooling")`.
    static func with<T: Sendable>(
        _ body: @Sendable (FakeRewardServer, _ url: @Sendable (String, String) -> String) async throws -> T
    ) async throws -> T {
        let state = FakeRewardServer()
        let router = Router()
        for endpoint in endpoints {
            router.post("/:mode/\(endpoint)") { request, context -> Response in
                let mode = context.parameters.get("mode") ?? "ok"
                let bytes = try await request.body.collect(upTo: 1 << 20)
                let seen = Seen(
                    mode: mode, endpoint: endpoint, body: Data(bytes.readableBytesView),
                    authorization: request.headers[.authorization])
                let count = await state.record(seen)
                return FakeRewardReplies.reply(endpoint: endpoint, mode: mode, count: count, json: seen.json)
            }
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            let port = client.port!
            return try await body(state) { mode, endpoint in "http://127.0.0.1:\(port)/\(mode)/\(endpoint)" }
        }
    }
}
