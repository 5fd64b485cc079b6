import Foundation
import GGUF

/// The engine measured alone on one model file (`prs model bench`): prompt processing, single
/// decode, N-way sampling from one prompt, peak memory, load and repack time, and, on request,
/// the machine's read bandwidth and decode's share of it.
public enum Benchmark {
    public struct Settings: Sendable {
        public var promptTokens = 200
        public var gen = 128
        public var n = 8
        public var threads = 2
        public var bandwidth = false
        public init() {}
    }

    /// The figures, as `prs model bench --json` prints them.
    public struct Result: Sendable, Encodable {
        public var promptTokensPerSecond: Double
        public var decodeTokensPerSecond: Double
        public var nwayTokensPerSecond: Double
        public var peakRSSMegabytes: Double
        /// The memory target's parts: the model file, and the KV cache the N-way work fills (F16 keys and values).
        public var modelFileMegabytes: Double
        public var kvCacheMegabytes: Double
        /// The N-way figure with the prompt's evaluation counted in.
        public var nwayWithPromptTokensPerSecond: Double
        /// The kernel table the products ran on (PRS_ISA forces one), and what they produced:
        /// the greedy decode's tokens and a hash of the N sampled continuations, equal on every table.
        public var isa: String
        public var greedyTokens: [Int32]
        public var nwayTokensFNV1a: String
        /// What one decode step reads: the weights of every product (and the output head), and
        /// the KV cache at the decode's mean position.
        public var decodeWeightsMegabytes: Double
        public var decodeKVMegabytes: Double
        /// With `bandwidth`: the read bandwidth (GB/s) on one thread and on `threads`, and the
        /// share of the latter that single decode reaches.
        public var readGBPerSecondOneThread: Double?
        public var readGBPerSecond: Double?
        public var decodeBandwidthShare: Double?
        /// Shares of single decode's thread time (threads × wall): the threads waiting (for
        /// work or for each other), and the calling thread's serial work outside the pool.
        public var decodePoolWaitShare: Double
        public var decodeSerialShare: Double
        /// Loading the model: all of it (mapping, tokenizer, repacking), the repacking alone,
        /// and the megabytes repacked into the kernels' layout (PRS_REPACK=0: none).
        public var loadSeconds: Double
        public var repackSeconds: Double
        public var repackedMegabytes: Double

        enum CodingKeys: String, CodingKey {
            case promptTokensPerSecond = "prompt_tokens_per_s", decodeTokensPerSecond = "decode_tokens_per_s"
            case nwayTokensPerSecond = "nway_tokens_per_s", peakRSSMegabytes = "peak_rss_mb"
            case modelFileMegabytes = "model_file_mb", kvCacheMegabytes = "kv_cache_mb"
            case nwayWithPromptTokensPerSecond = "nway_with_prompt_tokens_per_s"
            case isa, greedyTokens = "greedy_tokens", nwayTokensFNV1a = "nway_tokens_fnv1a"
            case decodeWeightsMegabytes = "decode_weights_mb", decodeKVMegabytes = "decode_kv_mb"
            case readGBPerSecondOneThread = "read_gb_per_s_1_thread", readGBPerSecond = "read_gb_per_s"
            case decodeBandwidthShare = "decode_bandwidth_share"
            case decodePoolWaitShare = "decode_pool_wait_share", decodeSerialShare = "decode_serial_share"
            case loadSeconds = "load_seconds", repackSeconds = "repack_seconds", repackedMegabytes = "repacked_mb"
        }

        /// Megabytes one decode step reads (weights and the KV cache at the decode's mean position).
        public var decodeReadMegabytes: Double { decodeWeightsMegabytes + decodeKVMegabytes }
    }

