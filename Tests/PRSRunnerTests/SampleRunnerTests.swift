import Foundation
import Logging
import PRSCore
import PRSRunner
import PRSTestSupport
import Testing

@Suite struct SampleRunnerTests {
    func tempDir() -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("prs-runner-\(UUID().uuidString)")
        return u
    }

    func items(_ n: Int) -> [PromptItem] {
        (0..<n).map { PromptItem(id: "p\($0)", instruction: "q\($0)", preference: Preference(text: "short")) }
    }

    @Test func writesOneTreePerItemAndASummary() async throws {
        let gen = ScriptedGenerator(delay: 0.01)
        let config = try StrategyConfig(kind: .prs, budget: 4)
        let sampler = TreeSampler(config: config, policy: gen, reward: ScriptedReward { Double($0.count) })
        let dir = tempDir()
        let outcome = try await SampleRunner(sampler: sampler, concurrency: 3, logger: Logger(label: "t")).run(
            items: items(7), directory: dir)
        #expect(outcome.summary.prompts == 7)
        #expect(outcome.failures.isEmpty)
        #expect(!outcome.interrupted)
        let lines = try String(contentsOf: dir.appendingPathComponent("trees.jsonl"), encoding: .utf8).split(
            separator: "\n")
        #expect(lines.count == 7)
        let trees = try lines.map { try JSONDecoder().decode(Tree.self, from: Data($0.utf8)) }
        #expect(Set(trees.map(\.id)) == Set(items(7).map(\.id)))
        #expect(trees.allSatisfy { $0.nodes.count == 5 })
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("summary.json").path))
    }

    @Test func failedItemsAreRetriedUpToTheLimitThenLeftAlone() async throws {
        let gen = FailingFor(id: "q1")
        let config = try StrategyConfig(kind: .rand, budget: 2)
        let sampler = TreeSampler(config: config, policy: gen, reward: ScriptedReward { _ in 1 })
        let dir = tempDir()
        let runner = SampleRunner(sampler: sampler, concurrency: 2, maxAttempts: 2, logger: Logger(label: "t"))
        for run in 1...3 {
            let outcome = try await runner.run(items: items(3), directory: dir)
            #expect(outcome.summary.prompts == 2)
            #expect(outcome.failures.map(\.id) == ["p1"])
            #expect(outcome.counts[.failed] == 1 && outcome.counts[.done] == 2)
            #expect(gen.calls(for: "q1") == min(run, 2), "run \(run): tried \(gen.calls(for: "q1")) times")
        }
    }
}

/// A generator that fails every request whose prompt mentions `id`.
final class FailingFor: TextGenerator, @unchecked Sendable {
    let identity = "failing"
    let id: String
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    init(id: String) { self.id = id }
    func calls(for id: String) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return counts[id] ?? 0
    }
    func generate(_ request: GenerationRequest) async throws -> [Generation] {
        let text = request.messages.map(\.content).joined()
        if text.contains(id) {
            lock.withLock { counts[id, default: 0] += 1 }
            throw FailureForTest()
        }
        return (0..<request.n).map { _ in
            Generation(
                text: "ok", finishReason: .stop, usage: TokenUsage(promptTokens: 1, completionTokens: 1), seed: 0,
                latencyMs: 0)
        }
    }
}

struct FailureForTest: Error, CustomStringConvertible { var description: String { "the server said no" } }
