import PRSCore
import PRSTestSupport
import Testing

@Suite struct TreeSamplerTests {
    let item = PromptItem(id: "a", instruction: "Explain tides.", preference: Preference(text: "one short paragraph"))

    /// Rewards that make the i-th text of the c-th request score c*10+i, so the best of a
    /// layer is its last sample and later layers beat earlier ones.
    func increasing() -> ScriptedReward {
        ScriptedReward { text in
            let parts = text.dropFirst().split(separator: ".")
            return Double(parts[0])! * 10 + Double(parts[1])!
        }
    }

    func sample(
        _ kind: StrategyKind, budget: Int, split: [Int]? = nil, reward: ScriptedReward? = nil,
        existing: [Node] = [], gen: ScriptedGenerator = ScriptedGenerator()
    ) async throws -> Tree {
        let config = try StrategyConfig(kind: kind, budget: budget, split: split, runSeed: 42)
        return try await TreeSampler(config: config, policy: gen, reward: reward ?? increasing()).sample(
            item, existing: existing)
    }

    @Test(arguments: [[2, 2], [4, 4], [2, 2, 2, 2], [3, 1], [5]])
    func prsTreeShape(split: [Int]) async throws {
        let tree = try await sample(.prs, budget: split.reduce(0, +), split: split)
        #expect(tree.budgetUsed == split.reduce(0, +))
        #expect(tree.feedbackCount == split.count - 1)
        for (layer, width) in split.enumerated() {
            let kind: NodeKind = layer == 0 ? .initial : .refinement
            #expect(tree.nodes.count { $0.layer == layer && $0.kind == kind } == width)
        }
        // Node ids follow generation order: layer by layer, feedback before its refinements.
        #expect(tree.nodes.map(\.id) == Array(0..<tree.nodes.count))
        #expect(tree.nodes.map(\.layer) == tree.nodes.map(\.layer).sorted())
        #expect(tree.best?.reward == tree.scoredResponses.compactMap(\.reward).max())
    }

    @Test func feedbackCritiquesTheBestSoFarAndRefinementsFollowIt() async throws {
        // Layer 0 texts r0.0, r0.1 score 0 and 1: the draft is r0.1 (node 1).
        let tree = try await sample(.prs, budget: 4)
        let feedback = try #require(tree.nodes.first { $0.kind == .feedback })
        #expect(feedback.parentID == 1)
        #expect(feedback.layer == 1)
        #expect(feedback.reward == nil)
        let refinements = tree.nodes.filter { $0.kind == .refinement }
        #expect(refinements.allSatisfy { $0.parentID == feedback.id })
        // Refinements r2.0 and r2.1 score 20 and 21 > 1: both improve on the draft.
        #expect(refinements.allSatisfy { $0.improving == true })
        #expect(tree.best?.text == "r2.1")
    }

    @Test func refinementPromptCarriesDraftAndFeedback() async throws {
        let gen = ScriptedGenerator()
        _ = try await sample(.prs, budget: 4, gen: gen)
        #expect(gen.requests.count == 3)
        #expect(gen.requests.map(\.n) == [2, 1, 2])
        let refine = gen.requests[2].messages[0].content
        #expect(refine.contains("r0.1"), "the best draft")
        #expect(refine.contains("r1.0"), "the feedback text")
        #expect(refine.contains("one short paragraph"), "the preference")
        #expect(gen.requests[1].messages[0].content.contains("r0.1"))
    }

    @Test func laterLayersRefineTheBestOfAllLayers() async throws {
        // Layer 1 is worse than layer 0: layer 2 must refine layer 0's best again.
        let reward = ScriptedReward(table: ["r0.0": 5, "r0.1": 9, "r2.0": 1, "r2.1": 2, "r4.0": 3, "r4.1": 4])
        let gen = ScriptedGenerator()
        let tree = try await sample(.prs, budget: 6, split: [2, 2, 2], reward: reward, gen: gen)
        let feedbacks = tree.nodes.filter { $0.kind == .feedback }
        #expect(feedbacks.map(\.parentID) == [1, 1])
        #expect(tree.best?.id == 1)
        #expect(tree.nodes.filter { $0.kind == .refinement }.allSatisfy { $0.improving == false })
    }

