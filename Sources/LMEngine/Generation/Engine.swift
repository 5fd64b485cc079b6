import Foundation

/// Limits and sampling of one completion.
public struct CompletionOptions: Sendable, Hashable {
    public var maxTokens: Int
    /// Generation ends before the first occurrence of any of these (also across token boundaries).
    public var stop: [String]
    public var sampler: SamplerSettings
    /// Alternatives to report with each chosen token's log-probability; 0 reports none.
    public var topLogprobs: Int
    /// When set, every prompt token after the first gets its log-probability under the model
    /// (raw logits, no penalties or bias) with this many alternatives, computed in the prompt's
    /// own forward pass. The prompt's positions are then evaluated afresh, not taken from the
    /// prefix cache (whose blocks hold keys and values, not logits).
    public var promptLogprobs: Int?

    public init(
        maxTokens: Int = 256, stop: [String] = [], sampler: SamplerSettings = SamplerSettings(), topLogprobs: Int = 0,
        promptLogprobs: Int? = nil
    ) {
        self.maxTokens = maxTokens
        self.stop = stop
        self.sampler = sampler
        self.topLogprobs = topLogprobs
        self.promptLogprobs = promptLogprobs
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
    /// With `CompletionOptions.promptLogprobs`: prompt tokens 1..<count, each with its
    /// log-probability given the tokens before it (the same for every continuation of a prompt).
    public var promptLogprobs: [SampledToken] = []
    /// The end-of-generation token that stopped this continuation (not part of `tokens` or
    /// `text`), with its log-probability; nil when it stopped otherwise.
    public var stopToken: SampledToken?
}

/// What an engine has done since it started: the batches it ran and what its prefix cache saved.
public struct EngineStatistics: Sendable, Hashable, Codable {
    /// Forward passes run, and the tokens they evaluated.
    public var steps = 0
    public var tokens = 0
    /// The most tokens in one forward pass, and the most sequences decoding together.
    public var largestBatch = 0
    public var largestDecodeBatch = 0
    /// Decode steps by the number of sequences decoding together: key "1", "2-3", "4-7", "8-15", "16+".
    public var decodeBatches: [String: Int] = [:]
    /// Sequences decoded, summed over decode steps (so the mean decode batch is this over the decode steps).
    public var decodeSequenceSteps = 0
    public var decodeSteps = 0
    public var requests = 0
    /// Prompt tokens of all requests, those found in the prefix cache, and those evaluated.
    public var promptTokens = 0
    public var promptTokensCached = 0
    public var promptTokensEvaluated = 0
    public var generatedTokens = 0
    /// Cache blocks evicted to make room, and the cache's size.
    public var evictions = 0
    public var cacheTokens = 0
    public var cacheBytes = 0
    public var maxBatch = 0
    /// Now: requests queued and not yet admitted, requests admitted and unfinished, sequences
    /// decoding, and KV cache blocks held by sequences in flight (not counting cached prefixes
    /// that nothing holds).
    public var requestsWaiting = 0
    public var requestsRunning = 0
    public var sequencesDecoding = 0
    public var blocksInUse = 0
    /// Requests cancelled by their caller before they finished.
    public var cancelled = 0

    public init() {}

    /// The share of prompt tokens found in the prefix cache.
    public var prefixHitRate: Double { promptTokens == 0 ? 0 : Double(promptTokensCached) / Double(promptTokens) }
    public var meanDecodeBatch: Double { decodeSteps == 0 ? 0 : Double(decodeSequenceSteps) / Double(decodeSteps) }

    static func bucket(_ n: Int) -> String {
        switch n {
        case ...1: "1"
        case 2...3: "2-3"
        case 4...7: "4-7"
        case 8...15: "8-15"
        default: "16+"
        }
    }
}

/// How an engine batches and caches.
public struct EngineSettings: Sendable, Hashable {
    /// Positions one sequence may use (prompt and continuation).
    public var contextTokens: Int
    /// Sequences decoded together at most (continuous batching across requests).
    public var maxBatch: Int
    /// Prompt tokens evaluated per step at most, beside the decoding sequences.
    public var prefillChunk: Int
    /// Positions the KV cache holds in all (every sequence in flight plus the prefix cache); nil
    /// picks max(8192, 2 × contextTokens).
    public var cacheTokens: Int?
    public var threads: Int

    public init(
        contextTokens: Int = 4096, maxBatch: Int = 16, prefillChunk: Int = 64, cacheTokens: Int? = nil, threads: Int = 2
    ) {
        self.contextTokens = contextTokens
        self.maxBatch = maxBatch
        self.prefillChunk = prefillChunk
        self.cacheTokens = cacheTokens
        self.threads = threads
    }
}

/// Generates continuations for any number of callers at once. Requests are queued to one
/// scheduler thread that runs the model in steps: sequences from different requests join and
/// leave the running batch at step boundaries (continuous batching), a request's prompt is
/// evaluated once and its `n` continuations share its cached positions, and prompts that start
/// like an earlier one reuse its cached blocks (a prefix cache with LRU eviction).
///
/// A continuation's tokens depend only on its prompt, options and seed, not on what else is
/// running: the forward pass treats every token of a batch independently.
public final class Engine: @unchecked Sendable {
    public let model: LlamaModel
    public let settings: EngineSettings
    let scheduler: Scheduler

    public convenience init(
        model: LlamaModel, contextTokens: Int = 4096, threads: Int = 2, maxBatch: Int = 16, cacheTokens: Int? = nil
    ) {
        self.init(
            model: model,
            settings: EngineSettings(
                contextTokens: contextTokens, maxBatch: maxBatch, cacheTokens: cacheTokens, threads: threads))
    }

