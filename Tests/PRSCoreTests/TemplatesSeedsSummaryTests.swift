import Foundation
import PRSCore
import Testing

@Suite struct TemplatesTests {
    @Test func rendersInOnePassWithoutReexpanding() {
        let out = PromptTemplates.render(
            "A {draft} B {feedback}", ["draft": "uses {feedback} literally", "feedback": "F"])
        #expect(out == "A uses {feedback} literally B F")
    }

    @Test func leavesUnknownBracesAlone() {
        #expect(PromptTemplates.render("json {\"a\": 1} {prompt}", ["prompt": "P"]) == "json {\"a\": 1} P")
    }

    @Test func validatesPlaceholders() throws {
        try PromptTemplates.standard.validate()
        var t = PromptTemplates.standard
        t.refine = "{draft} {feedbak}"
        #expect(
            throws: ConfigError(
                "template refine: unknown placeholder {feedbak}; known: {prompt}, {preference}, {draft}, {feedback}")
        ) { try t.validate() }
        t.refine = "{draft}"
        #expect(throws: ConfigError("template refine: must contain {feedback}")) { try t.validate() }
    }

    @Test func withoutAPreferenceThePromptStandsAlone() {
        let item = PromptItem(id: "x", instruction: "Hi")
        #expect(PromptTemplates.standard.conditionedMessages(item) == [.user("Hi")])
        #expect(
            PromptTemplates.standard.feedbackMessages(item, draft: "d")[0].content.contains(
                "(no particular preference)"))
    }
}

@Suite struct SeedsTests {
    @Test func seedsAreStableDistinctAndBounded() {
        let a = Seeds.base(run: 1, item: "x", step: 0)
        #expect(a == Seeds.base(run: 1, item: "x", step: 0))
        let all = [
            Seeds.base(run: 1, item: "x", step: 0), Seeds.base(run: 1, item: "x", step: 1),
            Seeds.base(run: 1, item: "y", step: 0), Seeds.base(run: 2, item: "x", step: 0),
        ]
        #expect(Set(all).count == 4)
        #expect(all.allSatisfy { $0 < Seeds.limit })
    }
}

@Suite struct SummaryTests {
    func node(_ id: Int, _ kind: NodeKind, _ layer: Int, _ reward: Double?, improving: Bool? = nil) -> Node {
        Node(
            id: id, parentID: nil, kind: kind, layer: layer, text: "t\(id)", reward: reward, seed: 1,
            params: .paper, usage: TokenUsage(promptTokens: 10, completionTokens: 2), latencyMs: 1,
            finishReason: .stop, improving: improving)
    }

    @Test func summarisesBestTop3LayersAndPairs() {
        let t1 = Tree(
            id: "a", strategy: "prs",
            nodes: [
                node(0, .initial, 0, 0.2), node(1, .initial, 0, 0.4), node(2, .feedback, 1, nil),
                node(3, .refinement, 1, 0.6, improving: true), node(4, .refinement, 1, 0.1, improving: false),
            ])
        let t2 = Tree(
            id: "b", strategy: "prs",
            nodes: [
                node(0, .initial, 0, 1.0), node(1, .initial, 0, nil), node(2, .feedback, 1, nil),
                node(3, .refinement, 1, 0.5, improving: false),
            ])
        let s = StrategySummary(strategy: "prs", budget: 4, trees: [t1, t2], failed: 1, wallTimeSeconds: 2)
        #expect(s.prompts == 2 && s.failed == 1)
        #expect(abs(s.meanBestReward! - 0.8) < 1e-12)
        #expect(abs(s.meanTop3Reward! - ((0.6 + 0.4 + 0.2) / 3 + (1.0 + 0.5) / 2) / 2) < 1e-12)
        #expect(s.meanRewardPerLayer.count == 2)
        #expect(abs(s.meanRewardPerLayer[0]! - (0.2 + 0.4 + 1.0) / 3) < 1e-12)
        #expect(s.improvingPairs == 1)
        #expect(abs(s.improvingPairRate! - 1.0 / 3) < 1e-12)
        #expect(s.responses == 7 && s.unscoredResponses == 1 && s.feedbackGenerations == 2)
        #expect(s.promptTokens == 90)
    }

    @Test func encodesSnakeCase() throws {
        let s = StrategySummary(strategy: "rand", budget: 1, trees: [], failed: 0, wallTimeSeconds: 0)
        let json = String(decoding: try JSONEncoder().encode(s), as: UTF8.self)
        #expect(json.contains("\"mean_best_reward\"") == false, "nil values are omitted")
        #expect(json.contains("\"improving_pairs\":0"))
        let tree = Tree(id: "a", strategy: "prs", nodes: [node(0, .initial, 0, 0.5)])
        let tj = String(decoding: try JSONEncoder().encode(tree), as: UTF8.self)
        #expect(tj.contains("\"parent_id\":null"))
        for key in [
            "\"best_id\"", "\"parent_id\"", "\"latency_ms\"", "\"finish_reason\"", "\"prompt_tokens\"",
            "\"max_tokens\"",
        ] {
            #expect(tj.contains(key), "\(key) in \(tj)")
        }
    }
}