    @Test func tiesGoToTheEarliestResponse() async throws {
        let tree = try await sample(.prand, budget: 4, reward: ScriptedReward { _ in 0.5 })
        #expect(tree.bestID == 0)
        let draftTree = try await sample(.prs, budget: 4, reward: ScriptedReward { _ in 0.5 })
        #expect(draftTree.nodes.first { $0.kind == .feedback }?.parentID == 0)
        #expect(draftTree.bestID == 0)
        #expect(
            draftTree.nodes.filter { $0.kind == .refinement }.allSatisfy { $0.improving == false },
            "equal is not an improvement")
    }

    @Test func withoutFeedbackRefinesFromTheDraft() async throws {
        let gen = ScriptedGenerator()
        let tree = try await sample(.prsNoFeedback, budget: 4, gen: gen)
        #expect(tree.feedbackCount == 0)
        #expect(gen.requests.map(\.n) == [2, 2])
        #expect(tree.nodes.filter { $0.kind == .refinement }.allSatisfy { $0.parentID == 1 })
        #expect(!gen.requests[1].messages[0].content.contains("Feedback"))
    }

    @Test func randAsksThePromptAlonePrandWithThePreference() async throws {
        let gen = ScriptedGenerator()
        let rand = try await sample(.rand, budget: 3, gen: gen)
        #expect(rand.budgetUsed == 3)
        #expect(gen.requests[0].messages == [.user("Explain tides.")])
        let pgen = ScriptedGenerator()
        _ = try await sample(.prand, budget: 3, gen: pgen)
        #expect(pgen.requests[0].messages[0].content.contains("one short paragraph"))
        #expect(pgen.requests[0].n == 3)
    }

    @Test func greedyIsOneTemperatureZeroAnswer() async throws {
        let gen = ScriptedGenerator()
        let tree = try await sample(.greedy, budget: 8, gen: gen)
        #expect(tree.budgetUsed == 1)
        #expect(gen.requests.count == 1)
        #expect(gen.requests[0].parameters.temperature == 0)
    }

    @Test func paperSamplingDefaults() async throws {
        let gen = ScriptedGenerator()
        _ = try await sample(.prs, budget: 2, gen: gen)
        let p = gen.requests[0].parameters
        #expect(p.temperature == 0.8 && p.topK == 50 && p.presencePenalty == 1.2)
    }

    @Test func sameRunSeedAsksTheSameRequests() async throws {
        let g1 = ScriptedGenerator()
        let g2 = ScriptedGenerator()
        let t1 = try await sample(.prs, budget: 4, gen: g1)
        let t2 = try await sample(.prs, budget: 4, gen: g2)
        #expect(g1.requests == g2.requests)
        #expect(t1 == t2)
        // Distinct seeds for every node of the tree.
        #expect(Set(t1.nodes.compactMap(\.seed)).count == t1.nodes.count)
    }

    @Test func resumesFromStoredNodesWithoutAskingThemAgain() async throws {
        let full = try await sample(.prs, budget: 4)
        let firstLayer = Array(full.nodes.prefix(2))
        let gen = ScriptedGenerator()
        let resumed = try await sample(.prs, budget: 4, existing: firstLayer, gen: gen)
        #expect(gen.requests.map(\.n) == [1, 2], "only feedback and refinements are asked")
        #expect(resumed.nodes.count == full.nodes.count)
        #expect(resumed.nodes.prefix(2) == full.nodes.prefix(2))
        #expect(resumed.nodes.map(\.seed) == full.nodes.map(\.seed))
    }

    @Test func failsClearlyWhenNothingCanBeScored() async throws {
        await #expect(throws: SamplerError.self) {
            _ = try await sample(.prs, budget: 4, reward: ScriptedReward { _ in nil })
        }
    }

    @Test func keepsUnscoredResponsesWithTheirError() async throws {
        let tree = try await sample(.prand, budget: 3, reward: ScriptedReward { $0 == "r0.1" ? nil : 1 })
        let failed = try #require(tree.nodes.first { $0.text == "r0.1" })
        #expect(failed.reward == nil)
        #expect(failed.rewardError == "scripted failure")
        #expect(tree.nodes.count == 3)
    }

    @Test func rejectsSplitsThatDoNotSumToTheBudget() {
        #expect(throws: ConfigError.self) { try StrategyConfig(kind: .prs, budget: 8, split: [4, 3]) }
        #expect(throws: ConfigError.self) { try StrategyConfig(kind: .prs, budget: 4, split: [4, 0]) }
        #expect(throws: ConfigError.self) { try StrategyConfig(kind: .rand, budget: 0) }
        #expect(StrategyConfig.defaultSplit(5) == [3, 2])
    }
}
