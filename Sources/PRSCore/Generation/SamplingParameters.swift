/// How to sample one generation. `nil` leaves a setting to the backend's default.
public struct SamplingParameters: Sendable, Hashable, Codable {
    public var temperature: Double?
    public var topP: Double?
    public var topK: Int?
    public var minP: Double?
    public var presencePenalty: Double?
    public var frequencyPenalty: Double?
    public var repetitionPenalty: Double?
    public var maxTokens: Int?
    public var stop: [String]?
    /// The seed of the first sample; sample `i` of a request uses `seed + i`.
    public var seed: UInt64?
    public var logprobs: Bool?
    /// How many alternatives to return with each chosen token's log-probability.
    public var topLogprobs: Int?

    public init(
        temperature: Double? = nil, topP: Double? = nil, topK: Int? = nil, minP: Double? = nil,
        presencePenalty: Double? = nil, frequencyPenalty: Double? = nil, repetitionPenalty: Double? = nil,
        maxTokens: Int? = nil, stop: [String]? = nil, seed: UInt64? = nil,
        logprobs: Bool? = nil, topLogprobs: Int? = nil
    ) {
        self.temperature = temperature
        self.topP = topP
        self.topK = topK
        self.minP = minP
        self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty
        self.repetitionPenalty = repetitionPenalty
        self.maxTokens = maxTokens
        self.stop = stop
        self.seed = seed
        self.logprobs = logprobs
        self.topLogprobs = topLogprobs
    }

    /// The paper's sampling setup: temperature 0.8, top-k 50, presence penalty 1.2.
    public static let paper = SamplingParameters(temperature: 0.8, topK: 50, presencePenalty: 1.2, maxTokens: 512)

    /// Temperature 0: the most likely token at every step.
    public static let greedy = SamplingParameters(temperature: 0, maxTokens: 512)

    enum CodingKeys: String, CodingKey {
        case temperature, seed, stop, logprobs
        case topP = "top_p"
        case topK = "top_k"
        case minP = "min_p"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case repetitionPenalty = "repetition_penalty"
        case maxTokens = "max_tokens"
        case topLogprobs = "top_logprobs"
    }
}
