import Foundation
import LMEngine
import PRSCore

/// What a chat or text completion request asks for, read and checked against the model.
struct Job: Sendable {
    enum Kind: Sendable { case chat, text }
    var kind: Kind
    /// The served model's name, as the request gave it or the base's.
    var model: String
    /// One prompt, or several for a text completion with a list of prompts (choices `p·n + i`).
    var prompts: [[Int32]]
    var n: Int
    var options: CompletionOptions
    var stream = false
    var includeUsage = false
    /// Chat: log-probabilities in `choices[].logprobs.content`; text: the integer `logprobs`.
    var logprobs = false
    /// Text completions with `echo`: the prompt's text comes before each choice's.
    var echo: [String] = []
    /// Text completions with `echo` and `logprobs`: the prompt's tokens lead each choice's
    /// legacy log-probabilities (the first with `null`), as vLLM returns them.
    var echoLogprobs = false
    /// vLLM's `prompt_logprobs`: the prompt's log-probabilities in their own field.
    var promptLogprobsField = false
}

/// Reads request bodies into jobs; every error names the field at fault.
struct RequestReader {
    let model: LlamaModel
    let template: ChatTemplate
    let contextTokens: Int
    /// Most choices one request may ask for.
    static let maxN: Int64 = 128

    var tokenizer: Tokenizer { model.tokenizer }

    func chat(_ f: Fields, modelName: String) throws(APIError) -> Job {
        guard let raw = f["messages"] else { throw .invalid("messages is required", param: "messages") }
        guard case .array(let list) = raw else { throw f.wrong("messages", "an array", raw) }
        guard !list.isEmpty else { throw .invalid("messages must hold at least one message", param: "messages") }
        var messages: [TemplateMessage] = []
        for (i, m) in list.enumerated() {
            let name = "messages[\(i)]"
            guard case .object(let o) = m else {
                throw .invalid("\(name) must be an object, not \(m.typeName)", param: "messages")
            }
            let mf = Fields(object: o, prefix: name + ".")
            guard let role = try mf.string("role") else {
                throw .invalid("\(name).role is required", param: "messages")
            }
            let roles = ["system", "developer", "user", "assistant", "tool"]
            guard roles.contains(role) else {
                throw .invalid(
                    "\(name).role must be one of \(roles.joined(separator: ", ")); got \"\(role)\"", param: "messages")
            }
            messages.append(
                TemplateMessage(role: role == "developer" ? "system" : role, content: try content(mf["content"], name)))
        }
        let continueFinal = try f.bool("continue_final_message") ?? false
        if continueFinal, messages.last?.role != "assistant" {
            throw .invalid(
                "continue_final_message needs the last message to be the assistant's", param: "continue_final_message")
        }
        var prefill: String?
        if continueFinal { prefill = messages.removeLast().content }
        let addGenerationPrompt = try f.bool("add_generation_prompt") ?? true
        let prompt: [Int32]
        do {
            prompt = try template.promptTokens(
                messages, prefill: prefill, tokenizer: tokenizer,
                addGenerationPrompt: addGenerationPrompt || continueFinal)
        } catch { throw .invalid("messages cannot be rendered: \(error)", param: "messages") }
        var job = try common(
            f, kind: .chat, model: modelName, prompts: [prompt],
            maxTokensFields: ["max_completion_tokens", "max_tokens"])
        let logprobs = try f.bool("logprobs") ?? false
        let top = try f.int("top_logprobs", 0...20)
        if top != nil, !logprobs { throw .invalid("top_logprobs needs logprobs to be true", param: "top_logprobs") }
        job.logprobs = logprobs
        job.options.topLogprobs = logprobs ? (top ?? 0) : 0
        try promptLogprobs(f, &job)
        return job
    }

    /// vLLM's `prompt_logprobs: K` (both endpoints): the prompt's tokens scored with K alternatives.
    func promptLogprobs(_ f: Fields, _ job: inout Job) throws(APIError) {
        guard let k = try f.int("prompt_logprobs", 0...20) else { return }
        if job.stream {
            throw .invalid("prompt_logprobs is not available with stream; ask without stream", param: "prompt_logprobs")
        }
        job.options.promptLogprobs = max(k, job.options.promptLogprobs ?? 0)
        job.promptLogprobsField = true
    }

    /// A message's content: a string, or an array of `{"type": "text", "text": …}` parts.
    func content(_ v: JSONValue?, _ name: String) throws(APIError) -> String {
        switch v {
        case nil: return ""
        case .string(let s): return s
        case .array(let parts):
            var text = ""
            for (j, p) in parts.enumerated() {
                guard case .object(let o) = p, o["type"] == .string("text"), case .string(let t) = o["text"] else {
                    throw .invalid(
                        "\(name).content[\(j)] must be a text part ({\"type\": \"text\", \"text\": …}); this server "
                            + "reads text only",
                        param: "messages")
                }
                text += t
            }
            return text
        case .some(let other):
            throw .invalid(
                "\(name).content must be a string or an array of text parts, not \(other.typeName)", param: "messages")
        }
    }

