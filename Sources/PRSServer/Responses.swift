import Foundation
import LMEngine

/// OpenAI-shaped response bodies and stream chunks for a job's completions (``CompletionWire``).
struct ResponseWriter {
    typealias W = CompletionWire
    let job: Job
    let tokenizer: Tokenizer
    let id: String
    let created = Int(Date().timeIntervalSince1970)

    init(job: Job, tokenizer: Tokenizer) {
        self.job = job
        self.tokenizer = tokenizer
        let hex = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        id = (job.kind == .chat ? "chatcmpl-" : "cmpl-") + hex
    }

    var object: String { job.kind == .chat ? "chat.completion" : "text_completion" }
    var chunkObject: String { job.kind == .chat ? "chat.completion.chunk" : "text_completion" }

    func piece(_ t: Int32) -> (String, [UInt8]) {
        let bytes = tokenizer.bytes(of: t, special: true)
        return (String(decoding: bytes, as: UTF8.self), bytes)
    }

    /// Chat log-probabilities: `{"content": [{"token", "logprob", "bytes", "top_logprobs"}]}`.
    func chatLogprobs(_ tokens: [SampledToken]) -> W.ChatLogprobs {
        W.ChatLogprobs(
            content: tokens.map { s in
                let (text, bytes) = piece(s.token)
                return W.ChatLogprobs.Token(
                    token: text, logprob: Double(s.logprob), bytes: bytes.map(Int.init),
                    topLogprobs: s.top.map { alt in
                        let (t, b) = piece(alt.token)
                        return W.ChatLogprobs.Alternative(
                            token: t, logprob: Double(alt.logprob), bytes: b.map(Int.init))
                    })
            })
    }

    /// A token's alternatives by text (two tokens with one text keep the larger log-probability),
    /// with the token itself when `including`.
    func alternatives(_ s: SampledToken, including: Bool) -> [String: Double] {
        var d: [String: Double] = including ? [piece(s.token).0: Double(s.logprob)] : [:]
        for alt in s.top { d[piece(alt.token).0] = max(d[piece(alt.token).0] ?? -.infinity, Double(alt.logprob)) }
        return d
    }

    /// Text-completion log-probabilities: tokens, token_logprobs, top_logprobs, text_offset.
    func textLogprobs(_ tokens: [SampledToken], offset: Int) -> W.TextLogprobs {
        var out = W.TextLogprobs()
        var at = offset
        for s in tokens {
            let text = piece(s.token).0
            out.tokens.append(text)
            out.textOffset.append(at)
            at += text.count
            out.tokenLogprobs.append(OrNull(Double(s.logprob)))
            out.topLogprobs.append(OrNull(alternatives(s, including: false)))
        }
        return out
    }

    /// Text-completion log-probabilities with the prompt first (`echo` with `logprobs`): prompt
    /// token 0 has `null`, the others their log-probability given what comes before (their
    /// `top_logprobs` holding the token itself, as vLLM gives prompt tokens); then the generated
    /// tokens, and the end-of-generation token when one stopped the choice (vLLM counts it among
    /// the output tokens, and a harness reading `[prompt:-1]` relies on it).
    func echoedLogprobs(prompt: [Int32], _ c: Completion) -> W.TextLogprobs {
        var out = W.TextLogprobs()
        var at = 0
        func add(_ t: Int32, _ lp: Double?, _ top: [String: Double]?) {
            let text = piece(t).0
            out.tokens.append(text)
            out.textOffset.append(at)
            at += text.count
            out.tokenLogprobs.append(OrNull(lp))
            out.topLogprobs.append(OrNull(top))
        }
        add(prompt[0], nil, nil)
        for s in c.promptLogprobs { add(s.token, Double(s.logprob), alternatives(s, including: true)) }
        var generated = c.logprobs
        if let stop = c.stopToken { generated.append(stop) }
        for s in generated { add(s.token, Double(s.logprob), alternatives(s, including: false)) }
        return out
    }

    /// vLLM's `prompt_logprobs`: `null` for the first prompt token, then for each token a map from
    /// token id to `{"logprob", "rank", "decoded_token"}` holding it and its alternatives.
    func vllmPromptLogprobs(prompt: [Int32], _ scored: [SampledToken]) -> W.PromptLogprobs {
        var out: W.PromptLogprobs = [.null]
        for s in scored {
            var entry: [String: W.RankedLogprob] = [:]
            for (rank, alt) in s.top.enumerated() {
                entry[String(alt.token)] = W.RankedLogprob(
                    logprob: Double(alt.logprob), rank: rank + 1, decodedToken: piece(alt.token).0)
            }
            if entry[String(s.token)] == nil {
                // Its rank among all tokens: one more than the alternatives above it (all of them
                // when it is not among them).
                let above = s.top.filter { $0.logprob > s.logprob }.count
                entry[String(s.token)] = W.RankedLogprob(
                    logprob: Double(s.logprob), rank: above + 1, decodedToken: piece(s.token).0)
            }
            out.append(OrNull(entry))
        }
        return out
    }