    public init(model: LlamaModel, settings: EngineSettings) {
        var s = settings
        s.contextTokens = max(2, min(s.contextTokens, model.config.contextLength))
        s.maxBatch = max(1, s.maxBatch)
        s.prefillChunk = max(1, s.prefillChunk)
        s.cacheTokens = max(s.cacheTokens ?? max(8192, 2 * s.contextTokens), s.contextTokens)
        self.model = model
        self.settings = s
        scheduler = Scheduler(model: model, settings: s)
        scheduler.start()
    }

    deinit { scheduler.stop() }

    public var contextTokens: Int { settings.contextTokens }

    /// What the engine has done so far.
    public func statistics() -> EngineStatistics { scheduler.statistics() }

    /// Starts the figures afresh (a new run on a long-lived engine); the cache keeps its contents.
    public func resetStatistics() { scheduler.resetStatistics() }

    /// `n` continuations of `prompt`; continuation `i` samples with seed `options.sampler.seed + i`.
    /// With `n == 1`, `onText` receives the text as it is generated, holding back what could still
    /// turn out to be the start of a stop string.
    /// With `adapters`, the sequence runs with those LoRA adapters applied (requests with other
    /// adapters, or none, batch with it; cached blocks are shared only among equal adapter stacks).
    public func complete(
        prompt: [Int32], n: Int, options: CompletionOptions, adapters: AdapterStack? = nil,
        onText: (@Sendable (String) -> Void)? = nil
    ) async throws -> [Completion] {
        var pieces: (@Sendable (StreamPiece) -> Void)?
        if n <= 1, let onText {
            pieces = { @Sendable piece in if !piece.text.isEmpty { onText(piece.text) } }
        }
        return try await complete(prompt: prompt, n: n, options: options, adapters: adapters, onPiece: pieces)
    }

    /// `n` continuations of `prompt`, with `onPiece` called on the scheduler thread after every
    /// token of every continuation: its new final text (possibly empty while a stop string could
    /// still be forming) and the tokens sampled since the last piece. The last piece of a
    /// continuation has `finish` set. Cancelling the calling task cancels the request: it leaves
    /// the batch at the next step, its KV blocks are released, and this throws `CancellationError`.
    public func complete(
        prompt: [Int32], n: Int, options: CompletionOptions, adapters: AdapterStack? = nil,
        onPiece: (@Sendable (StreamPiece) -> Void)?
    ) async throws -> [Completion] {
        guard !prompt.isEmpty else { throw ModelError("the prompt is empty") }
        guard prompt.count < contextTokens else {
            throw ModelError("the prompt has \(prompt.count) tokens; the context holds \(contextTokens)")
        }
        let vocab = model.config.vocabSize
        if let bad = prompt.first(where: { $0 < 0 || Int($0) >= vocab }) {
            throw ModelError("token \(bad) is outside the vocabulary of \(vocab)")
        }
        let handle = Scheduler.Handle()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let r = Scheduler.Request(
                    prompt: prompt, n: max(1, n), options: options, onPiece: onPiece,
                    adapters: adapters, continuation: continuation)
                if handle.attach(r) { scheduler.submit(r) } else { continuation.resume(throwing: CancellationError()) }
            }
        } onCancel: {
            if let r = handle.cancel() { scheduler.cancel(r) }
        }
    }
}

/// What a streaming continuation has produced since its last piece.
public struct StreamPiece: Sendable {
    /// The continuation (0..<n).
    public var index: Int
    /// New text that will not change (stop strings are cut before they show).
    public var text: String
    /// Tokens sampled since the last piece, with their log-probabilities when asked for.
    public var tokens: [SampledToken]
    /// Set on the continuation's last piece.
    public var finish: Completion.Finish?
}

/// What one continuation has produced so far.
struct Lane {
    var sampler: Sampler
    var tokens: [Int32] = []
    var logprobs: [SampledToken] = []
    var stream = UTF8Stream()
    var text = ""
    var finish: Completion.Finish?
    var stopToken: SampledToken?
    /// Characters of `text` and tokens already handed to a stream.
    var emitted = 0
    var tokensEmitted = 0

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

    /// Tokens sampled since the last call.
    mutating func newTokens() -> [SampledToken] {
        defer { tokensEmitted = logprobs.count }
        return Array(logprobs[tokensEmitted...])
    }

    /// Records the sampled token `s`; sets `finish` when the lane is done.
    mutating func step(_ s: SampledToken, _ tokenizer: Tokenizer, _ options: CompletionOptions) {
        if tokenizer.endOfGeneration.contains(s.token) {
            finish = .stop
            stopToken = s
            return
        }
        tokens.append(s.token)
        logprobs.append(s)
        text += stream.push(tokenizer.bytes(of: s.token))
        if let cut = Lane.firstStop(in: text, options.stop) {
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
        return Completion(
            tokens: tokens, text: t, finish: finish ?? .length, logprobs: logprobs, seed: seed, milliseconds: ms,
            stopToken: stopToken)
    }

    static func firstStop(in text: String, _ stops: [String]) -> String.Index? {
        var best: String.Index?
        for s in stops where !s.isEmpty {
            if let r = text.range(of: s), best == nil || r.lowerBound < best! { best = r.lowerBound }
        }
        return best
    }
}

extension Lane {
    static func ms(_ d: Duration) -> Double {
        Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
    }
}