    func text(_ f: Fields, modelName: String) throws(APIError) -> Job {
        guard let raw = f["prompt"] else { throw .invalid("prompt is required", param: "prompt") }
        var prompts: [[Int32]] = []
        var texts: [String] = []
        func ids(_ a: [JSONValue], _ name: String) throws(APIError) -> [Int32] {
            var out: [Int32] = []
            for e in a {
                guard case .int(let t) = e, t >= 0, t < Int64(model.config.vocabSize) else {
                    throw .invalid(
                        "\(name) holds \(e == .null ? "null" : "\(e)"), not a token id of this model "
                            + "(0..<\(model.config.vocabSize))",
                        param: "prompt")
                }
                out.append(Int32(t))
            }
            return out
        }
        switch raw {
        case .string(let s):
            prompts = [tokenizer.promptTokens(s)]
            texts = [s]
        case .array(let a) where a.allSatisfy({ if case .int = $0 { true } else { false } }):
            let t = try ids(a, "prompt")
            prompts = [t]
            texts = [tokenizer.decode(t)]
        case .array(let a):
            guard a.count <= 64 else {
                throw .invalid("prompt holds at most 64 prompts; got \(a.count)", param: "prompt")
            }
            for (i, e) in a.enumerated() {
                switch e {
                case .string(let s):
                    prompts.append(tokenizer.promptTokens(s))
                    texts.append(s)
                case .array(let inner):
                    let t = try ids(inner, "prompt[\(i)]")
                    prompts.append(t)
                    texts.append(tokenizer.decode(t))
                default:
                    throw .invalid(
                        "prompt[\(i)] must be a string or an array of token ids, not \(e.typeName)", param: "prompt")
                }
            }
        default: throw f.wrong("prompt", "a string, an array of token ids, or an array of those", raw)
        }
        let echo = try f.bool("echo") ?? false
        var job = try common(
            f, kind: .text, model: modelName, prompts: prompts, maxTokensFields: ["max_tokens"], defaultMaxTokens: 16,
            allowNoTokens: echo)
        if let top = try f.int("logprobs", 0...20) {
            job.logprobs = true
            job.options.topLogprobs = top
        }
        if echo {
            job.echo = texts
            if job.logprobs {
                // Every prompt token's log-probability, scored in the prompt's own forward pass.
                if job.stream {
                    throw .invalid("echo with logprobs is not available with stream; ask without stream", param: "echo")
                }
                job.echoLogprobs = true
                job.options.promptLogprobs = job.options.topLogprobs
            }
        }
        try promptLogprobs(f, &job)
        return job
    }

    /// The sampling fields both endpoints share.
    /// `allowNoTokens`: `max_tokens` may be 0 (a text completion with `echo`, to score the prompt only).
    func common(
        _ f: Fields, kind: Job.Kind, model name: String, prompts: [[Int32]], maxTokensFields: [String],
        defaultMaxTokens: Int? = nil, allowNoTokens: Bool = false
    ) throws(APIError) -> Job {
        for (i, p) in prompts.enumerated() where p.isEmpty {
            throw .invalid(
                prompts.count == 1 ? "the prompt is empty" : "prompt[\(i)] is empty",
                param: kind == .chat ? "messages" : "prompt")
        }
        let longest = prompts.map(\.count).max() ?? 0
        let n = try f.int("n", 1...Self.maxN) ?? 1
        var maxTokens: Int?
        var maxField = maxTokensFields[0]
        for field in maxTokensFields {
            if let m = try f.int(field, (allowNoTokens ? 0 : 1)...Int64(Int32.max)) {
                maxTokens = m
                maxField = field
                break
            }
        }
        if let m = maxTokens, longest + m > contextTokens {
            throw .invalid(
                "This model's context holds \(contextTokens) tokens; the prompt has \(longest) and \(maxField) asks "
                    + "for \(m) more (\(longest + m) in all)",
                param: maxField, code: "context_length_exceeded")
        }
        if longest >= contextTokens {
            throw .invalid(
                "This model's context holds \(contextTokens) tokens; the prompt has \(longest)",
                param: kind == .chat ? "messages" : "prompt",
                code: "context_length_exceeded")
        }
        let room = contextTokens - longest
        var sampler = SamplerSettings()
        sampler.temperature = Float(try f.double("temperature", 0...2) ?? 1)
        sampler.topP = Float(try f.double("top_p", 0...1) ?? 1)
        if sampler.topP == 0 { sampler.temperature = 0 }
        let topK = try f.int("top_k", -1...Int64(Int32.max)) ?? 0
        sampler.topK = topK < 0 ? 0 : topK
        sampler.minP = Float(try f.double("min_p", 0...1) ?? 0)
        sampler.presencePenalty = Float(try f.double("presence_penalty", -2...2) ?? 0)
        sampler.frequencyPenalty = Float(try f.double("frequency_penalty", -2...2) ?? 0)
        let repetition = try f.double("repetition_penalty", 0.01...100)
        let repeatPenalty = try f.double("repeat_penalty", 0.01...100)
        sampler.repetitionPenalty = Float(repetition ?? repeatPenalty ?? 1)
        if let seed = f["seed"] {
            guard case .int(let s) = seed else { throw f.wrong("seed", "an integer", seed) }
            sampler.seed = UInt64(bitPattern: s)
        } else {
            sampler.seed = UInt64.random(in: 0...UInt64(Int64.max))
        }
        if let bias = try f.object("logit_bias") {
            for key in bias.object.keys.sorted() {
                guard let t = Int32(key), t >= 0, Int(t) < model.config.vocabSize else {
                    throw .invalid(
                        "logit_bias has key \"\(key)\", not a token id of this model (0..<\(model.config.vocabSize))",
                        param: "logit_bias")
                }
                guard let b = try bias.double(key, -100...100) else { continue }
                sampler.logitBias[t] = Float(b)
            }
        }
        let stop = try f.strings("stop", limit: 16) ?? []
        var job = Job(
            kind: kind, model: name, prompts: prompts, n: n,
            options: CompletionOptions(
                maxTokens: maxTokens ?? min(room, defaultMaxTokens ?? room), stop: stop.filter { !$0.isEmpty },
                sampler: sampler))
        job.stream = try f.bool("stream") ?? false
        if let so = try f.object("stream_options") {
            job.includeUsage = try so.bool("include_usage") ?? false
        }
        return job
    }
}
