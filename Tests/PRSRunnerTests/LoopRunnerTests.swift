import Foundation
import Logging
import PRSCore
import PRSRunner
import PRSStore
import PRSTestSupport
import Testing

/// A trainer for unit tests: the new policy's spec names the chain and iteration on top of the
/// one it started from; every job is recorded. `interrupt` cancels the loop on the job it matches.
final class ScriptedTrainer: PolicyTrainer, @unchecked Sendable {
    let identity = "scripted-trainer"
    private let lock = NSLock()
    private var _jobs: [TrainingJob] = []
    var interrupt: ((TrainingJob) -> Bool)?

    var jobs: [TrainingJob] {
        lock.lock()
        defer { lock.unlock() }
        return _jobs
    }

    /// Records the job; true when it is the one to interrupt (once).
    func record(_ job: TrainingJob) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        _jobs.append(job)
        let stop = interrupt?(job) ?? false
        if stop { interrupt = nil }
        return stop
    }

    func train(
        _ job: TrainingJob, onProgress: @escaping @Sendable (TrainingProgress) -> Void
    ) async throws -> TrainedPolicy {
        let stop = record(job)
        if stop {
            withUnsafeCurrentTask { $0?.cancel() }
            throw CancellationError()
        }
        onProgress(TrainingProgress(step: 1, steps: 1, loss: 0.5, elapsedSeconds: 0))
        let lines = job.files.reduce(0) {
            $0 + ((try? String(contentsOfFile: $1, encoding: .utf8))?.split(separator: "\n").count ?? 0)
        }
        return TrainedPolicy(
            policy: LoopRunnerTests.adding("\(job.chain)\(job.iteration)", to: job.initPolicy ?? job.base),
            examples: lines, losses: [1.0, 0.5])
    }
}

@Suite struct LoopRunnerTests {
    static func items(_ prefix: String, _ n: Int) -> [PromptItem] {
        (0..<n).map { i in
            PromptItem(
                id: "\(prefix)\(i)", instruction: "question \(i)",
                preference: Preference(text: "short", category: i % 2 == 0 ? "concise" : "format"))
        }
    }

    /// Texts name the policy and the seed; a policy trained more often scores higher.
    /// The test's policies are a base and the adapters of each training, written `base+prs1+prs2`.
    static let base = PolicySpec.embedded(path: "base")

    static func adding(_ adapter: String, to policy: PolicySpec) -> PolicySpec {
        guard case .embedded(let path, let adapters) = policy else { return policy }
        return .embedded(path: path, adapters: adapters + [adapter])
    }

    static func generator(_ spec: PolicySpec) -> any TextGenerator {
        let name = spec.description.dropFirst("embedded:".count)
        return ScriptedGenerator { _, i, request in "\(name) seed \((request.parameters.seed ?? 0) &+ UInt64(i))" }
    }

