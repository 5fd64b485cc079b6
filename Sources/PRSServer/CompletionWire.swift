import Foundation

/// The completions family's response types: whole bodies, stream chunks and their parts, in
/// OpenAI's shapes (and vLLM's `prompt_logprobs`).
enum CompletionWire {
    struct Usage: Encodable, Sendable {
        var promptTokens: Int
        var completionTokens: Int
        var totalTokens: Int
        enum CodingKeys: String, CodingKey {
            case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        }
    }

    /// Chat log-probabilities: `{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}`.
    struct ChatLogprobs: Encodable, Sendable {
        struct Alternative: Encodable, Sendable {
            var token: String
            var logprob: Double
            var bytes: [Int]
        }
        struct Token: Encodable, Sendable {
            var token: String
            var logprob: Double
            var bytes: [Int]
            var topLogprobs: [Alternative]
            enum CodingKeys: String, CodingKey { case token, logprob, bytes, topLogprobs = "top_logprobs" }
        }
        var content: [Token]
    }

    /// Text-completion log-probabilities: tokens, token_logprobs, top_logprobs, text_offset (the
    /// first prompt token's entries `null` when the prompt is echoed).
    struct TextLogprobs: Encodable, Sendable {
        var tokens: [String] = []
        var tokenLogprobs: [OrNull<Double>] = []
        var topLogprobs: [OrNull<[String: Double]>] = []
        var textOffset: [Int] = []
        enum CodingKeys: String, CodingKey {
            case tokens, tokenLogprobs = "token_logprobs", topLogprobs = "top_logprobs", textOffset = "text_offset"
        }
    }

    /// vLLM's prompt log-probability of one token id: its log-probability, rank and text.
    struct RankedLogprob: Encodable, Sendable {
        var logprob: Double
        var rank: Int
        var decodedToken: String
        enum CodingKeys: String, CodingKey { case logprob, rank, decodedToken = "decoded_token" }
    }

    /// vLLM's `prompt_logprobs`: `null` for the first prompt token, then token id → ranked log-probability.
    typealias PromptLogprobs = [OrNull<[String: RankedLogprob]>]

    struct Message: Encodable, Sendable {
        var role = "assistant"
        var content: String
    }

    /// One choice of a whole response: a chat message or a text, with its log-probabilities.
    struct Choice: Encodable, Sendable {
        var index: Int
        var finishReason: String
        var message: Message?
        var text: String?
        var chatLogprobs: ChatLogprobs?
        var textLogprobs: TextLogprobs?
        var promptLogprobs: PromptLogprobs?

        enum CodingKeys: String, CodingKey {
            case index, finishReason = "finish_reason", message, text, logprobs, promptLogprobs = "prompt_logprobs"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(finishReason, forKey: .finishReason)
            try c.encodeIfPresent(message, forKey: .message)
            try c.encodeIfPresent(text, forKey: .text)
            try CompletionWire.encodeLogprobs(chatLogprobs, textLogprobs, into: &c, forKey: .logprobs)
            try c.encodeIfPresent(promptLogprobs, forKey: .promptLogprobs)
        }
    }

    /// A whole chat or text completion response.
    struct Body: Encodable, Sendable {
        var id: String
        var object: String
        var created: Int
        var model: String
        var choices: [Choice]
        var usage: Usage
        var systemFingerprint = "prs"
        /// Chat with vLLM's `prompt_logprobs`: the prompt's, once for the response.
        var promptLogprobs: PromptLogprobs?
        enum CodingKeys: String, CodingKey {
            case id, object, created, model, choices, usage
            case systemFingerprint = "system_fingerprint", promptLogprobs = "prompt_logprobs"
        }
    }

    /// A chat stream's delta: the role first, then content (`{}` with the finish).
    struct Delta: Encodable, Sendable {
        var role: String?
        var content: String?
    }

    /// One choice of a stream chunk.
    struct ChunkChoice: Encodable, Sendable {
        var index: Int
        var delta: Delta?
        var text: String?
        var chatLogprobs: ChatLogprobs?
        var textLogprobs: TextLogprobs?
        var finishReason: String?

        enum CodingKeys: String, CodingKey { case index, delta, text, logprobs, finishReason = "finish_reason" }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encodeIfPresent(delta, forKey: .delta)
            try c.encodeIfPresent(text, forKey: .text)
            try CompletionWire.encodeLogprobs(chatLogprobs, textLogprobs, into: &c, forKey: .logprobs)
            try c.encode(OrNull(finishReason), forKey: .finishReason)
        }
    }

    /// A stream chunk; `usage` is written (as `null` until the last chunk) only when the client asked for it.
    struct Chunk: Encodable, Sendable {
        var id: String
        var object: String
        var created: Int
        var model: String
        var choices: [ChunkChoice]
        var usage: OrNull<Usage>?
        var systemFingerprint = "prs"
        enum CodingKeys: String, CodingKey {
            case id, object, created, model, choices, usage, systemFingerprint = "system_fingerprint"
        }
    }

    /// A choice's `logprobs`: the chat or the text shape, or `null`.
    static func encodeLogprobs<K: CodingKey>(
        _ chat: ChatLogprobs?, _ text: TextLogprobs?,
        into c: inout KeyedEncodingContainer<K>, forKey key: K
    ) throws {
        if let chat {
            try c.encode(chat, forKey: key)
        } else if let text {
            try c.encode(text, forKey: key)
        } else {
            try c.encodeNil(forKey: key)
        }
    }

    /// An error in the middle of a stream.
    struct StreamError: Encodable, Sendable {
        struct Detail: Encodable, Sendable {
            var message: String
            var type: String
        }
        var error: Detail
    }
}
