import Foundation
import PRSCore
import PRSRunner
import Testing

@Suite struct VerifiedPairsTests {
    static let constraints = [
        try! Constraint(
            json: .object([
                "id": .string("length_constraints:number_words"), "num_words": .int(6),
                "relation": .string("less than"),
            ])),
        try! Constraint(json: .object(["id": .string("keywords:existence"), "keywords": .array([.string("moon")])])),
    ]

    func node(_ id: Int, _ text: String, reward: Double) -> Node {
        Node(
            id: id, parentID: nil, kind: .initial, layer: 0, text: text, reward: reward, seed: nil,
            params: SamplingParameters(),
            usage: TokenUsage(), latencyMs: 0, finishReason: .stop)
    }

    @Test func verifiedPairsGoByTheConstraintsNotTheReward() async throws {
        let item = PromptItem(
            id: "a", instruction: "Why tides?",
            preference: Preference(text: "short, name the moon", category: "concise", constraints: Self.constraints))
        let same = PromptItem(
            id: "b", instruction: "Why rain?",
            preference: Preference(text: "short, name the moon", constraints: Self.constraints))
        // The reward prefers the worst answer: the pairs must not follow it.
        let a = Tree(
            id: "a", strategy: "rand",
            nodes: [
                node(0, "It is the moon.", reward: 0.1),
                node(1, "Gravity from far away bodies pulls the oceans around", reward: 0.9),
                node(2, "The moon pulls water toward it every single day", reward: 0.5),
            ])
        let b = Tree(
            id: "b", strategy: "rand",
            nodes: [node(0, "Clouds get heavy.", reward: 0.2), node(1, "Water falls down.", reward: 0.8)])
        var options = Exports.Options()
        options.pairing = .verified
        let report = try await Exports.export(.dpo, trees: [a, b], items: ["a": item, "b": same], options: options)
        #expect(report.written == 1)
        #expect(report.skipped == ["no response follows more constraints than another": 1])
        let row = try #require(
            try JSONSerialization.jsonObject(with: report.data.split(separator: UInt8(ascii: "\n"))[0])
                as? [String: Any])
        #expect(((row["chosen"] as? [[String: String]])?.first?["content"]) == "It is the moon.")
        #expect(
            ((row["rejected"] as? [[String: String]])?.first?["content"])
                == "Gravity from far away bodies pulls the oceans around")
        #expect(
            row["follows_chosen"] as? Int == 2 && row["follows_rejected"] as? Int == 0
                && row["category"] as? String == "concise")
    }
}
