import Foundation

/// Limits and sampling of one completion.
public struct CompletionOptions: Sendable, Hashable {
    public var maxTokens: Int
    /// Generation ends before the first occurrence of any of these (also across token boundaries).
    public var stop: [String]
    public var sampler: SamplerSettings
    /// Alternatives to report with each chosen token's log-probability; 0 reports none.
    public var topLogprobs: Int

    public init(maxTokens: Int = 256, stop: [String] = [], sampler: SamplerSettings = SamplerSettings(), topLogprobs: Int = 0) {
        self.maxTokens = maxTokens
        self.stop = stop
        self.sampler = sampler
        self.topLogprobs = topLogprobs
    }
}

/// One continuation of a prompt.
public struct Completion: Sendable {
    public enum Finish: String, Sendable { case stop, length }
    public var tokens: [Int32]
    public var text: String
    public var finish: Finish
    public var logprobs: [SampledToken]
    public var seed: UInt64
    /// Wall time of this continuation (its share of the prompt included), in milliseconds.
    public var milliseconds: Double
}

/// Runs a model for one caller at a time: an actor whose methods never suspend, so a request
/// has the model and its KV cache to itself from start to end.
///
/// A prompt is evaluated once; its `n` continuations reuse its KV cache in turn (each one
/// overwrites only the positions after the prompt). A new prompt reuses the cached prefix it
/// shares with the tokens already evaluated.
public actor Engine {
    public let model: LlamaModel
    let session: LlamaSession
    /// The tokens whose keys and values are in the session, in order.
    var cached: [Int32] = []
    nonisolated(unsafe) let scratch: UnsafeMutableBufferPointer<Float>
    nonisolated(unsafe) let promptLogits: UnsafeMutableBufferPointer<Float>
    public private(set) var promptTokensReused = 0
    public private(set) var promptTokensEvaluated = 0

    public init(model: LlamaModel, contextTokens: Int = 4096, threads: Int = 2) {
        self.model = model
        session = LlamaSession(model: model, maxTokens: contextTokens, threads: threads)
        scratch = .allocate(capacity: model.config.vocabSize)
        promptLogits = .allocate(capacity: model.config.vocabSize)
    }

    deinit {
        scratch.deallocate()
        promptLogits.deallocate()
    }

    public var contextTokens: Int { session.maxTokens }

    /// `n` continuations of `prompt`; continuation `i` samples with seed `options.sampler.seed + i`.
    public func complete(prompt: [Int32], n: Int, options: CompletionOptions) throws -> [Completion] {
        guard !prompt.isEmpty else { throw ModelError("the prompt is empty") }
        guard prompt.count < session.maxTokens else {
            throw ModelError("the prompt has \(prompt.count) tokens; the context holds \(session.maxTokens)")
        }
        let clock = ContinuousClock()
        let started = clock.now
        try evaluate(prompt)
        let promptTime = Self.ms(clock.now - started)
        let vocab = model.config.vocabSize
        var out: [Completion] = []
        for i in 0..<max(1, n) {
            let t0 = clock.now
            var settings = options.sampler
            settings.seed = options.sampler.seed &+ UInt64(i)
            var sampler = Sampler(settings)
            session.truncate(to: prompt.count)
            cached = prompt
            _ = scratch.initialize(from: promptLogits)
            var tokens: [Int32] = []
            var logprobs: [SampledToken] = []
            var stream = UTF8Stream()
            var text = ""
            var finish = Completion.Finish.length
            while tokens.count < options.maxTokens {
                let s = sampler.sample(scratch, topLogprobs: options.topLogprobs)
                if model.tokenizer.endOfGeneration.contains(s.token) { finish = .stop; break }
                tokens.append(s.token)
                logprobs.append(s)
                text += stream.push(model.tokenizer.bytes(of: s.token))
                if let cut = Self.firstStop(in: text, options.stop) {
                    text = String(text[..<cut])
                    finish = .stop
                    break
                }
                if tokens.count == options.maxTokens || session.position >= session.maxTokens { break }
                try session.forward(s.token)
                cached.append(s.token)
                for j in 0..<vocab { scratch[j] = session.logits[j] }
            }
            if finish == .length { text += stream.flush() }
            out.append(Completion(tokens: tokens, text: text, finish: finish, logprobs: logprobs, seed: settings.seed,
                                  milliseconds: Self.ms(clock.now - t0) + promptTime / Double(max(1, n))))
        }
        return out
    }

    /// Brings the KV cache to `prompt`, keeping the prefix it shares with what is cached, and
    /// leaves the logits after the prompt in `promptLogits`.
    func evaluate(_ prompt: [Int32]) throws {
        var common = 0
        while common < min(cached.count, prompt.count), cached[common] == prompt[common] { common += 1 }
        common = min(common, prompt.count - 1)  // the last token is evaluated for its logits
        session.truncate(to: common)
        cached.removeLast(cached.count - common)
        promptTokensReused += common
        let rest = Array(prompt[common...])
        try session.forward(rest)
        cached += rest
        promptTokensEvaluated += rest.count
        for j in 0..<model.config.vocabSize { promptLogits[j] = session.logits[j] }
    }

    static func firstStop(in text: String, _ stops: [String]) -> String.Index? {
        var best: String.Index?
        for s in stops where !s.isEmpty {
            if let r = text.range(of: s), best == nil || r.lowerBound < best! { best = r.lowerBound }
        }
        return best
    }

    static func ms(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }
}
