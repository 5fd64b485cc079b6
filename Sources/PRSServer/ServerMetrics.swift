import Foundation
import LMEngine
import Prometheus

/// The server's Prometheus metrics (`GET /metrics`): requests by endpoint and status, the
/// engine's load and totals, time to first token and request latency.
final class ServerMetrics: @unchecked Sendable {
    let registry = PrometheusCollectorRegistry()
    private let lock = NSLock()
    private let mirror = NSLock()
    private var requestCounters: [String: Counter] = [:]
    /// The engine's totals as last mirrored into the counters.
    private var seen = EngineStatistics()

    let running: Gauge, waiting: Gauge, decoding: Gauge, inFlight: Gauge, blocksInUse: Gauge, blocksTotal: Gauge,
        maxBatch: Gauge
    let promptTokens: Counter, generatedTokens: Counter, cachedPromptTokens: Counter, evaluatedPromptTokens: Counter
    let cancelled: Counter, rejected: Counter, evictions: Counter
    let decodeSteps: [String: Counter]
    let timeToFirstToken: DurationHistogram, requestDuration: DurationHistogram

    init() {
        let r = registry
        running = r.makeGauge(
            descriptor: Self.d("prs_requests_running", "Requests admitted to the engine and not finished"))
        waiting = r.makeGauge(
            descriptor: Self.d("prs_requests_waiting", "Requests queued for the engine, not yet admitted"))
        inFlight = r.makeGauge(
            descriptor: Self.d(
                "prs_requests_in_flight", "Generation requests the server holds (running, waiting or streaming)"))
        decoding = r.makeGauge(descriptor: Self.d("prs_sequences_decoding", "Sequences in the decode batch"))
        blocksInUse = r.makeGauge(
            descriptor: Self.d("prs_kv_blocks_in_use", "KV cache blocks held by sequences in flight"))
        blocksTotal = r.makeGauge(
            descriptor: Self.d("prs_kv_blocks_total", "KV cache blocks in all (16 positions each)"))
        maxBatch = r.makeGauge(descriptor: Self.d("prs_max_batch", "Most sequences decoded together"))
        promptTokens = r.makeCounter(
            descriptor: Self.d("prs_prompt_tokens_total", "Prompt tokens of admitted requests"))
        cachedPromptTokens = r.makeCounter(
            descriptor: Self.d("prs_prefix_cache_hit_tokens_total", "Prompt tokens found in the prefix cache"))
        evaluatedPromptTokens = r.makeCounter(
            descriptor: Self.d("prs_prompt_tokens_evaluated_total", "Prompt tokens the model evaluated"))
        generatedTokens = r.makeCounter(descriptor: Self.d("prs_generation_tokens_total", "Tokens generated"))
        cancelled = r.makeCounter(
            descriptor: Self.d("prs_requests_cancelled_total", "Requests cancelled by a client that went away"))
        rejected = r.makeCounter(
            descriptor: Self.d("prs_requests_rejected_total", "Requests refused because the queue was full"))
        evictions = r.makeCounter(
            descriptor: Self.d("prs_prefix_cache_evictions_total", "Cached blocks evicted to make room"))
        decodeSteps = Dictionary(
            uniqueKeysWithValues: ["1", "2-3", "4-7", "8-15", "16+"].map { b in
                (
                    b,
                    r.makeCounter(
                        descriptor: Self.d(
                            "prs_decode_steps_total", "Decode steps by the number of sequences decoded together"),
                        labels: [("batch_size", b)])
                )
            })
        let seconds: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60].map {
            .milliseconds(Int64($0 * 1000))
        }
        timeToFirstToken = r.makeDurationHistogram(
            descriptor: Self.d(
                "prs_time_to_first_token_seconds", "From a request's arrival to its first generated token"),
            buckets: seconds)
        requestDuration = r.makeDurationHistogram(
            descriptor: Self.d("prs_request_duration_seconds", "From a generation request's arrival to its last byte"),
            buckets: seconds)
    }

    static func d(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    func request(_ endpoint: String, status: Int) {
        lock.lock()
        let key = "\(endpoint)|\(status)"
        let c =
            requestCounters[key]
            ?? registry.makeCounter(
                descriptor: Self.d("prs_http_requests_total", "HTTP requests by endpoint and status"),
                labels: [("endpoint", endpoint), ("status", String(status))])
        requestCounters[key] = c
        lock.unlock()
        c.increment()
    }

    /// The Prometheus text, with the engine's figures of now.
    func render(engine: () -> EngineStatistics?, inFlight held: Int) -> String {
        inFlight.set(Double(held))
        // One scrape at a time, so the counters take each engine total's increase once.
        mirror.lock()
        defer { mirror.unlock() }
        if let s = engine() {
            running.set(Double(s.requestsRunning))
            waiting.set(Double(s.requestsWaiting))
            decoding.set(Double(s.sequencesDecoding))
            blocksInUse.set(Double(s.blocksInUse))
            blocksTotal.set(Double(s.cacheTokens / 16))
            maxBatch.set(Double(s.maxBatch))
            let before = seen
            seen = s
            func add(_ c: Counter, _ now: Int, _ was: Int) { if now > was { c.increment(by: Int64(now - was)) } }
            add(promptTokens, s.promptTokens, before.promptTokens)
            add(cachedPromptTokens, s.promptTokensCached, before.promptTokensCached)
            add(evaluatedPromptTokens, s.promptTokensEvaluated, before.promptTokensEvaluated)
            add(generatedTokens, s.generatedTokens, before.generatedTokens)
            add(cancelled, s.cancelled, before.cancelled)
            add(evictions, s.evictions, before.evictions)
            for (b, c) in decodeSteps { add(c, s.decodeBatches[b] ?? 0, before.decodeBatches[b] ?? 0) }
        }
        return registry.emitToString()
    }
}
