/// A request for `n` independent completions of one conversation.
public struct GenerationRequest: Sendable, Hashable {
    public var messages: [ChatMessage]
    public var n: Int
    public var parameters: SamplingParameters
    /// The start of the reply, written for the model (e.g. `Rating: `); the generation's text is what follows it.
    public var prefill: String?
    /// A forced choice: the reply is one of these texts, each one token of the model, and the
    /// generation's first `logprobs` entry lists every choice (`top`) with its log-probability there.
    /// A backend that cannot restrict the token still returns what it can (text, alternatives).
    public var choices: [String]?

    public init(
        messages: [ChatMessage], n: Int = 1, parameters: SamplingParameters, prefill: String? = nil,
        choices: [String]? = nil
    ) {
        self.messages = messages
        self.n = n
        self.parameters = parameters
        self.prefill = prefill
        self.choices = choices
    }
}

/// Why a generation ended.
public enum FinishReason: String, Sendable, Hashable, Codable {
    /// An end-of-sequence token or a stop string.
    case stop
    /// The token limit.
    case length
    case other
}

/// Tokens read and written by one generation.
public struct TokenUsage: Sendable, Hashable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int = 0, completionTokens: Int = 0) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    public static let zero = TokenUsage()
    public var total: Int { promptTokens + completionTokens }

    public static func + (a: TokenUsage, b: TokenUsage) -> TokenUsage {
        TokenUsage(
            promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens)
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
    }
}

/// The log-probability of one generated token and of the most likely alternatives at its position.
public struct TokenLogprob: Sendable, Hashable, Codable {
    public var token: String
    public var logprob: Double
    public var top: [Alternative]

    public struct Alternative: Sendable, Hashable, Codable {
        public var token: String
        public var logprob: Double
        public init(token: String, logprob: Double) {
            self.token = token
            self.logprob = logprob
        }
    }

    public init(token: String, logprob: Double, top: [Alternative]) {
        self.token = token
        self.logprob = logprob
        self.top = top
    }
}

/// One completion returned by a `TextGenerator`.
public struct Generation: Sendable, Hashable {
    public var text: String
    public var finishReason: FinishReason
    public var usage: TokenUsage
    /// The seed that produced this completion, when the backend used one.
    public var seed: UInt64?
    /// Wall time of the request that produced it, in milliseconds.
    public var latencyMs: Double
    public var logprobs: [TokenLogprob]?

    public init(
        text: String, finishReason: FinishReason, usage: TokenUsage, seed: UInt64?,
        latencyMs: Double, logprobs: [TokenLogprob]? = nil
    ) {
        self.text = text
        self.finishReason = finishReason
        self.usage = usage
        self.seed = seed
        self.latencyMs = latencyMs
        self.logprobs = logprobs
    }
}

/// Something that writes text: a server, an embedded engine, a scripted double.
public protocol TextGenerator: Sendable {
    /// A short name of the model and where it runs, recorded with a run.
    var identity: String { get }
    /// Returns exactly `request.n` completions, in order. A backend that cannot do `n`
    /// in one call fans out with seeds `seed, seed+1, …`.
    func generate(_ request: GenerationRequest) async throws -> [Generation]
}
