import Foundation
import LMEngine
import PRSCore

/// Where an HTTP reward model is and how to talk to it, read from the text after `http:`.
///
/// `URL[#option=value&…]`. The URL's last path component names the protocol (`pooling`,
/// `classify`, `score` or `get_reward`). Options: `model` (sent as `model`; by default none is
/// sent and a vLLM server uses the one it serves), `format` (`chat`, the default, or `raw`),
/// `template` (how `chat` is rendered for endpoints that take strings: `chatml`, the default,
/// `llama3`, `mistral` or `gemma`), `batch` (inputs per request, default 16) and `concurrency`
/// (requests in flight, default 4). A fragment without `=` is a model name, as in `openai:URL#model`.
public struct HTTPRewardSpec: Sendable, Hashable {
    /// The wire protocol, named by the URL's last path component.
    public enum Endpoint: String, Sendable, CaseIterable {
        case pooling, classify, score
        case getReward = "get_reward"
    }

    /// How a prompt and its response become what the reward model reads.
    public enum TextFormat: String, Sendable, CaseIterable {
        /// A user turn and an assistant turn.
        case chat
        /// The user turn and the response joined by a blank line.
        case raw
    }

    public var url: String
    public var endpoint: Endpoint
    public var model: String?
    public var format: TextFormat
    public var template: ChatTemplate
    public var batch: Int
    public var concurrency: Int

    public static let optionNames = ["model", "format", "template", "batch", "concurrency"]

    public init(
        url: String, endpoint: Endpoint, model: String? = nil, format: TextFormat = .chat,
        template: ChatTemplate = .chatML(defaultSystem: nil), batch: Int = 16, concurrency: Int = 4
    ) {
        self.url = url
        self.endpoint = endpoint
        self.model = model
        self.format = format
        self.template = template
        self.batch = max(1, batch)
        self.concurrency = max(1, concurrency)
    }

    /// Names the protocol, URL and everything that changes the rewards (not batch or concurrency).
    public var identity: String {
        var parts = [endpoint.rawValue, url]
        if let model { parts.append("model=\(model)") }
        if endpoint != .score {
            parts.append("format=\(format.rawValue)")
            if format == .chat, endpoint != .pooling { parts.append("template=\(template.name)") }
        }
        return "http[\(parts.joined(separator: " "))]"
    }
}
