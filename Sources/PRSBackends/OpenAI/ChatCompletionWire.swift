import PRSCore

/// The body of `POST /v1/chat/completions`. Non-standard sampling fields (`top_k`, `min_p`,
/// `repeat_penalty`) are sent only when set; llama.cpp, vLLM and SGLang take them.
struct ChatCompletionBody: Encodable {
    var model: String?
    var messages: [ChatMessage]
    var n: Int?
    var temperature: Double?
    var top_p: Double?
    var top_k: Int?
    var min_p: Double?
    var presence_penalty: Double?
    var frequency_penalty: Double?
    var repeat_penalty: Double?
    var max_tokens: Int?
    var stop: [String]?
    var seed: UInt64?
    var logprobs: Bool?
    var top_logprobs: Int?
    /// A forced choice: the choices' token ids (as strings) with a large bias.
    var logit_bias: [String: Double]?
    /// Reply prefill (vLLM): the last, assistant message is continued rather than answered.
    var continue_final_message: Bool?
    var add_generation_prompt: Bool?

    init(model: String?, messages: [ChatMessage], n: Int, parameters p: SamplingParameters, seed: UInt64?) {
        self.model = model
        self.messages = messages
        self.n = n > 1 ? n : nil
        temperature = p.temperature
        top_p = p.topP
        top_k = p.topK
        min_p = p.minP
        presence_penalty = p.presencePenalty
        frequency_penalty = p.frequencyPenalty
        repeat_penalty = p.repetitionPenalty
        max_tokens = p.maxTokens
        stop = p.stop?.isEmpty == true ? nil : p.stop
        self.seed = seed
        logprobs = p.logprobs
        top_logprobs = p.logprobs == true ? p.topLogprobs : nil
    }
}

/// The parts of a chat completion response that prs reads.
struct ChatCompletionResponse: Decodable {
    struct Choice: Decodable {
        struct Message: Decodable { var content: String? }
        struct Logprobs: Decodable {
            struct Entry: Decodable {
                struct Top: Decodable {
                    var token: String
                    var logprob: Double
                }
                var token: String
                var logprob: Double
                var top_logprobs: [Top]?
            }
            var content: [Entry]?
        }
        var index: Int?
        var message: Message?
        var finish_reason: String?
        var logprobs: Logprobs?
    }
    struct Usage: Decodable {
        var prompt_tokens: Int?
        var completion_tokens: Int?
    }
    var choices: [Choice]
    var usage: Usage?
}

extension FinishReason {
    init(openAI value: String?) {
        switch value {
        case "stop", "eos", "stop_sequence": self = .stop
        case "length", "max_tokens": self = .length
        default: self = .other
        }
    }
}
