import PRSCore
import Testing

@Suite struct LoopPlanTests {
    func node(_ id: Int, _ reward: Double, _ text: String = "") -> Node {
        Node(
            id: id, parentID: nil, kind: .initial, layer: 0, text: text.isEmpty ? "answer \(id)" : text, reward: reward,
            seed: nil,
            params: SamplingParameters(), usage: TokenUsage(promptTokens: 1, completionTokens: 2), latencyMs: 0,
            finishReason: .stop)
    }

    func tree(_ id: String, _ rewards: [Double]) -> Tree {
        Tree(id: id, strategy: "prand", nodes: rewards.enumerated().map { node($0.offset, $0.element) })
    }

    @Test func theStagesRunTheStartingPolicyFirstThenEachChainInOrder() {
        let s = LoopPlan.stages(chains: ["prs", "rand"], iterations: 2)
        #expect(s.count == 1 + 2 * 2 * 4)
        #expect(s[0] == StageKey(chain: LoopPlan.baseChain, iteration: 0, stage: .evaluate))
        #expect(s[1...4].map(\.stage) == [.sample, .select, .train, .evaluate])
        #expect(s.last == StageKey(chain: "rand", iteration: 2, stage: .evaluate))
    }

    @Test func eachIterationSamplesItsOwnSliceOfTheTrainingPrompts() throws {
        var settings = LoopSettings(chains: [], iterations: 3)
        let all = (0..<5).map { PromptItem(id: "p\($0)", instruction: "q") }
        #expect(settings.trainingPrompts(all, iteration: 2).count == 5, "all prompts when no slice size is set")
        settings.promptsPerIteration = 2
        #expect(settings.trainingPrompts(all, iteration: 1).map(\.id) == ["p0", "p1"])
        #expect(settings.trainingPrompts(all, iteration: 3).map(\.id) == ["p4", "p0"])
    }

    @Test func refinementDataIsOnByDefaultForTreeBuildingChainsOnly() {
        var s = LoopSettings.Select()
        #expect(s.refines(.prs) && s.refines(.prsNoFeedback) && !s.refines(.rand) && !s.refines(.prand))
        s.refine = false
        #expect(!s.refines(.prs))
    }

    @Test func thePolicyScoreIsTheMeanOfPerPromptMeansWithWinsAgainstTheBase() {
        let items = [
            "a": PromptItem(id: "a", instruction: "x", preference: Preference(text: "p", category: "concise")),
            "b": PromptItem(id: "b", instruction: "y", preference: Preference(text: "p", category: "format")),
        ]
        let samples = [tree("a", [0.2, 0.6]), tree("b", [1.0, 0.0])]
        let greedy = [tree("a", [0.9]), tree("b", [0.1])]
        let base = (
            samples: [tree("a", [0.0, 0.2]), tree("b", [0.5, 0.5])], greedy: [tree("a", [0.5]), tree("b", [0.1])]
        )
        let s = PolicyScore.compute(samples: samples, greedy: greedy, base: base, items: items)
        #expect(s.prompts == 2)
        #expect(abs(s.meanReward.mean - 0.45) < 1e-12, "(0.4 + 0.5) / 2")
        #expect(s.meanReward.low <= 0.4 + 1e-12 && s.meanReward.high >= 0.5 - 1e-12)
        #expect(abs(s.greedyReward!.mean - 0.5) < 1e-12)
        // By greedy answers: a wins (0.9 > 0.5), b ties (0.1 = 0.1).
        #expect(abs(s.winRateVsBase!.mean - 0.75) < 1e-12)
        #expect(s.bestOfN.map(\.n) == [1, 2])
        #expect(abs(s.bestOfN[1].reward.mean - 0.8) < 1e-12, "best of both samples: (0.6 + 1.0) / 2")
        #expect(abs(s.byCategory["concise"]!.mean - 0.4) < 1e-12 && abs(s.byCategory["format"]!.mean - 0.5) < 1e-12)
        #expect(s.completionTokens == 2 * 6)
        // Gain, prompt by prompt: a 0.4 − 0.1, b 0.5 − 0.5.
        #expect(abs(s.gainVsBase!.mean - 0.15) < 1e-12)
        #expect(s.gainVsBase!.low <= 0 + 1e-12 && s.gainVsBase!.high >= 0.3 - 1e-12)
        let own = PolicyScore.compute(samples: samples, greedy: [], base: nil, items: items)
        #expect(own.winRateVsBase == nil && own.greedyReward == nil && own.gainVsBase == nil)
    }
}
