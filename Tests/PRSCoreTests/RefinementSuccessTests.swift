import Foundation
import PRSCore
import Testing

/// Refinement success against figures computed by hand from three small trees.
@Suite struct RefinementSuccessTests {
    func node(
        _ id: Int, _ kind: NodeKind, _ layer: Int, _ reward: Double?, parent: Int? = nil, source: String? = nil
    ) -> Node {
        Node(
            id: id, parentID: parent, kind: kind, layer: layer, text: "t\(id)", reward: reward, seed: 1, params: .paper,
            usage: TokenUsage(promptTokens: 1, completionTokens: 1), latencyMs: 1, finishReason: .stop, source: source)
    }

    /// A (concise): drafts 0.2 and 0.4; self feedback on 0.4; refinements 0.6 (+0.2) and 0.1 (−0.3);
    /// verifier feedback on 0.6, refinement 0.9 (+0.3).
    /// B (humorous): draft 1.0; refinement without feedback 0.5 (−0.5); one unscored refinement and
    /// one refining an unscored draft (both left out).
    /// C (no category): draft 0.0, model feedback, refinement 0.0 (no change: not improving).
    var trees: [Tree] {
        [
            Tree(
                id: "A", strategy: "prs",
                nodes: [
                    node(0, .initial, 0, 0.2), node(1, .initial, 0, 0.4),
                    node(2, .feedback, 1, nil, parent: 1, source: "self"),
                    node(3, .refinement, 1, 0.6, parent: 2), node(4, .refinement, 1, 0.1, parent: 2),
                    node(5, .feedback, 2, nil, parent: 3, source: "verifier"), node(6, .refinement, 2, 0.9, parent: 5),
                ]),
            Tree(
                id: "B", strategy: "prs",
                nodes: [
                    node(0, .initial, 0, 1.0), node(1, .refinement, 1, 0.5, parent: 0),
                    node(2, .refinement, 1, nil, parent: 0),
                    node(3, .initial, 0, nil), node(4, .feedback, 1, nil, parent: 3, source: "self"),
                    node(5, .refinement, 1, 0.7, parent: 4),
                ]),
            Tree(
                id: "C", strategy: "prs",
                nodes: [
                    node(0, .initial, 0, 0.0), node(1, .feedback, 1, nil, parent: 0, source: "model:judge"),
                    node(2, .refinement, 1, 0.0, parent: 1),
                ]),
        ]
    }
    let categories = ["A": "concise", "B": "humorous"]

    func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) < 1e-12 }

    @Test func figuresEqualTheHandComputedOnes() throws {
        let r = try #require(RefinementSuccess(trees: trees, categories: categories))
        // Changes: A +0.2, −0.3, +0.3; B −0.5; C 0.
        #expect(r.all.refinements == 5 && r.all.improving == 2 && r.all.prompts == 3)
        #expect(close(r.all.successRate, 0.4) && close(r.all.meanRewardChange, -0.3 / 5))
        #expect(Set(r.byLayer.keys) == ["1", "2"])
        #expect(
            r.byLayer["1"]!.refinements == 4 && close(r.byLayer["1"]!.successRate, 0.25)
                && close(r.byLayer["1"]!.meanRewardChange, -0.6 / 4))
        #expect(
            r.byLayer["2"]!.refinements == 1 && close(r.byLayer["2"]!.successRate, 1)
                && close(r.byLayer["2"]!.meanRewardChange, 0.3))
        #expect(Set(r.byFeedback.keys) == ["self", "verifier", "none", "model:judge"])
        #expect(close(r.byFeedback["self"]!.successRate, 0.5) && close(r.byFeedback["self"]!.meanRewardChange, -0.05))
        #expect(close(r.byFeedback["none"]!.meanRewardChange, -0.5) && r.byFeedback["none"]!.improving == 0)
        #expect(r.byFeedback["model:judge"]!.improving == 0 && close(r.byFeedback["model:judge"]!.meanRewardChange, 0))
        #expect(Set(r.byCategory.keys) == ["concise", "humorous"])
        #expect(
            close(r.byCategory["concise"]!.successRate, 2.0 / 3)
                && close(r.byCategory["concise"]!.meanRewardChange, 0.2 / 3))
        #expect(r.byCategory["humorous"]!.refinements == 1)
    }

    @Test func intervalsResamplePrompts() throws {
        let r = try #require(RefinementSuccess(trees: trees, categories: categories))
        // One prompt: every resample is that prompt, so the interval is the point.
        let one = r.byCategory["concise"]!
        #expect(one.successRateInterval.map { close($0[0], 2.0 / 3) && close($0[1], 2.0 / 3) } == true)
        // Three prompts with rates 2/3 (A), 0 (B) and 0 (C): a resample's rate lies between 0 and
        // 2/3 whatever it draws, and the estimate inside its interval.
        let ci = try #require(r.all.successRateInterval)
        #expect(ci[0] >= 0 && ci[0] <= 0.4 && ci[1] >= 0.4 && ci[1] <= 2.0 / 3 + 1e-12 && ci[0] < ci[1])
        let change = try #require(r.all.meanRewardChangeInterval)
        // Per-prompt changes: A 0.2/3 over 3, B −0.5, C 0; means of resamples lie in [−0.5, 0.2/3].
        #expect(change[0] >= -0.5 && change[0] <= -0.06 && change[1] >= -0.06 && change[1] <= 0.2 / 3 + 1e-12)
    }

    @Test func noScoredRefinementsGiveNoFigure() {
        let flat = Tree(id: "x", strategy: "rand", nodes: [node(0, .initial, 0, 0.5), node(1, .initial, 0, 0.7)])
        #expect(RefinementSuccess(trees: [flat]) == nil)
        #expect(
            StrategySummary(strategy: "rand", budget: 2, trees: [flat], failed: 0, wallTimeSeconds: 0).refinement == nil
        )
    }

    @Test func theSummaryCarriesItAndOlderSummariesStillRead() throws {
        let s = StrategySummary(
            strategy: "prs", budget: 4, trees: trees, failed: 0, wallTimeSeconds: 1, categories: categories)
        let data = try JSONEncoder().encode(s)
        let json = String(decoding: data, as: UTF8.self)
        #expect(
            json.contains("\"refinement\"") && json.contains("\"success_rate\":0.4") && json.contains("\"by_category\"")
        )
        #expect(try JSONDecoder().decode(StrategySummary.self, from: data) == s)
        // A summary.json written before the figure existed.
        var object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        object["refinement"] = nil
        let old = try JSONDecoder().decode(
            StrategySummary.self, from: try JSONSerialization.data(withJSONObject: object))
        #expect(old.refinement == nil && old.prompts == 3)
    }

    @Test func itemsGiveTheirCategories() {
        let items = [
            PromptItem(id: "A", instruction: "x", preference: Preference(text: "short", category: "concise")),
            PromptItem(id: "B", instruction: "y", preference: Preference(text: "funny")),
            PromptItem(id: "C", instruction: "z"),
        ]
        #expect(StrategySummary.categories(items) == ["A": "concise"])
    }
}
