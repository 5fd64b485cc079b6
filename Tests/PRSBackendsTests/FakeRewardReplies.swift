import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What `FakeRewardServer` answers: the checks on a request and the reply's shape per protocol.
enum FakeRewardReplies {
    struct Refusal: Error { var message: String }

    static func reply(endpoint: String, mode: String, count: Int, json: [String: Any]) -> Response {
        switch mode {
        case "flaky" where count == 1: return status(.internalServerError, #"{"error":"warming up"}"#)
        case "rate-limited" where count == 1:
            return status(.tooManyRequests, #"{"error":"slow down"}"#, [HTTPField.Name("Retry-After")!: "1"])
        case "bad-request":
            return status(
                .badRequest, #"{"object":"error","message":"maximum context length is 8192 tokens","code":400}"#)
        case "html":
            return Response(
                status: .ok, headers: [.contentType: "text/html"],
                body: .init(byteBuffer: ByteBuffer(string: "<html>502 proxy error</html>")))
        case "missing-key": return status(.ok, #"{"object":"list","results":[1.0]}"#)
        default: break
        }
        do {
            var rewards = try responses(endpoint: endpoint, json: json).map(FakeRewardServer.reward)
            if mode == "wrong-count" { rewards.removeLast() }
            return status(.ok, try body(endpoint: endpoint, mode: mode, rewards: rewards))
        } catch let r as Refusal {
            return status(.badRequest, #"{"object":"error","message":"\#(r.message)"}"#)
        } catch {
            return status(.internalServerError, "\(error)")
        }
    }

    /// The responses a request asks to score, checked as the real server would read them.
    static func responses(endpoint: String, json: [String: Any]) throws -> [String] {
        if let model = json["model"], !(model is String) { throw Refusal(message: "model must be a string") }
        switch endpoint {
        case "pooling":
            if let messages = json["messages"] as? [[String: String]] {
                guard messages.map({ $0["role"] ?? "" }) == ["user", "assistant"] else {
                    throw Refusal(message: "expected a user and an assistant message")
                }
                return [messages[1]["content"] ?? ""]
            }
            return try texts(json["input"]).map(response(in:))
        case "classify":
            guard json["use_activation"] as? Bool == false else {
                throw Refusal(message: "use_activation must be false for a raw reward")
            }
            return try texts(json["input"]).map(response(in:))
        case "score":
            guard json["text_1"] is String || json["text_1"] is [String] else {
                throw Refusal(message: "text_1 must be a string or a list")
            }
            let second = try texts(json["text_2"])
            if let firsts = json["text_1"] as? [String], firsts.count != second.count {
                throw Refusal(message: "text_1 and text_2 differ in length")
            }
            return second
        default:
            let queries = try texts(json["query"])
            guard let prompts = json["prompts"] as? [String], prompts.count == queries.count,
                zip(prompts, queries).allSatisfy({ $1.hasPrefix($0) })
            else { throw Refusal(message: "each query must start with its prompt") }
            return try queries.map(response(in:))
        }
    }

    static func texts(_ value: Any?) throws -> [String] {
        guard let list = value as? [String], !list.isEmpty else {
            throw Refusal(message: "expected a non-empty list of strings")
        }
        return list
    }

    /// The response inside a formatted text: the ChatML assistant turn, or what follows the last blank line.
    static func response(in text: String) throws -> String {
        if let open = text.range(of: "<|im_start|>assistant\n", options: .backwards) {
            guard let close = text.range(of: "<|im_end|>", range: open.upperBound..<text.endIndex) else {
                throw Refusal(message: "the assistant turn is not closed")
            }
            return String(text[open.upperBound..<close.lowerBound])
        }
        guard let gap = text.range(of: "\n\n", options: .backwards) else {
            throw Refusal(message: "no response in \(text)")
        }
        return String(text[gap.upperBound...])
    }

    static func body(endpoint: String, mode: String, rewards: [Double]) throws -> String {
        if endpoint == "get_reward" {
            if mode == "nan" { return #"{"rewards":[NaN]}"# }
            return String(
                decoding: try JSONSerialization.data(withJSONObject: ["rewards": rewards, "extra_logs": [:]]),
                as: UTF8.self)
        }
        var items: [[String: Any]] = rewards.enumerated().map { i, r in
            switch endpoint {
            case "classify":
                ["index": i, "label": "LABEL_0", "probs": mode == "two-labels" ? [r, 1 - r] : [r], "num_classes": 1]
            case "score": ["index": i, "object": "score", "score": r]
            default:
                [
                    "index": i, "object": "pooling",
                    "data": mode == "scalar" ? r as Any : mode == "per-token" ? [[0.25], [-1.0], [r]] : [r],
                ]
            }
        }
        if mode == "shuffled" { items.reverse() }
        return String(
            decoding: try JSONSerialization.data(withJSONObject: ["object": "list", "data": items]), as: UTF8.self)
    }

    static func status(_ s: HTTPResponse.Status, _ body: String, _ extra: HTTPFields = [:]) -> Response {
        var h: HTTPFields = [.contentType: "application/json"]
        h.append(contentsOf: extra)
        return Response(status: s, headers: h, body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}
