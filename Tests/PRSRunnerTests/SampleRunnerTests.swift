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
        let outcome = try await SampleRunner(sampler: sampler, concurrency: 3, logger: Logger(label: "t")).run(items: items(7), directory: dir)
        #expect(outcome.summary.prompts == 7)
        #expect(outcome.failures.isEmpty)
        #expect(!outcome.interrupted)
        let lines = try String(contentsOf: dir.appendingPathComponent("trees.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 7)
        let trees = try lines.map { try JSONDecoder().decode(Tree.self, from: Data($0.utf8)) }
        #expect(Set(trees.map(\.id)) == Set(items(7).map(\.id)))
        #expect(trees.allSatisfy { $0.nodes.count == 5 })
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("summary.json").path))
    }
}