    /// Loads `path` (timed), applies `adapters` (made from the loaded model) and measures.
    public static func run(
        path: String, settings s: Settings,
        adapters makeAdapters: (LlamaModel) throws -> AdapterStack?
    ) async throws -> Result {
        let clock = ContinuousClock()
        let loadStart = clock.now
        let file = try GGUFFile(path: path)
        let llama = try LlamaModel(file: file)
        let loadTime = clock.now - loadStart
        // A fixed prompt of ordinary text tokens (ids spread over the vocabulary).
        let prompt: [Int32] = (0..<s.promptTokens).map { Int32(100 + ($0 * 7919) % (llama.config.vocabSize - 200)) }
        let adapters = try makeAdapters(llama)
        // The single-stream session, dropped before the engine is made: the peak memory is the
        // larger of the two, not their sum.
        var session: LlamaSession! = LlamaSession(
            model: llama, maxTokens: s.promptTokens + s.gen + 1, threads: s.threads)
        session.adapters = adapters
        var t0 = clock.now
        try session.forward(prompt)
        let promptRate = Double(s.promptTokens) / (clock.now - t0).inSeconds
        t0 = clock.now
        var greedy: [Int32] = []
        let pool0 = session.poolSeconds
        for _ in 0..<s.gen {
            var best: Int32 = 0
            for i in 1..<llama.config.vocabSize where session.logits[i] > session.logits[Int(best)] { best = Int32(i) }
            greedy.append(best)
            try session.forward(best)
        }
        let decodeSeconds = (clock.now - t0).inSeconds
        let decodeRate = Double(s.gen) / decodeSeconds
        // Of the decode's thread time (threads × wall): the calling thread's serial work outside the
        // pool (rope, the KV cache's writes, the argmax here), and the rest of the time the threads
        // were not computing: waiting for work or for each other.
        let pool1 = session.poolSeconds
        let threadSeconds = Double(s.threads) * decodeSeconds
        let serial = max(0, decodeSeconds - (pool1.inside - pool0.inside))
        let computing = pool1.busy - pool0.busy
        let poolWait = max(0, 1 - (computing + serial) / threadSeconds)
        session = nil
        let engine = Engine(
            model: llama, contextTokens: s.promptTokens + s.gen + 1, threads: s.threads, maxBatch: max(16, s.n))
        // The prompt goes first, on its own: llama.cpp's batched figure leaves the prompt out, so
        // this one does too. The N-way request then finds the prompt's whole blocks in the prefix
        // cache (and evaluates the rest).
        t0 = clock.now
        _ = try await engine.complete(
            prompt: prompt, n: 1, options: CompletionOptions(maxTokens: 1, sampler: SamplerSettings(temperature: 0)),
            adapters: adapters)
        let promptTime = (clock.now - t0).inSeconds
        t0 = clock.now
        let outs = try await engine.complete(
            prompt: prompt, n: s.n,
            options: CompletionOptions(
                maxTokens: s.gen, stop: [], sampler: SamplerSettings(temperature: 0.8, topK: 50, seed: 1)),
            adapters: adapters)
        let nwayTime = (clock.now - t0).inSeconds
        let generated = Double(outs.reduce(0) { $0 + $1.tokens.count })

        let c = llama.config
        let mb = 1_048_576.0
        let kvBytes = Double(2 * c.layers * c.kvHeads * c.headDim * 2 * (s.promptTokens + s.n * s.gen))
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int).flatMap { $0 } ?? 0
        // Every 2-D weight of the layers, and the output head (the tied embedding when absent).
        let weightBytes =
            file.content.tensors.filter { $0.dimensions.count == 2 && $0.name.hasPrefix("blk.") }.reduce(0) {
                $0 + $1.byteCount
            }
            + ((file.tensor("output.weight") ?? file.tensor("token_embd.weight")).map(\.byteCount) ?? 0)
        let kvPerPosition = Double(2 * c.layers * c.kvHeads * c.headDim * 2)
        let decodeKV = kvPerPosition * (Double(s.promptTokens) + Double(s.gen) / 2)
        let peak = peakRSSMegabytes()  // before the bandwidth's buffer
        var bw1: Double?
        var bwT: Double?
        var share: Double?
        if s.bandwidth {
            let one = InstructionSet.readBandwidth(threads: 1)
            let all = InstructionSet.readBandwidth(threads: s.threads)
            (bw1, bwT) = (one, all)
            share = decodeRate * (Double(weightBytes) + decodeKV) / (all * 1e9)
        }
        return Result(
            promptTokensPerSecond: promptRate, decodeTokensPerSecond: decodeRate,
            nwayTokensPerSecond: generated / nwayTime,
            peakRSSMegabytes: peak, modelFileMegabytes: Double(fileBytes) / mb, kvCacheMegabytes: kvBytes / mb,
            nwayWithPromptTokensPerSecond: generated / (nwayTime + promptTime),
            isa: InstructionSet.active, greedyTokens: greedy, nwayTokensFNV1a: tokenHash(outs.map(\.tokens)),
            decodeWeightsMegabytes: Double(weightBytes) / mb, decodeKVMegabytes: decodeKV / mb,
            readGBPerSecondOneThread: bw1, readGBPerSecond: bwT, decodeBandwidthShare: share,
            decodePoolWaitShare: poolWait, decodeSerialShare: serial / threadSeconds,
            loadSeconds: loadTime.inSeconds, repackSeconds: llama.repackSeconds,
            repackedMegabytes: Double(llama.repackedBytes) / mb)
    }

    /// FNV-1a (64-bit) over each continuation's tokens, little-endian, with its length first.
    static func tokenHash(_ sequences: [[Int32]]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ v: Int32) {
            for k in 0..<4 { h = (h ^ UInt64((UInt32(bitPattern: v) >> (8 * k)) & 0xFF)) &* 0x100_0000_01b3 }
        }
        for s in sequences {
            mix(Int32(s.count))
            s.forEach(mix)
        }
        return String(h, radix: 16)
    }

    /// VmHWM from /proc/self/status (Linux); 0 where it is not available.
    public static func peakRSSMegabytes() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        let kb = Double(line.split(separator: " ").dropFirst().first.map(String.init) ?? "0") ?? 0
        return kb / 1024
    }
}

extension Duration {
    /// Seconds as a Double (the engine's own; PRSCore has the same for the layers above).
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
