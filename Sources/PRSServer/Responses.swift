import Foundation
import LMEngine

/// OpenAI-shaped response bodies and stream chunks for a job's completions.
struct ResponseWriter {
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
    func chatLogprobs(_ tokens: [SampledToken]) -> [String: Any] {
        ["content": tokens.map { s -> [String: Any] in
            let (text, bytes) = piece(s.token)
            return ["token": text, "logprob": Double(s.logprob), "bytes": bytes.map(Int.init),
                    "top_logprobs": s.top.map { alt -> [String: Any] in
                        let (t, b) = piece(alt.token)
                        return ["token": t, "logprob": Double(alt.logprob), "bytes": b.map(Int.init)]
                    }]
        }]
    }

    /// Text-completion log-probabilities: tokens, token_logprobs, top_logprobs, text_offset.
    func textLogprobs(_ tokens: [SampledToken], offset: Int) -> [String: Any] {
        var offsets: [Int] = []
        var at = offset
        var names: [String] = []
        for s in tokens {
            let (text, _) = piece(s.token)
            names.append(text)
            offsets.append(at)
            at += text.count
        }
        let tops: [Any] = tokens.map { s in
            var d: [String: Double] = [:]
            for alt in s.top { d[piece(alt.token).0] = max(d[piece(alt.token).0] ?? -.infinity, Double(alt.logprob)) }
            return d
        }
        return ["tokens": names, "token_logprobs": tokens.map { Double($0.logprob) }, "top_logprobs": tops, "text_offset": offsets]
    }

    /// A legacy `top_logprobs` entry: the token itself and its alternatives, by text (as vLLM
    /// gives prompt tokens; two tokens with one text keep the larger log-probability).
    func topEntry(_ s: SampledToken) -> [String: Double] {
        var d: [String: Double] = [piece(s.token).0: Double(s.logprob)]
        for alt in s.top { d[piece(alt.token).0] = max(d[piece(alt.token).0] ?? -.infinity, Double(alt.logprob)) }
        return d
    }

    /// Text-completion log-probabilities with the prompt first (`echo` with `logprobs`): prompt
    /// token 0 has `null`, the others their log-probability given what comes before; then the
    /// generated tokens, and the end-of-generation token when one stopped the choice (vLLM counts
    /// it among the output tokens, and a harness reading `[prompt:-1]` relies on it).
    func echoedLogprobs(prompt: [Int32], _ c: Completion) -> [String: Any] {
        var names: [String] = [], offsets: [Int] = [], lps: [Any] = [], tops: [Any] = []
        var at = 0
        func add(_ t: Int32, _ lp: Any, _ top: Any) {
            let text = piece(t).0
            names.append(text)
            offsets.append(at)
            at += text.count
            lps.append(lp)
            tops.append(top)
        }
        add(prompt[0], NSNull(), NSNull())
        for s in c.promptLogprobs { add(s.token, Double(s.logprob), topEntry(s)) }
        var generated = c.logprobs
        if let stop = c.stopToken { generated.append(stop) }
        for s in generated {
            var d: [String: Double] = [:]
            for alt in s.top { d[piece(alt.token).0] = max(d[piece(alt.token).0] ?? -.infinity, Double(alt.logprob)) }
            add(s.token, Double(s.logprob), d)
        }
        return ["tokens": names, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offsets]
    }

    /// vLLM's `prompt_logprobs`: `null` for the first prompt token, then for each token a map from
    /// token id to `{"logprob", "rank", "decoded_token"}` holding it and its alternatives.
    func vllmPromptLogprobs(prompt: [Int32], _ scored: [SampledToken]) -> [Any] {
        var out: [Any] = [NSNull()]
        for s in scored {
            var entry: [String: Any] = [:]
            for (rank, alt) in s.top.enumerated() {
                entry[String(alt.token)] = ["logprob": Double(alt.logprob), "rank": rank + 1, "decoded_token": piece(alt.token).0]
            }
            if entry[String(s.token)] == nil {
                // Its rank among all tokens: one more than the alternatives above it (all of them when it is not among them).
                let above = s.top.filter { $0.logprob > s.logprob }.count
                entry[String(s.token)] = ["logprob": Double(s.logprob), "rank": above + 1, "decoded_token": piece(s.token).0]
            }
            out.append(entry)
        }
        return out
    }

    func usage(_ results: [[Completion]]) -> [String: Int] {
        let prompt = job.prompts.map(\.count).reduce(0, +)
        let completion = results.joined().map(\.tokens.count).reduce(0, +)
        return ["prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion]
    }

    /// The whole response of a job that ran to the end (`results[p]` are prompt p's choices).
    func body(_ results: [[Completion]]) -> [String: Any] {
        var choices: [[String: Any]] = []
        for (p, completions) in results.enumerated() {
            for (i, c) in completions.enumerated() {
                var choice: [String: Any] = ["index": p * job.n + i, "finish_reason": c.finish.rawValue]
                switch job.kind {
                case .chat:
                    choice["message"] = ["role": "assistant", "content": c.text]
                    choice["logprobs"] = job.logprobs ? chatLogprobs(c.logprobs) : NSNull()
                case .text:
                    let echo = job.echo.isEmpty ? "" : job.echo[p]
                    choice["text"] = echo + c.text
                    if job.echoLogprobs {
                        choice["logprobs"] = echoedLogprobs(prompt: job.prompts[p], c)
                    } else {
                        choice["logprobs"] = job.logprobs ? textLogprobs(c.logprobs, offset: echo.count) : NSNull()
                    }
                    if job.promptLogprobsField { choice["prompt_logprobs"] = vllmPromptLogprobs(prompt: job.prompts[p], c.promptLogprobs) }
                }
                choices.append(choice)
            }
        }
        var body: [String: Any] = ["id": id, "object": object, "created": created, "model": job.model, "choices": choices,
                                   "usage": usage(results), "system_fingerprint": "prs"]
        if job.kind == .chat, job.promptLogprobsField, let first = results.first?.first {
            body["prompt_logprobs"] = vllmPromptLogprobs(prompt: job.prompts[0], first.promptLogprobs)
        }
        return body
    }

    /// A stream chunk holding `choices` (and `"usage": null` when usage comes at the end).
    func chunk(_ choices: [[String: Any]], usage: Any? = nil) -> [UInt8] {
        var c: [String: Any] = ["id": id, "object": chunkObject, "created": created, "model": job.model, "choices": choices,
                                "system_fingerprint": "prs"]
        if job.includeUsage { c["usage"] = usage ?? NSNull() }
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
                    out += chunk([["index": index, "delta": ["role": "assistant", "content": ""], "logprobs": NSNull(), "finish_reason": NSNull()]])
                case .text where !job.echo.isEmpty:
                    out += chunk([["index": index, "text": job.echo[p], "logprobs": NSNull(), "finish_reason": NSNull()]])
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
                out += chunk([["index": index, "delta": ["content": piece.text], "logprobs": withLogprobs ? chatLogprobs(piece.tokens) : NSNull(),
                               "finish_reason": NSNull()]])
            case .text:
                out += chunk([["index": index, "text": piece.text, "logprobs": withLogprobs ? textLogprobs(piece.tokens, offset: offset) : NSNull(),
                               "finish_reason": NSNull()]])
            }
        }
        if let finish = piece.finish {
            switch job.kind {
            case .chat: out += chunk([["index": index, "delta": [String: Any](), "logprobs": NSNull(), "finish_reason": finish.rawValue]])
            case .text: out += chunk([["index": index, "text": "", "logprobs": NSNull(), "finish_reason": finish.rawValue]])
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
