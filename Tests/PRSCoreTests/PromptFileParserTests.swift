import Foundation
import PRSCore
import Testing

@Suite struct PromptFileParserTests {
    func parse(_ lines: [String]) -> PromptSet {
        PromptFileParser.parse(Data(lines.joined(separator: "\n").utf8), file: "p.jsonl")
    }

    @Test func readsOwnFormat() throws {
        let set = parse([
            #"{"id":"a","instruction":"Summarise.","input":"Text here.","preference":"brief","category":"concise","constraints":[{"id":"length_constraints:number_words","num_words":50,"relation":"less than"}],"source":"x"}"#,
            "",
            #"{"instruction":"No id here."}"#,
        ])
        #expect(set.problems.isEmpty)
        #expect(set.items.count == 2)
        let a = set.items[0]
        #expect(a.prompt == "Summarise.\n\nText here.")
        #expect(a.preference?.text == "brief")
        #expect(a.preference?.category == "concise")
        #expect(a.preference?.constraints?.count == 1)
        #expect(a.metadata["source"] == .string("x"))
        #expect(set.items[1].id == "3", "an item without id is named by its line")
    }

    @Test func readsIFEvalFormat() throws {
        let set = parse([#"{"key": 1000, "prompt": "Write a haiku.", "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}"#])
        #expect(set.problems.isEmpty)
        #expect(set.items[0].id == "1000")
        #expect(set.items[0].instruction == "Write a haiku.")
        #expect(set.items[0].preference?.constraints == [.object(["id": .string("change_case:english_lowercase")])])
    }

    @Test(arguments: [
        ("not json", "p.jsonl:1: line is not valid JSON"),
        ("[1,2]", "p.jsonl:1: line is an array, not a JSON object"),
        (#"{"id":"a"}"#, "p.jsonl:1: instruction: missing"),
        (#"{"id":"a","instruction":5}"#, "p.jsonl:1: instruction: expected a string, found a number"),
        (#"{"id":"a","instruction":"  "}"#, "p.jsonl:1: instruction: is empty"),
        (#"{"id":true,"instruction":"x"}"#, "p.jsonl:1: id: expected a string or an integer, found a boolean"),
        (#"{"id":"a","instruction":"x","preference":["a"]}"#, "p.jsonl:1: preference: expected a string, found an array"),
        (#"{"id":"a","instruction":"x","constraints":[{"num":1}]}"#, "p.jsonl:1: constraints[0].id: missing or not a string"),
        (#"{"key":1,"prompt":"x","instruction_id_list":["a","b"],"kwargs":[{}]}"#, "p.jsonl:1: kwargs: has 1 entries but instruction_id_list has 2"),
    ])
    func reportsFileLineFieldProblem(line: String, message: String) {
        let set = parse([line])
        #expect(set.items.isEmpty)
        #expect(set.problems.map(\.description) == [message])
    }

    @Test func reportsDuplicateIDsWithTheFirstLine() {
        let set = parse([#"{"id":"a","instruction":"x"}"#, #"{"id":"b","instruction":"y"}"#, #"{"id":"a","instruction":"z"}"#])
        #expect(set.items.map(\.id) == ["a", "b"])
        #expect(set.problems.map(\.description) == [#"p.jsonl:3: id: duplicate id "a" (first used on line 1)"#])
    }

    @Test func keepsGoodLinesAroundBadOnes() {
        let set = parse([#"{"id":"a","instruction":"x"}"#, "{", #"{"id":"b","instruction":"y"}"#])
        #expect(set.items.map(\.id) == ["a", "b"])
        #expect(set.problems.map(\.line) == [2])
    }
}
