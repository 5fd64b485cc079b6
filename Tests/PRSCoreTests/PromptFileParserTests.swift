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
        let set = parse([
            #"{"key": 1000, "prompt": "Write a haiku.", "instruction_id_list": ["change_case:english_lowercase"], "kwargs": [{}]}"#
        ])
        #expect(set.problems.isEmpty)
        #expect(set.items[0].id == "1000")
        #expect(set.items[0].instruction == "Write a haiku.")
        #expect(set.items[0].preference?.constraints?.map(\.id) == ["change_case:english_lowercase"])
        #expect(
            set.items[0].preference?.text == "Write the whole answer in lowercase letters; no capital letters.",
            "constraints without words become the preference")
    }

    @Test func readsIFEvalKeywordArguments() throws {
        let set = parse([
            #"{"key": 7, "prompt": "Describe tea.", "instruction_id_list": ["length_constraints:number_words", "punctuation:no_comma"], "kwargs": [{"num_words": 40, "relation": "at least", "keywords": null}, {}]}"#
        ])
        #expect(set.problems.isEmpty)
        let c = try #require(set.items.first?.preference?.constraints)
        #expect(c.map(\.kind) == [.numberWords, .noComma])
        #expect(c[0].check(Array(repeating: "tea", count: 40).joined(separator: " ")).follow)
    }

    @Test(arguments: [
        ("not json", "p.jsonl:1: line is not valid JSON"),
        ("[1,2]", "p.jsonl:1: line is an array, not a JSON object"),
        (#"{"id":"a"}"#, "p.jsonl:1: instruction: missing"),
        (#"{"id":"a","instruction":5}"#, "p.jsonl:1: instruction: expected a string, found a number"),
        (#"{"id":"a","instruction":"  "}"#, "p.jsonl:1: instruction: is empty"),
        (#"{"id":true,"instruction":"x"}"#, "p.jsonl:1: id: expected a string or an integer, found a boolean"),
        (
            #"{"id":"a","instruction":"x","preference":["a"]}"#,
            "p.jsonl:1: preference: expected a string, found an array"
        ),
        (
            #"{"id":"a","instruction":"x","constraints":[{"num":1}]}"#,
            "p.jsonl:1: constraints[0].id: missing or not a string"
        ),
        (
            #"{"key":1,"prompt":"x","instruction_id_list":["a","b"],"kwargs":[{}]}"#,
            "p.jsonl:1: kwargs: has 1 entries but instruction_id_list has 2"
        ),
        (
            #"{"key":1,"prompt":"x","instruction_id_list":["punctuation:no_comma","detectable_format:haiku"],"kwargs":[{},{}]}"#,
            #"p.jsonl:1: instruction_id_list[1]: unknown instruction id "detectable_format:haiku"; known: "#
        ),
        (
            #"{"key":1,"prompt":"x","instruction_id_list":["length_constraints:number_words"],"kwargs":[{"num_words":9}]}"#,
            "p.jsonl:1: kwargs[0].relation: missing"
        ),
        (
            #"{"id":"a","instruction":"x","constraints":[{"id":"keywords:existence","keywords":"tea"}]}"#,
            "p.jsonl:1: constraints[0].keywords: expected a non-empty list of strings, found a string"
        ),
    ])
    func reportsFileLineFieldProblem(line: String, message: String) {
        let set = parse([line])
        #expect(set.items.isEmpty)
        #expect(set.problems.count == 1)
        #expect(set.problems.first?.description.hasPrefix(message) == true, "\(set.problems)")
    }

    @Test func reportsDuplicateIDsWithTheFirstLine() {
        let set = parse([
            #"{"id":"a","instruction":"x"}"#, #"{"id":"b","instruction":"y"}"#, #"{"id":"a","instruction":"z"}"#,
        ])
        #expect(set.items.map(\.id) == ["a", "b"])
        #expect(set.problems.map(\.description) == [#"p.jsonl:3: id: duplicate id "a" (first used on line 1)"#])
    }

    @Test func keepsGoodLinesAroundBadOnes() {
        let set = parse([#"{"id":"a","instruction":"x"}"#, "{", #"{"id":"b","instruction":"y"}"#])
        #expect(set.items.map(\.id) == ["a", "b"])
        #expect(set.problems.map(\.line) == [2])
    }
}
