import Foundation

/// The engine's scheduler: a thread that owns the model's evaluator and the KV cache and runs
/// steps. Each step evaluates one token for every decoding sequence (whatever request it
/// belongs to) plus up to `prefillChunk` prompt tokens of admitted requests, then samples.
///
/// Memory is promised before it is used: a prompt is admitted only when the cache can hold all
/// of it, and a continuation starts only when the cache can hold it to its token limit, so a
/// step never runs out of blocks. Requests are admitted first come, first served.
final class Scheduler: @unchecked Sendable {
    final class Request {
        let prompt: [Int32]
        let n: Int
        let options: CompletionOptions
        let onPiece: (@Sendable (StreamPiece) -> Void)?
        let continuation: CheckedContinuation<[Completion], any Error>
        let adapters: AdapterStack?
        let received = ContinuousClock.now
        let sequence = CachedSequence()
        /// Blocks the prompt may hold.
        var limit = 0
        var promptLogits: [Float] = []
        /// With `options.promptLogprobs`: prompt tokens 1..<count scored so far.
        var promptLogprobs: [SampledToken] = []
        /// Continuations started so far, and their results by index.
        var started = 0
        var results: [Completion?]
        var unfinished: Int

        init(
            prompt: [Int32], n: Int, options: CompletionOptions, onPiece: (@Sendable (StreamPiece) -> Void)?,
            adapters: AdapterStack? = nil, continuation: CheckedContinuation<[Completion], any Error>
        ) {
            self.adapters = adapters
            self.prompt = prompt
            self.n = n
            self.options = options
            self.onPiece = onPiece
            self.continuation = continuation
            results = Array(repeating: nil, count: n)
            unfinished = n
        }
    }

    /// A caller's hold on its request, for cancellation: whichever of submitting and cancelling
    /// comes second sees the other.
    final class Handle: @unchecked Sendable {
        private let lock = NSLock()
        private var request: Request?
        private var cancelled = false

        /// False when the caller cancelled first (the request must not be submitted).
        func attach(_ r: Request) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            if cancelled { return false }
            request = r
            return true
        }

