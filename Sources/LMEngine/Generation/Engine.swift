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
    /// With `n == 1`, `onText` receives the text as it is generated, holding back what could still
    /// turn out to be the start of a stop string.
    public func complete(prompt: [Int32], n: Int, options: CompletionOptions,
                         onText: (@Sendable (String) -> Void)? = nil) throws -> [Completion] {
        guard !prompt.isEmpty else { throw ModelError("the prompt is empty") }
        guard prompt.count < session.maxTokens else {
            throw ModelError("the prompt has \(prompt.count) tokens; the context holds \(session.maxTokens)")
        }
        let clock = ContinuousClock()
        let started = clock.now
        try evaluate(prompt)
        let promptTime = Self.ms(clock.now - started)
        let lanes = session.laneCapacity(promptLength: prompt.count, laneLength: options.maxTokens)
        var out: [Completion] = []
        if n > 1, lanes >= 2 {
            // The continuations decode together, a group of lanes at a time.
            var first = 0
            while first < n {
                let group = Array(first..<min(n, first + lanes))
                out += try decodeTogether(prompt: prompt, seeds: group.map { options.sampler.seed &+ UInt64($0) }, options: options,
                                          promptShare: promptTime / Double(n))
                first += group.count
            }
            session.truncate(to: prompt.count)
            cached = prompt
            return out
        }
        for i in 0..<max(1, n) {
            var settings = options.sampler
            settings.seed = options.sampler.seed &+ UInt64(i)
            out.append(try decodeAlone(prompt: prompt, settings: settings, options: options,
                                       promptShare: promptTime / Double(max(1, n)), onText: n <= 1 ? onText : nil))
        }
        return out
    }

    /// What one continuation has produced so far.
    struct Lane {
        var sampler: Sampler
        var tokens: [Int32] = []
        var logprobs: [SampledToken] = []
        var stream = UTF8Stream()
        var text = ""
        var finish: Completion.Finish?
        /// Characters of `text` already handed to a stream.
        var emitted = 0

        init(_ settings: SamplerSettings) { sampler = Sampler(settings) }

        /// Text that is final: everything once finished, otherwise all but what could still be
        /// the start of a stop string.
        mutating func newText(_ options: CompletionOptions) -> String {
            let hold = finish == nil ? max(0, (options.stop.map(\.count).max() ?? 0) - 1) : 0
            let ready = text.count - hold
            guard ready > emitted else { return "" }
            let piece = String(text.dropFirst(emitted).prefix(ready - emitted))
            emitted = ready
            return piece
        }

        /// Samples from `logits` and records the token; sets `finish` when the lane is done.
        mutating func step(_ logits: UnsafeMutableBufferPointer<Float>, _ tokenizer: Tokenizer, _ options: CompletionOptions) {
            let s = sampler.sample(logits, topLogprobs: options.topLogprobs)
            if tokenizer.endOfGeneration.contains(s.token) { finish = .stop; return }
            tokens.append(s.token)
            logprobs.append(s)
            text += stream.push(tokenizer.bytes(of: s.token))
            if let cut = Engine.firstStop(in: text, options.stop) {
                text = String(text[..<cut])
                finish = .stop
            } else if tokens.count >= options.maxTokens {
                finish = .length
            }
        }

        func completion(seed: UInt64, ms: Double) -> Completion {
            var t = text
            var s = stream
            if finish != .stop { t += s.flush() }
            return Completion(tokens: tokens, text: t, finish: finish ?? .length, logprobs: logprobs, seed: seed, milliseconds: ms)
        }
    }

    /// One continuation on the session after the prompt.
    func decodeAlone(prompt: [Int32], settings: SamplerSettings, options: CompletionOptions, promptShare: Double,
                     onText: (@Sendable (String) -> Void)? = nil) throws -> Completion {
        let clock = ContinuousClock()
        let t0 = clock.now
        let vocab = model.config.vocabSize
        var lane = Lane(settings)
        session.truncate(to: prompt.count)
        cached = prompt
        _ = scratch.initialize(from: promptLogits)
        while true {
            lane.step(scratch, model.tokenizer, options)
            if let onText, case let piece = lane.newText(options), !piece.isEmpty { onText(piece) }
            if lane.finish != nil || session.position >= session.maxTokens { break }
            try session.forward(lane.tokens.last!)
            cached.append(lane.tokens.last!)
            for j in 0..<vocab { scratch[j] = session.logits[j] }
        }
        let done = lane.completion(seed: settings.seed, ms: Self.ms(clock.now - t0) + promptShare)
        if let onText, done.text.count > lane.emitted { onText(String(done.text.dropFirst(lane.emitted))) }
        return done
    }

    /// Several continuations decoded as one batch per step: the weights are read once per step
    /// for all of them, and each lane attends to the shared prompt rows and its own rows.
    func decodeTogether(prompt: [Int32], seeds: [UInt64], options: CompletionOptions, promptShare: Double) throws -> [Completion] {
        let clock = ContinuousClock()
        let t0 = clock.now
        let vocab = model.config.vocabSize
        let layout = LlamaSession.Lanes(promptLength: prompt.count, laneLength: options.maxTokens)
        var lanes = seeds.map { seed -> Lane in
            var s = options.sampler
            s.seed = seed
            return Lane(s)
        }
        for i in lanes.indices {
            _ = scratch.initialize(from: promptLogits)
            lanes[i].step(scratch, model.tokenizer, options)
        }
        var step = 0
        while true {
            let active = lanes.indices.filter { lanes[$0].finish == nil }
            if active.isEmpty { break }
            try session.forward(lanes: active, tokens: active.map { lanes[$0].tokens.last! }, step: step, layout: layout)
            for (j, i) in active.enumerated() {
                let row = session.laneLogits + j * vocab
                for t in 0..<vocab { scratch[t] = row[t] }
                lanes[i].step(scratch, model.tokenizer, options)
            }
            step += 1
        }
        let each = Self.ms(clock.now - t0) / Double(seeds.count) + promptShare
        return zip(lanes, seeds).map { $0.completion(seed: $1, ms: each) }
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
