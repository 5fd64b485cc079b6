import Foundation
import Logging
import PRSCore
import PRSStore

/// What a finished (or interrupted) run produced.
public struct RunOutcome: Sendable {
    public var summary: StrategySummary
    /// Items that failed in this process or earlier ones, with their errors.
    public var failures: [(id: String, error: String)]
    /// True when the run was cancelled (or the store could not be written) before every item was tried.
    public var interrupted: Bool
    /// Items in each state at the end, over the whole run directory.
    public var counts: [ItemState: Int]
    /// Why the run stopped early, when it was not a signal.
    public var stopReason: String?
    /// The in-process engine's batching and prefix-cache figures, when the policy runs in-process.
    public var engine: EngineReport?
}

/// Runs a tree sampler over a prompt set with a bounded number of prompts in flight, on a
/// run store: every node is committed as soon as it is scored, so a killed run continues
/// where it stopped. Finished items are skipped; a half-built tree continues from its stored
/// nodes; failed items are tried again up to `maxAttempts` attempts in all.
///
/// Each prompt moves through its tree's steps on its own, so with K prompts in flight a
/// backend has up to K requests outstanding. `trees.jsonl` and `summary.json` are written
/// from the store at the end.
public struct SampleRunner: Sendable {
    public let sampler: TreeSampler
    /// Prompts in flight at once.
    public let concurrency: Int
    public let maxAttempts: Int
    public let logger: Logger
    /// Reads the in-process engine's figures at the end of the run (nil when there is none).
    public let engineReport: @Sendable () -> EngineReport?

    public init(
        sampler: TreeSampler, concurrency: Int, maxAttempts: Int = 3, logger: Logger,
        engineReport: @escaping @Sendable () -> EngineReport? = { nil }
    ) {
        self.engineReport = engineReport
        self.sampler = sampler
        self.concurrency = max(1, concurrency)
        self.maxAttempts = max(1, maxAttempts)
        self.logger = logger
    }

    /// Opens (or creates) the store in `directory` and runs there.
    public func run(
        items: [PromptItem], directory: URL, onProgress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) async throws -> RunOutcome {
        let store: RunStore
        do { store = try RunStore.open(directory: directory) } catch let e as StoreError {
            throw RunError(e.description)
        }
        return try await run(
            items: items.enumerated().map { ($0.offset, $0.element) }, store: store, directory: directory,
            onProgress: onProgress)
    }

