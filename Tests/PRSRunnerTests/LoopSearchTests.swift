import Foundation
import Logging
import PRSCore
import PRSRunner
import PRSStore
import PRSTestSupport
import Testing

/// `evaluate.search: N`: every evaluation also runs PRS and PRand at budget N on the held-out
/// prompts with the iteration's policy, and records PRS against PRand (paired) and PRS's
/// refinement success there.
@Suite struct LoopSearchTests {
    @Test func eachEvaluationComparesPRSWithPRandAtEqualBudget() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prs-search-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var settings = LoopSettings(
            chains: [.init(label: "prs", strategy: try StrategyConfig(kind: .prs, budget: 4))], iterations: 1)
        settings.evaluate.samples = 2
        settings.evaluate.search = 4
        let runner = LoopRunner(
            settings: settings, trainPrompts: LoopRunnerTests.items("t", 4), evalPrompts: LoopRunnerTests.items("e", 5),
            basePolicy: LoopRunnerTests.base, makePolicy: { LoopRunnerTests.generator($0) },
            reward: LoopRunnerTests.reward,
            feedback: nil, trainer: ScriptedTrainer(), concurrency: 2, logger: Logger(label: "test"))
        let summary = try await runner.run(directory: dir, store: try LoopStore.open(directory: dir))
        for e in try #require(summary.chains["prs"]) {
            let search = try #require(e.eval?.search, "iteration \(e.iteration)")
            #expect(search.budget == 4)
            // The stored runs give the same figures, computed here by hand.
            let d =
                e.iteration == 0
                ? dir.appendingPathComponent("iter-0/eval") : dir.appendingPathComponent("prs/iter-\(e.iteration)/eval")
            let prs = try RunStore.read(directory: d.appendingPathComponent("search-prs-4")).trees(strategy: "prs")
            let prand = try RunStore.read(directory: d.appendingPathComponent("search-prand-4")).trees(
                strategy: "prand")
            #expect(
                prs.count == 5 && prand.count == 5 && prs.allSatisfy { $0.budgetUsed == 4 }
                    && prand.allSatisfy { $0.budgetUsed == 4 })
            let a = Dictionary(uniqueKeysWithValues: prs.map { ($0.id, $0.best!.reward!) })
            let b = Dictionary(uniqueKeysWithValues: prand.map { ($0.id, $0.best!.reward!) })
            let diff = a.keys.map { a[$0]! - b[$0]! }.reduce(0, +) / 5
            #expect(
                abs(search.difference.mean - diff) < 1e-12 && abs(search.prs.mean - search.prand.mean - diff) < 1e-12)
            #expect(search.difference.low <= diff && diff <= search.difference.high)
            #expect(search.refinement?.refinements == prs.reduce(0) { $0 + $1.nodes.count { $0.kind == .refinement } })
        }
    }
}
