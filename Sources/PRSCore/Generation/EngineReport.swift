/// What an in-process engine did during a run, for `summary.json` and the terminal: the batch
/// sizes its continuous batching reached and how much of the prompts its prefix cache served.
/// An in-process backend makes it (``EngineReporting``); the runner only records it.
public struct EngineReport: Codable, Sendable, Hashable {
    public var requests: Int
    public var steps: Int
    /// Sequences decoded together at most, and on average over decode steps.
    public var largestDecodeBatch: Int
    public var meanDecodeBatch: Double
    /// Tokens in one forward pass at most (decoding sequences plus prompt tokens).
    public var largestBatch: Int
    /// Decode steps by sequences decoded together ("1", "2-3", "4-7", "8-15", "16+").
    public var decodeBatches: [String: Int]
    public var maxBatch: Int
    public var promptTokens: Int
    public var promptTokensCached: Int
    public var prefixHitRate: Double
    public var generatedTokens: Int
    public var evictions: Int
    public var cacheTokens: Int
    /// The kernel table the engine's products ran on ("avx2", "avx512", "amx"); nil in summaries
    /// written before it was recorded.
    public var isa: String?

    public init(
        requests: Int, steps: Int, largestDecodeBatch: Int, meanDecodeBatch: Double, largestBatch: Int,
        decodeBatches: [String: Int], maxBatch: Int, promptTokens: Int, promptTokensCached: Int,
        prefixHitRate: Double, generatedTokens: Int, evictions: Int, cacheTokens: Int, isa: String? = nil
    ) {
        self.requests = requests
        self.steps = steps
        self.largestDecodeBatch = largestDecodeBatch
        self.meanDecodeBatch = meanDecodeBatch
        self.largestBatch = largestBatch
        self.decodeBatches = decodeBatches
        self.maxBatch = maxBatch
        self.promptTokens = promptTokens
        self.promptTokensCached = promptTokensCached
        self.prefixHitRate = prefixHitRate
        self.generatedTokens = generatedTokens
        self.evictions = evictions
        self.cacheTokens = cacheTokens
        self.isa = isa
    }

    enum CodingKeys: String, CodingKey {
        case requests, steps, evictions, isa
        case largestDecodeBatch = "largest_decode_batch"
        case meanDecodeBatch = "mean_decode_batch"
        case largestBatch = "largest_batch"
        case decodeBatches = "decode_batches"
        case maxBatch = "max_batch"
        case promptTokens = "prompt_tokens"
        case promptTokensCached = "prompt_tokens_cached"
        case prefixHitRate = "prefix_hit_rate"
        case generatedTokens = "generated_tokens"
        case cacheTokens = "cache_tokens"
    }

    /// One line for a terminal.
    public var line: String {
        String(
            format:
                "engine: %d requests, decode batches up to %d sequences (mean %.1f, limit %d), prefix cache hit "
                + "%.1f%% of %d prompt tokens, %d evictions",
            requests, largestDecodeBatch, meanDecodeBatch, maxBatch, prefixHitRate * 100, promptTokens, evictions)
            + (isa.map { ", kernels \($0)" } ?? "")
    }
}

/// A backend that runs an in-process engine and can say what it did.
public protocol EngineReporting: Sendable {
    /// Starts the figures afresh (a run reports its own work, not the process's).
    func resetEngineReport()
    func engineReport() -> EngineReport
}
