import CKernels
import Foundation

/// One sequence evaluated token by token or in chunks, with a cache of its own: the plain
/// forward pass, for reference comparisons and benchmarks. Generation goes through `Engine`.
public final class LlamaSession: @unchecked Sendable {
    public let model: LlamaModel
    public let maxTokens: Int
    /// Tokens evaluated together at most.
    public let chunk: Int
    let cache: KVCache
    let sequence = CachedSequence()
    let evaluator: Evaluator
    /// LoRA adapters applied to every token evaluated (nil: the base model).
    public var adapters: AdapterStack?

    /// The next position.
    public var position: Int { sequence.computed }
    /// The logits after the last token evaluated.
    public var logits: UnsafeMutablePointer<Float> { evaluator.logits }
    /// Seconds the session's pool threads have spent computing (the norms, activations and
    /// quantization folded into the products, the products and attention), summed over threads,
    /// and seconds the calling thread spent inside the pool's calls. Over an interval of wall
    /// time W on T threads: W − inside is the caller's serial work, T·W − busy − that is waiting.
    public var poolSeconds: (busy: Double, inside: Double) {
        var busy: UInt64 = 0
        var inside: UInt64 = 0
        lm_pool_stats(evaluator.products.pool, &busy, &inside)
        return (Double(busy) / 1e9, Double(inside) / 1e9)
    }

    public init(model: LlamaModel, maxTokens: Int, threads: Int = 2, chunk: Int = 64) {
        self.model = model
        self.maxTokens = min(maxTokens, model.config.contextLength)
        self.chunk = max(1, chunk)
        cache = KVCache(
            layers: model.config.layers, kvDim: model.config.kvHeads * model.config.headDim, tokens: self.maxTokens)
        evaluator = Evaluator(model: model, capacity: self.chunk, maxPositions: self.maxTokens, threads: threads)
    }

    /// Evaluates `token` at the next position.
    public func forward(_ token: Int32) throws { try forward([token]) }

    /// Evaluates `tokens` at the next positions; `logits` then holds the logits after the last one.
    public func forward(_ tokens: [Int32]) throws {
        let c = model.config
        guard position + tokens.count <= maxTokens else {
            throw ModelError("the sequence is full (\(maxTokens) tokens; \(position) used, \(tokens.count) more asked)")
        }
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw ModelError("token \(bad) is outside the vocabulary of \(c.vocabSize)")
        }
        var i = 0
        while i < tokens.count {
            let n = min(chunk, tokens.count - i)
            var slots: [Evaluator.Slot] = []
            sequence.tokens += tokens[i..<(i + n)]
            for j in 0..<n {
                let p = sequence.computed + j
                guard sequence.reserve(p, cache) else { throw ModelError("the cache is full") }
                slots.append(
                    Evaluator.Slot(
                        token: tokens[i + j], position: p, tableOffset: 0, wantsLogits: j == n - 1, adapters: adapters))
            }
            evaluator.run(slots, tables: sequence.table, cache: cache)
            for _ in 0..<n { sequence.advance(cache) }
            i += n
        }
    }
}
