import Foundation
import Logging
import PRSCore

/// What a finished (or interrupted) run produced.
public struct RunOutcome: Sendable {
    public var summary: StrategySummary
    /// Items that failed, with their errors.
    public var failures: [(id: String, error: String)]
    /// True when the run was cancelled before every item was tried.
    public var interrupted: Bool
}

/// Runs a tree sampler over a prompt set with a bounded number of prompts in flight,
/// writing `trees.jsonl` as items finish and `summary.json` at the end.
///
/// Re-running into the same directory skips items whose trees are already written.
public struct SampleRunner: Sendable {
    public let sampler: TreeSampler
    /// Prompts in flight at once.
    public let concurrency: Int
    public let logger: Logger

    public init(sampler: TreeSampler, concurrency: Int, logger: Logger) {
        self.sampler = sampler
        self.concurrency = max(1, concurrency)
        self.logger = logger
    }

    public func run(
        items: [PromptItem], directory: URL, onProgress: @escaping @Sendable (RunProgress) -> Void = { _ in }
    ) async throws -> RunOutcome {
        try Self.makeDirectory(directory)
        let (log, previous) = try TreeLog.open(directory.appendingPathComponent("trees.jsonl"))
        let strategy = sampler.config.kind.rawValue
        if let other = previous.first(where: { $0.strategy != strategy }) {
            await log.close()
            throw RunError("\(directory.path)/trees.jsonl holds trees of strategy \(other.strategy), not \(strategy); choose another --out")
        }
        let wanted = Set(items.map(\.id))
        let kept = previous.filter { wanted.contains($0.id) }
        let doneIDs = Set(kept.map(\.id))
        let todo = items.filter { !doneIDs.contains($0.id) }
        if !kept.isEmpty {
            logger.info("resuming run", metadata: ["directory": "\(directory.path)", "finished": "\(kept.count)", "left": "\(todo.count)"])
        }

        let clock = ContinuousClock()
        let start = clock.now
        var progress = RunProgress(total: items.count, done: 0, resumed: kept.count, failed: 0, inFlight: 0,
                                   nodes: 0, completionTokens: 0, elapsedSeconds: 0)
        var trees = kept
        var failures: [(String, String)] = []
        var interrupted = false
        let sampler = self.sampler
        let logger = self.logger

        /// What one item's task ends with.
        struct Finished: Sendable {
            var id: String
            var tree: Tree?
            var error: (any Error)?
            init(id: String, tree: Tree? = nil, error: (any Error)? = nil) {
                self.id = id
                self.tree = tree
                self.error = error
            }
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
                            return Finished(id: item.id, tree: try await sampler.sample(item))
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
                let id = finished.id
                if let tree = finished.tree {
                    do {
                        try await log.append(tree)
                        trees.append(tree)
                        progress.done += 1
                        progress.nodes += tree.nodes.count
                        progress.completionTokens += tree.usage.completionTokens
                    } catch {
                        // The disk is the source of truth: stop rather than lose work silently.
                        failures.append((id, "\(error)"))
                        progress.failed += 1
                        logger.error("cannot record a finished tree; stopping", metadata: ["item": "\(id)", "error": "\(error)"])
                        group.cancelAll()
                        interrupted = true
                    }
                } else {
                    let error = finished.error ?? CancellationError()
                    if error is CancellationError || Task.isCancelled {
                        interrupted = true
                    } else {
                        failures.append((id, "\(error)"))
                        progress.failed += 1
                        logger.error("item failed", metadata: ["item": "\(id)", "error": "\(error)"])
                    }
                }
            }
        }
        await log.close()
        if Task.isCancelled { interrupted = true }

        let order = Dictionary(uniqueKeysWithValues: items.enumerated().map { ($1.id, $0) })
        trees.sort { (order[$0.id] ?? 0) < (order[$1.id] ?? 0) }
        let summary = StrategySummary(strategy: strategy, budget: sampler.config.budget, trees: trees,
                                      failed: failures.count, wallTimeSeconds: Self.seconds(clock.now - start))
        try Self.writeSummary(summary, failures: failures, interrupted: interrupted, to: directory)
        return RunOutcome(summary: summary, failures: failures, interrupted: interrupted)
    }

    static func makeDirectory(_ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw RunError("\(url.path): cannot create the run directory: \(error.localizedDescription)")
        }
    }

    static func writeSummary(_ s: StrategySummary, failures: [(String, String)], interrupted: Bool, to directory: URL) throws {
        struct Failure: Encodable { var id: String; var error: String }
        struct File: Encodable {
            var strategies: [StrategySummary]
            var failures: [Failure]
            var interrupted: Bool
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let data = try encoder.encode(File(strategies: [s], failures: failures.map { Failure(id: $0.0, error: $0.1) }, interrupted: interrupted))
        let url = directory.appendingPathComponent("summary.json")
        do { try data.write(to: url, options: .atomic) } catch {
            throw RunError("\(url.path): cannot write the summary: \(error.localizedDescription)")
        }
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
