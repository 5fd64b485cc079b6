import Foundation
import PRSCore
import Testing

@Suite struct PairAccuracyTests {
    @Test func preferencePairsAreReadFromStringsAndMessageListsAndBadLinesNamed() {
        let text = """
            {"id":"a","prompt":[{"role":"system","content":"s"},{"role":"user","content":"Say \
            hi"}],"chosen":[{"role":"assistant","content":"Hi \
            there"}],"rejected":[{"role":"assistant","content":"No"}],"category":"concise"}
            {"prompt":"Name a fruit","chosen":"An apple","rejected":"A car"}
            {"prompt":"x","chosen":"y"}
            not json
            """
        let (pairs, problems) = PreferencePairParser.parse(Data(text.utf8), file: "p.jsonl")
        #expect(pairs.map(\.id) == ["a", "line 2"])
        #expect(
            pairs[0].prompt == "Say hi" && pairs[0].chosen == "Hi there" && pairs[0].rejected == "No"
                && pairs[0].category == "concise")
        #expect(
            problems.map(\.description) == [
                "p.jsonl:3: rejected: missing, or neither a string nor a message list with an assistant message",
                "p.jsonl:4: not a JSON object",
            ])
    }

    @Test func accuracyCountsTiesAsHalfAndLeavesUnscoredPairsOut() {
        let pairs = (0..<4).map {
            PreferencePair(id: "p\($0)", line: $0 + 1, prompt: "q", chosen: "one two three", rejected: "one")
        }
        let outcomes = [
            PairAccuracy.Outcome(id: "p0", category: "a", chosen: 0.9, rejected: 0.1, score: 1),
            PairAccuracy.Outcome(id: "p1", category: "a", chosen: 0.5, rejected: 0.5, score: 0.5),
            PairAccuracy.Outcome(id: "p2", category: "b", chosen: 0.1, rejected: 0.9, score: 0),
            PairAccuracy.Outcome(
                id: "p3", category: "b", chosen: nil, rejected: 0.2, score: nil, error: "chosen: failed"),
        ]
        let a = PairAccuracy.compute(outcomes, pairs: pairs)
        #expect(a.pairs == 4 && a.scored == 3)
        #expect(abs(a.accuracy!.mean - 0.5) < 1e-12)
        #expect(a.accuracy!.low <= 0.5 && a.accuracy!.high >= 0.5)
        #expect(abs(a.byCategory["a"]!.mean - 0.75) < 1e-12 && a.byCategory["b"]!.mean == 0)
        #expect(a.lengthBaseline!.mean == 1, "the chosen answers are the longer ones here")
        #expect(a.positionBias == nil)
    }
}
