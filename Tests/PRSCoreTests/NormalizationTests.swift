import PRSCore
import PRSTestSupport
import Testing

@Suite struct NormalizationTests {
    func node(_ id: Int, _ comps: [String: Double], kind: NodeKind = .initial, parent: Int? = nil) -> Node {
        Node(
            id: id, parentID: parent, kind: kind, layer: kind == .initial ? 0 : 1, text: "\(id)",
            reward: comps.values.reduce(0, +),
            rewards: comps, seed: nil, params: .paper, usage: .zero, latencyMs: 0, finishReason: .stop)
    }

    @Test func zScoresWeighEachPartOnTheSameScale() {
        // "big" varies in the hundreds, "small" in tenths: raw sums follow "big" alone.
        let nodes = [
            node(0, ["big": 100, "small": 0.9]), node(1, ["big": 300, "small": 0.1]),
            node(2, ["big": 200, "small": 0.5]),
        ]
        let out = RewardNormalization.zScore(weights: ["big": 1, "small": 1]).apply(nodes)
        // z(big) = -1.22, 1.22, 0; z(small) = 1.22, -1.22, 0: every node ties at 0.
        for n in out { #expect(abs(n.reward!) < 1e-9) }
        let smallWins = RewardNormalization.zScore(weights: ["big": 1, "small": 2]).apply(nodes)
        #expect(smallWins.max { $0.reward! < $1.reward! }?.id == 0)
        #expect(smallWins[0].rewards == nodes[0].rewards, "raw components are kept")
    }

    @Test func feedbackAndFailuresAreLeftAloneAndImprovingIsRecomputed() {
        var failed = node(3, ["a": 9])
        failed.reward = nil
        failed.rewardError = "boom"
        let fb = Node(
            id: 2, parentID: 0, kind: .feedback, layer: 1, text: "f", seed: nil, params: .paper, usage: .zero,
            latencyMs: 0, finishReason: .stop)
        let nodes = [node(0, ["a": 1]), node(1, ["a": 0]), fb, failed, node(4, ["a": 2], kind: .refinement, parent: 2)]
        let out = RewardNormalization.zScore(weights: ["a": 1]).apply(nodes)
        #expect(out[2].reward == nil && out[3].reward == nil)
        #expect(out[4].improving == true)
        #expect(out[0].reward! > out[1].reward!)
    }

    @Test func prsSelectsOnNormalisedRewards() async throws {
        // Scripted components: "big" prefers r0.0, "small" (weighted 3x) prefers r0.1.
        let reward = ComponentReward()
        var config = try StrategyConfig(kind: .prs, budget: 4, runSeed: 1)
        config.normalization = .zScore(weights: ["big": 1, "small": 3])
        let tree = try await TreeSampler(config: config, policy: ScriptedGenerator(), reward: reward)
            .sample(PromptItem(id: "x", instruction: "y"))
        let fb = try #require(tree.nodes.first { $0.kind == .feedback })
        #expect(fb.parentID == 1, "the draft is the node the weighted z-scores prefer")
        #expect(fb.source == "self")
    }
}

/// Components that disagree: "big" favours the first sample of a layer, "small" the second.
struct ComponentReward: RewardModel {
    let identity = "components"
    func score(_ inputs: [RewardInput]) async throws -> [RewardResult] {
        inputs.map { i in
            let second = i.response.hasSuffix(".1")
            let big = second ? 100.0 : 300.0
            let small = second ? 0.9 : 0.1
            return RewardResult(value: big + small, components: ["big": big, "small": small])
        }
    }
}