    /// `items` with their positions in the whole prompt set (a shard keeps the global ones).
    public func run(
        items: [(position: Int, item: PromptItem)], store: RunStore, directory: URL,
        onProgress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) async throws -> RunOutcome {
        try store.register(items)
        let stored = Dictionary(uniqueKeysWithValues: try store.items().map { ($0.item.id, $0) })
        var todo: [PromptItem] = []
        var resumed = 0
        var exhausted = 0
        for (_, item) in items {
            guard let s = stored[item.id] else { continue }
            switch s.state {
            case .done: resumed += 1
            case .failed where s.attempts >= maxAttempts: exhausted += 1
            default: todo.append(item)
            }
        }
        if resumed + exhausted > 0 || stored.values.contains(where: { $0.state == .running }) {
            logger.notice(
                "resuming run",
                metadata: [
                    "directory": "\(directory.path)", "finished": "\(resumed)",
                    "left": "\(todo.count)", "given_up": "\(exhausted)",
                ])
        }
        try store.log(resumed > 0 ? "resumed" : "started", detail: "\(todo.count) items to do")

        let clock = ContinuousClock()
        let start = clock.now
        var progress = RunProgress(
            total: items.count, done: 0, resumed: resumed, failed: exhausted, inFlight: 0,
            nodes: 0, completionTokens: 0, elapsedSeconds: 0)
        var interrupted = false
        var stopReason: String?
        let sampler = self.sampler
        let logger = self.logger

        /// What one item's task ends with.
        struct Finished: Sendable {
            var id: String
            var tree: Tree?
            var error: (any Error)?
        }
        await withTaskGroup(of: Finished.self) { group in
            var next = 0
            var running = 0
            while true {
                while running < concurrency, next < todo.count, !Task.isCancelled, !interrupted {
                    let item = todo[next]
                    next += 1
                    running += 1
                    group.addTask {
                        do {
                            let t0 = ContinuousClock.now
                            try store.begin(item.id)
                            let existing = try store.nodes(of: item.id)
                            let tree = try await sampler.sample(item, existing: existing) { nodes in
                                try store.append(nodes, to: item.id)
                            }
                            try store.finish(tree, elapsedMs: Self.seconds(ContinuousClock.now - t0) * 1000)
                            return Finished(id: item.id, tree: tree)
                        } catch {
                            return Finished(id: item.id, error: error)
                        }
                    }
                }
                progress.inFlight = running
                progress.elapsedSeconds = Self.seconds(clock.now - start)
                onProgress(progress)
                guard let finished = await group.next() else { break }
                running -= 1
                if let tree = finished.tree {
                    progress.done += 1
                    progress.nodes += tree.nodes.count
                    progress.completionTokens += tree.usage.completionTokens
                    continue
                }
                let error = finished.error ?? CancellationError()
                if let e = error as? StoreError {
                    // The store is the source of truth: stop rather than go on without it.
                    stopReason = e.description
                    logger.error(
                        "cannot write the run store; stopping", metadata: ["item": "\(finished.id)", "error": "\(e)"])
                    interrupted = true
                    group.cancelAll()
                } else if error is CancellationError || Task.isCancelled {
                    interrupted = true
                } else {
                    progress.failed += 1
                    logger.error("item failed", metadata: ["item": "\(finished.id)", "error": "\(error)"])
                    do { try store.fail(finished.id, error: "\(error)") } catch {
                        stopReason = "\(error)"
                        interrupted = true
                        group.cancelAll()
                    }
                }
            }
        }
        if Task.isCancelled { interrupted = true }
        try? store.log(interrupted ? "interrupted" : "finished", detail: stopReason)
        try? store.addWallTime(Self.seconds(clock.now - start))
        let wall = (try? store.wallTime()) ?? Self.seconds(clock.now - start)
        return try finish(
            store: store, items: items.map(\.item), directory: directory, interrupted: interrupted,
            stopReason: stopReason, wallTime: wall)
    }

    /// Writes `trees.jsonl` and `summary.json` from the store and counts the items' states.
    func finish(
        store: RunStore, items: [PromptItem], directory: URL, interrupted: Bool, stopReason: String?, wallTime: Double
    ) throws -> RunOutcome {
        let strategy = sampler.config.kind.rawValue
        let wanted = Set(items.map(\.id))
        let trees = try store.trees(strategy: strategy).filter { wanted.contains($0.id) }
        let failures = try store.items().filter { $0.state == .failed && wanted.contains($0.item.id) }.map {
            ($0.item.id, $0.error ?? "")
        }
        let summary = StrategySummary(
            strategy: strategy, budget: sampler.config.budget, trees: trees,
            failed: failures.count, wallTimeSeconds: wallTime, categories: StrategySummary.categories(items))
        let counts = try store.counts()
        let engine = engineReport()
        do {
            try RunFiles.writeTrees(trees, to: directory)
            try RunFiles.writeSummary(
                summary, failures: failures, counts: counts, interrupted: interrupted, engine: engine, to: directory)
        } catch  where stopReason != nil {
            logger.error("cannot write the run files either", metadata: ["error": "\(error)"])
        }
        return RunOutcome(
            summary: summary, failures: failures, interrupted: interrupted, counts: counts, stopReason: stopReason,
            engine: engine)
    }

    static func seconds(_ d: Duration) -> Double { d.inSeconds }
}