    static let reward = ScriptedReward { text in
        var h: UInt64 = 1_469_598_103_934_665_603
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 1_099_511_628_211 }
        let depth = Double(text.split(separator: " ")[0].split(separator: "+").count - 1)
        return Double(h % 1000) / 2000 + 0.1 * depth
    }

    static func runner(_ trainer: ScriptedTrainer, initFrom: LoopSettings.Init = .previous) throws -> LoopRunner {
        var settings = LoopSettings(
            chains: [
                .init(label: "prs", strategy: try StrategyConfig(kind: .prs, budget: 4)),
                .init(label: "rand", strategy: try StrategyConfig(kind: .rand, budget: 4)),
            ], iterations: 2)
        settings.promptsPerIteration = 3
        settings.initFrom = initFrom
        settings.evaluate.samples = 2
        return LoopRunner(
            settings: settings, trainPrompts: items("t", 5), evalPrompts: items("e", 4),
            basePolicy: LoopRunnerTests.base,
            makePolicy: { generator($0) }, reward: reward, feedback: nil, trainer: trainer, concurrency: 2,
            logger: Logger(label: "test"))
    }

    static func tempDir() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("prs-loop-\(UUID().uuidString)")
    }

    /// The summary without its times, which differ between runs.
    static func timeless(_ s: LoopSummary) -> LoopSummary {
        var s = s
        for (c, entries) in s.chains {
            s.chains[c] = entries.map { e in
                var e = e
                e.seconds = 0
                e.stageSeconds = [:]
                return e
            }
        }
        return s
    }

    @Test func runsEveryStageAndWritesTheLayoutAndSummary() async throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trainer = ScriptedTrainer()
        let summary = try await Self.runner(trainer).run(directory: dir, store: try LoopStore.open(directory: dir))
        #expect(summary.order == ["prs", "rand"])
        for chain in ["prs", "rand"] {
            let entries = try #require(summary.chains[chain])
            #expect(entries.map(\.iteration) == [0, 1, 2])
            #expect(entries[0].policy == "embedded:base")
            #expect(entries[2].policy == "embedded:base+\(chain)1+\(chain)2", "π(2) continues π(1)")
            #expect(entries.allSatisfy { $0.evalMeanReward != nil && $0.evalGreedyReward != nil })
            #expect(entries[1].samplePrompts == 3)
            #expect(entries[1].sftExamples == 3, "one best response per sampled prompt")
            // The scripted reward grows with training, so the trained policies win against iteration 0.
            #expect(entries[2].evalMeanReward! > entries[0].evalMeanReward!)
            #expect(entries[2].winRateVsBase! > 0.5)
            for k in 1...2 {
                let it = dir.appendingPathComponent("\(chain)/iter-\(k)")
                for f in [
                    "sample/run.sqlite", "sample/trees.jsonl", "data/sft.jsonl", "eval/run.sqlite",
                    "eval/greedy/run.sqlite",
                ] {
                    #expect(
                        FileManager.default.fileExists(atPath: it.appendingPathComponent(f).path), "\(chain) \(k): \(f)"
                    )
                }
            }
        }
        // Iteration k samples the k-th slice of the training prompts: t0…t2, then t3, t4, t0.
        let sampled = try RunStore.read(directory: dir.appendingPathComponent("rand/iter-2/sample")).items().map(
            \.item.id
        ).sorted()
        #expect(sampled == ["t0", "t3", "t4"])
        // Refinement examples only for the PRS chain.
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("prs/iter-1/data/refine.jsonl").path))
        #expect(
            !FileManager.default.fileExists(atPath: dir.appendingPathComponent("rand/iter-1/data/refine.jsonl").path))
        #expect(trainer.jobs.count == 4)
        let second = try #require(trainer.jobs.first { $0.chain == "prs" && $0.iteration == 2 })
        #expect(second.initPolicy?.description == "embedded:base+prs1" && second.sft.count == 1)
        let onDisk = try LoopSummary.load(dir)
        #expect(onDisk == summary)
    }

    @Test func trainingFromTheBaseGetsTheDataOfEveryIterationSoFar() async throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trainer = ScriptedTrainer()
        _ = try await Self.runner(trainer, initFrom: .base).run(
            directory: dir, store: try LoopStore.open(directory: dir))
        let second = try #require(trainer.jobs.first { $0.chain == "rand" && $0.iteration == 2 })
        #expect(second.initPolicy == nil)
        #expect(
            second.sft.map {
                URL(fileURLWithPath: $0).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent
            } == ["iter-1", "iter-2"])
    }

    @Test func anInterruptedLoopResumesToTheSameSummaryWithoutRedoingFinishedStages() async throws {
        let whole = Self.tempDir()
        let cut = Self.tempDir()
        defer {
            try? FileManager.default.removeItem(at: whole)
            try? FileManager.default.removeItem(at: cut)
        }
        let reference = try await Self.runner(ScriptedTrainer()).run(
            directory: whole, store: try LoopStore.open(directory: whole))

        let trainer = ScriptedTrainer()
        trainer.interrupt = { $0.chain == "prs" && $0.iteration == 2 }
        let runner = try Self.runner(trainer)
        // In a task of its own: the trainer cancels the task it runs in, as a signal would.
        let first = Task { try await runner.run(directory: cut, store: try LoopStore.open(directory: cut)) }
        await #expect(throws: LoopInterrupted.self) { try await first.value }
        let partial = try LoopSummary.load(cut)
        #expect(
            partial.stagesDone == 1 + 4 + 2,
            "iteration 0, prs iteration 1 and prs iteration 2's sample and select are kept")
        let resumed = try await runner.run(directory: cut, store: try LoopStore.open(directory: cut))
        #expect(Self.timeless(resumed) == Self.timeless(reference))
        let counts = Dictionary(trainer.jobs.map { ("\($0.chain)\($0.iteration)", 1) }, uniquingKeysWith: +)
        #expect(counts == ["prs1": 1, "prs2": 2, "rand1": 1, "rand2": 1], "only the interrupted training runs twice")
    }

    @Test func aStageThatFailsStopsTheLoopAndIsRetriedOnTheNextRun() async throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        struct Broken: PolicyTrainer {
            let identity = "broken"
            func train(
                _ job: TrainingJob, onProgress: @escaping @Sendable (TrainingProgress) -> Void
            ) async throws -> TrainedPolicy {
                throw RunError("out of disk")
            }
        }
        var runner = try Self.runner(ScriptedTrainer())
        runner.trainer = Broken()
        do {
            let store = try LoopStore.open(directory: dir)
            await #expect(throws: LoopStageFailed.self) { try await runner.run(directory: dir, store: store) }
            let failed = try #require(try store.stage(StageKey(chain: "prs", iteration: 1, stage: .train)))
            #expect(failed.state == .failed && failed.error?.contains("out of disk") == true && failed.attempts == 1)
        }
        runner.trainer = ScriptedTrainer()
        let summary = try await runner.run(directory: dir, store: try LoopStore.open(directory: dir))
        #expect(summary.stagesDone == summary.stages)
    }

    @Test func aSecondProcessCannotOpenALoopInUse() throws {
        let dir = Self.tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try LoopStore.open(directory: dir)
        #expect(throws: StoreError.self) { try LoopStore.open(directory: dir) }
        _ = first
    }
}