        func cancel() -> Request? {
            lock.lock()
            defer { lock.unlock() }
            cancelled = true
            return request
        }
    }

    /// A continuation being decoded.
    final class Running {
        let request: Request
        let index: Int
        var lane: Lane
        let sequence = CachedSequence()
        var limit = 0
        init(_ request: Request, _ index: Int) {
            self.request = request
            self.index = index
            var s = request.options.sampler
            s.seed = request.options.sampler.seed &+ UInt64(index)
            lane = Lane(s)
        }
    }

    let model: LlamaModel
    let settings: EngineSettings
    let cache: KVCache
    let evaluator: Evaluator
    let scratch: UnsafeMutableBufferPointer<Float>
    /// A vocabulary of logits for each pool thread to sample from (thread 0's is `scratch`).
    let threadScratch: UnsafeMutableBufferPointer<Float>

    private let lock = NSCondition()
    private var incoming: [Request] = []
    private var cancels: [Request] = []
    private var stopping = false
    private var stats = EngineStatistics()
    /// Evictions before the last reset (scheduler thread), and whether a reset awaits it (under the lock).
    private var evictionBase = 0
    private var resetEvictions = false

    // Owned by the scheduler thread.
    private var waiting: [Request] = []
    private var prefilling: [Request] = []
    /// Requests whose prompt is done and that still have continuations to start.
    private var starting: [Request] = []
    private var decoding: [Running] = []

    init(model: LlamaModel, settings: EngineSettings) {
        self.model = model
        self.settings = settings
        let c = model.config
        cache = KVCache(
            layers: c.layers, kvDim: c.kvHeads * c.headDim, tokens: settings.cacheTokens ?? settings.contextTokens)
        evaluator = Evaluator(
            model: model, capacity: settings.maxBatch + settings.prefillChunk,
            maxPositions: settings.contextTokens, threads: settings.threads)
        threadScratch = .allocate(capacity: c.vocabSize * evaluator.products.threads)
        scratch = UnsafeMutableBufferPointer(rebasing: threadScratch[0..<c.vocabSize])
        stats.cacheTokens = cache.blocks * KVCache.blockSize
        stats.cacheBytes = cache.bytes
        stats.maxBatch = settings.maxBatch
    }

    deinit { threadScratch.deallocate() }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "prs-engine"
        thread.start()
    }

    func stop() {
        lock.lock()
        stopping = true
        lock.signal()
        lock.unlock()
    }

    func submit(_ r: Request) {
        lock.lock()
        incoming.append(r)
        lock.signal()
        lock.unlock()
    }

    /// Asks the scheduler thread to drop `r` at its next step.
    func cancel(_ r: Request) {
        lock.lock()
        cancels.append(r)
        lock.signal()
        lock.unlock()
    }

    func resetStatistics() {
        lock.lock()
        let kept = stats
        stats = EngineStatistics()
        stats.cacheTokens = kept.cacheTokens
        stats.cacheBytes = kept.cacheBytes
        stats.maxBatch = kept.maxBatch
        resetEvictions = true
        lock.unlock()
    }

    func statistics() -> EngineStatistics {
        lock.lock()
        defer { lock.unlock() }
        return stats
    }

    private var idle: Bool { waiting.isEmpty && prefilling.isEmpty && starting.isEmpty && decoding.isEmpty }

    private func loop() {
        while true {
            lock.lock()
            while incoming.isEmpty && cancels.isEmpty && idle && !stopping { lock.wait() }
            let stop = stopping
            waiting += incoming
            incoming.removeAll()
            let dropped = cancels
            cancels.removeAll()
            lock.unlock()
            for r in dropped { drop(r) }
            if stop {
                for r in waiting + prefilling + starting + decoding.map(\.request) where r.unfinished > 0 {
                    r.unfinished = 0
                    r.continuation.resume(throwing: ModelError("the engine was shut down"))
                }
                return
            }
            step()
            publishLoad()
        }
    }

    /// Removes a cancelled request wherever it is, releasing its blocks, and fails its caller.
    private func drop(_ r: Request) {
        guard r.unfinished > 0 else { return }
        waiting.removeAll { $0 === r }
        if prefilling.contains(where: { $0 === r }) || starting.contains(where: { $0 === r }) { release(r) }
        prefilling.removeAll { $0 === r }
        starting.removeAll { $0 === r }
        for run in decoding where run.request === r { run.sequence.release(cache) }
        decoding.removeAll { $0.request === r }
        lock.lock()
        stats.cancelled += 1
        lock.unlock()
        fail(r, CancellationError())
    }

    /// The load figures of now, for callers watching the engine.
    private func publishLoad() {
        var running = Set(prefilling.map(ObjectIdentifier.init))
        running.formUnion(starting.map(ObjectIdentifier.init))
        running.formUnion(decoding.map { ObjectIdentifier($0.request) })
        lock.lock()
        stats.requestsWaiting = waiting.count + incoming.count
        stats.requestsRunning = running.count
        stats.sequencesDecoding = decoding.count
        stats.blocksInUse = cache.blocks - cache.available
        lock.unlock()
    }

    /// Blocks promised to sequences in flight and not yet taken.
    private var promised: Int {
        prefilling.reduce(0) { $0 + $1.limit - $1.sequence.table.count }
            + decoding.reduce(0) { $0 + $1.limit - $1.sequence.table.count }
    }

    private func blocks(_ positions: Int) -> Int { (positions + KVCache.blockSize - 1) / KVCache.blockSize }

    private var busy: Bool { !prefilling.isEmpty || !starting.isEmpty || !decoding.isEmpty }

    /// Sequences that will want a decode slot soon: decoding, waiting to start, or being prefilled.
    private var demand: Int {
        decoding.count + starting.reduce(0) { $0 + $1.n - $1.started } + prefilling.reduce(0) { $0 + $1.n }
    }

    private func admit() {
        while let r = waiting.first {
            if busy, demand >= settings.maxBatch { return }
            let limit = blocks(r.prompt.count)
            if cache.available - promised < limit {
                if busy { return }
                waiting.removeFirst()
                fail(
                    r,
                    ModelError(
                        "the prompt's \(r.prompt.count) tokens do not fit in the KV cache of "
                            + "\(cache.blocks * KVCache.blockSize) tokens"
                    ))
                continue
            }
            waiting.removeFirst()
            r.limit = limit
            let found = r.sequence.attach(
                r.prompt, root: r.adapters?.root ?? 0, reuse: r.options.promptLogprobs == nil, cache: cache)
            lock.lock()
            stats.requests += 1
            stats.promptTokens += r.prompt.count
            stats.promptTokensCached += found
            lock.unlock()
            prefilling.append(r)
        }
    }

    /// Starts continuations whose prompt is done, as batch room and memory allow.
    private func startContinuations() {
        outer: while let r = starting.first {
            while r.started < r.n {
                if decoding.count >= settings.maxBatch { return }
                let total = min(settings.contextTokens, r.prompt.count + r.options.maxTokens)
                let shared = r.sequence.computed / KVCache.blockSize
                let limit = blocks(total)
                if cache.available - promised < limit - shared {
                    if !decoding.isEmpty || !prefilling.isEmpty { return }
                    // Nothing else will free memory: this continuation can never start.
                    starting.removeFirst()
                    release(r)
                    fail(
                        r,
                        ModelError(
                            "a continuation of \(total) tokens does not fit in the KV cache of "
                                + "\(cache.blocks * KVCache.blockSize) tokens"
                        ))
                    continue outer
                }
                let run = Running(r, r.started)
                r.started += 1
                if r.options.maxTokens <= 0 {
                    // Scoring only (echo with no new tokens): nothing to sample.
                    run.lane.finish = .length
                    finish(run)
                    continue
                }
                run.limit = limit
                guard run.sequence.fork(from: r.sequence, cache: cache) else {
                    preconditionFailure("a promised block was missing")
                }
                _ = scratch.initialize(from: r.promptLogits)
                sample(run)
                if run.lane.finish != nil { finish(run) } else { decoding.append(run) }
            }
            starting.removeFirst()
            release(r)
        }
    }

    /// Records the next token of `run`, `drawn` or else sampled from `scratch`, ending it at its limits.
    private func sample(_ run: Running, drawn: SampledToken? = nil) {
        let before = run.lane.tokens.count
        let token = drawn ?? run.lane.sampler.sample(scratch, topLogprobs: run.request.options.topLogprobs)
        run.lane.step(token, model.tokenizer, run.request.options)
        if run.lane.tokens.count > before { run.sequence.tokens.append(run.lane.tokens[before]) }
        if run.lane.finish == nil, run.sequence.computed >= settings.contextTokens { run.lane.finish = .length }
        stream(run)
    }

    private func release(_ r: Request) {
        r.sequence.release(cache)
        r.limit = 0
    }

    private func step() {
        admit()
        startContinuations()
        if decoding.isEmpty && prefilling.isEmpty { return }
        var slots: [Evaluator.Slot] = []
        var tables: [Int32] = []
        // One token for every decoding sequence.
        for run in decoding {
            let s = run.sequence
            guard s.reserve(s.computed, cache) else { preconditionFailure("a promised block was missing") }
            slots.append(
                Evaluator.Slot(
                    token: s.tokens[s.computed], position: s.computed, tableOffset: tables.count, wantsLogits: true,
                    adapters: run.request.adapters))
            tables += s.table
        }
        // Then prompt tokens, first come first served.
        var budget = settings.prefillChunk
        var chunks: [(Request, Int)] = []
        for r in prefilling where budget > 0 {
            let s = r.sequence
            let n = min(budget, s.tokens.count - s.computed)
            let offset = tables.count
            for j in 0..<n {
                let p = s.computed + j
                guard s.reserve(p, cache) else { preconditionFailure("a promised block was missing") }
                slots.append(
                    Evaluator.Slot(
                        token: s.tokens[p], position: p, tableOffset: offset,
                        wantsLogits: p == s.tokens.count - 1 || r.options.promptLogprobs != nil, adapters: r.adapters))
            }
            tables += s.table
            chunks.append((r, n))
            budget -= n
        }
        evaluator.run(slots, tables: tables, cache: cache)
        let vocab = model.config.vocabSize
        var row = 0
        var finished: [Running] = []
        // Every decoding sequence's token drawn in the pool, each from its own copy of its
        // logits with its own generator (so in any order, on any thread, the same token).
        let runs = decoding
        let logits = evaluator.logits
        let scratches = threadScratch
        var drawn = [SampledToken?](repeating: nil, count: runs.count)
        drawn.withUnsafeMutableBufferPointer { out in
            evaluator.products.parallel(runs.count) { i, thread in
                let mine = UnsafeMutableBufferPointer(rebasing: scratches[(thread * vocab)..<((thread + 1) * vocab)])
                mine.baseAddress!.update(from: logits + i * vocab, count: vocab)
                out[i] = runs[i].lane.sampler.sample(mine, topLogprobs: runs[i].request.options.topLogprobs)
            }
        }
        for (i, run) in runs.enumerated() {
            run.sequence.advance(cache)
            row += 1
            sample(run, drawn: drawn[i])
            if run.lane.finish != nil { finished.append(run) }
        }
        var evaluatedPrompt = 0
        for (r, n) in chunks {
            if let k = r.options.promptLogprobs {
                // Row j holds the logits after position computed + j: they score the next prompt token.
                let first = r.sequence.computed
                let scored = min(n, r.prompt.count - 1 - first)
                if scored > 0 {
                    r.promptLogprobs += scorePrompt(
                        r.prompt, from: first, count: scored, rows: logits + row * vocab, top: k)
                }
                row += n
            }
            for _ in 0..<n { r.sequence.advance(cache) }
            evaluatedPrompt += n
            if r.sequence.computed == r.prompt.count {
                // Every row taken when scoring the prompt (the last is the prompt's end), else one.
                if r.options.promptLogprobs == nil { row += 1 }
                r.promptLogits = Array(UnsafeBufferPointer(start: evaluator.logits + (row - 1) * vocab, count: vocab))
                prefilling.removeAll { $0 === r }
                starting.append(r)
            }
        }
        lock.lock()
        stats.steps += 1
        stats.tokens += slots.count
        stats.largestBatch = max(stats.largestBatch, slots.count)
        stats.promptTokensEvaluated += evaluatedPrompt
        if resetEvictions {
            evictionBase = cache.evictions
            resetEvictions = false
        }
        stats.evictions = cache.evictions - evictionBase
        if !decoding.isEmpty {
            stats.decodeSteps += 1
            stats.decodeSequenceSteps += decoding.count
            stats.largestDecodeBatch = max(stats.largestDecodeBatch, decoding.count)
            stats.decodeBatches[EngineStatistics.bucket(decoding.count), default: 0] += 1
        }
        lock.unlock()
        for run in finished { finish(run) }
        decoding.removeAll { $0.lane.finish != nil }
    }

    /// The log-probability of `prompt[from + j + 1]` under logits row j, for j in 0..<count, with
    /// the `top` most likely tokens; rows split over the pool's threads.
    private func scorePrompt(
        _ prompt: [Int32], from: Int, count: Int, rows: UnsafeMutablePointer<Float>, top: Int
    ) -> [SampledToken] {
        let vocab = model.config.vocabSize
        var out = [SampledToken](repeating: SampledToken(token: 0, logprob: 0, top: []), count: count)
        out.withUnsafeMutableBufferPointer { out in
            evaluator.products.parallel(count) { j, _ in
                let row = UnsafeMutableBufferPointer(start: rows + j * vocab, count: vocab)
                let logZ = Sampler.logSumExp(row)
                let next = prompt[from + j + 1]
                let alternatives = top > 0 ? Sampler.largest(row, top).map { ($0, row[Int($0)] - logZ) } : []
                out[j] = SampledToken(token: next, logprob: row[Int(next)] - logZ, top: alternatives)
            }
        }
        return out
    }

    private func stream(_ run: Running) {
        guard let onPiece = run.request.onPiece, run.lane.finish == nil else { return }
        let piece = run.lane.newText(run.request.options)
        let tokens = run.lane.newTokens()
        if !piece.isEmpty || !tokens.isEmpty { onPiece(StreamPiece(index: run.index, text: piece, tokens: tokens)) }
    }

    private func finish(_ run: Running) {
        run.sequence.release(cache)
        let r = run.request
        let ms = Lane.ms(ContinuousClock.now - r.received)
        var done = run.lane.completion(seed: run.lane.sampler.settings.seed, ms: ms)
        done.promptLogprobs = r.promptLogprobs
        lock.lock()
        stats.generatedTokens += done.tokens.count
        lock.unlock()
        if let onPiece = r.onPiece {
            onPiece(
                StreamPiece(
                    index: run.index, text: String(done.text.dropFirst(run.lane.emitted)), tokens: run.lane.newTokens(),
                    finish: done.finish))
        }
        r.results[run.index] = done
        r.unfinished -= 1
        if r.unfinished == 0 { r.continuation.resume(returning: r.results.map { $0! }) }
    }

    private func fail(_ r: Request, _ error: any Error) {
        r.unfinished = 0
        r.continuation.resume(throwing: error)
    }
}