    func usage(_ results: [[Completion]]) -> W.Usage {
        let prompt = job.prompts.map(\.count).reduce(0, +)
        let completion = results.joined().map(\.tokens.count).reduce(0, +)
        return W.Usage(promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion)
    }

    /// The whole response of a job that ran to the end (`results[p]` are prompt p's choices).
    func body(_ results: [[Completion]]) -> W.Body {
        var choices: [W.Choice] = []
        for (p, completions) in results.enumerated() {
            for (i, c) in completions.enumerated() {
                var choice = W.Choice(index: p * job.n + i, finishReason: c.finish.rawValue)
                switch job.kind {
                case .chat:
                    choice.message = W.Message(content: c.text)
                    if job.logprobs { choice.chatLogprobs = chatLogprobs(c.logprobs) }
                case .text:
                    let echo = job.echo.isEmpty ? "" : job.echo[p]
                    choice.text = echo + c.text
                    if job.echoLogprobs {
                        choice.textLogprobs = echoedLogprobs(prompt: job.prompts[p], c)
                    } else if job.logprobs {
                        choice.textLogprobs = textLogprobs(c.logprobs, offset: echo.count)
                    }
                    if job.promptLogprobsField {
                        choice.promptLogprobs = vllmPromptLogprobs(prompt: job.prompts[p], c.promptLogprobs)
                    }
                }
                choices.append(choice)
            }
        }
        var body = W.Body(
            id: id, object: object, created: created, model: job.model, choices: choices, usage: usage(results))
        if job.kind == .chat, job.promptLogprobsField, let first = results.first?.first {
            body.promptLogprobs = vllmPromptLogprobs(prompt: job.prompts[0], first.promptLogprobs)
        }
        return body
    }

    /// A stream chunk holding `choices` (and `"usage": null` when usage comes at the end).
    func chunk(_ choices: [W.ChunkChoice], usage: W.Usage? = nil) -> [UInt8] {
        let c = W.Chunk(
            id: id, object: chunkObject, created: created, model: job.model, choices: choices,
            usage: job.includeUsage ? OrNull(usage) : nil)
        return Array("data: ".utf8) + JSONOut.bytes(c) + Array("\n\n".utf8)
    }

    /// The chunks that open a stream: the assistant's role (chat) or the echoed prompt (text).
    func opening() -> [UInt8] {
        var out: [UInt8] = []
        for p in job.prompts.indices {
            for i in 0..<job.n {
                let index = p * job.n + i
                switch job.kind {
                case .chat:
                    out += chunk([W.ChunkChoice(index: index, delta: W.Delta(role: "assistant", content: ""))])
                case .text where !job.echo.isEmpty:
                    out += chunk([W.ChunkChoice(index: index, text: job.echo[p])])
                case .text: break
                }
            }
        }
        return out
    }

    /// The chunks of one piece of choice `index`; `offset` counts the text already streamed (text logprobs).
    func chunks(_ piece: StreamPiece, index: Int, offset: Int) -> [UInt8] {
        var out: [UInt8] = []
        let withLogprobs = job.logprobs && !piece.tokens.isEmpty
        if !piece.text.isEmpty || withLogprobs {
            switch job.kind {
            case .chat:
                out += chunk([
                    W.ChunkChoice(
                        index: index, delta: W.Delta(content: piece.text),
                        chatLogprobs: withLogprobs ? chatLogprobs(piece.tokens) : nil)
                ])
            case .text:
                out += chunk([
                    W.ChunkChoice(
                        index: index, text: piece.text,
                        textLogprobs: withLogprobs ? textLogprobs(piece.tokens, offset: offset) : nil)
                ])
            }
        }
        if let finish = piece.finish {
            switch job.kind {
            case .chat: out += chunk([W.ChunkChoice(index: index, delta: W.Delta(), finishReason: finish.rawValue)])
            case .text: out += chunk([W.ChunkChoice(index: index, text: "", finishReason: finish.rawValue)])
            }
        }
        return out
    }

    /// The end of a stream: usage when asked, then `[DONE]`.
    func closing(_ results: [[Completion]]) -> [UInt8] {
        var out: [UInt8] = []
        if job.includeUsage { out += chunk([], usage: usage(results)) }
        return out + Array("data: [DONE]\n\n".utf8)
    }
}
