import Foundation
import PRSCore
import Testing

/// One constraint kind with an answer that follows it and one that does not.
struct ConstraintCase: Sendable, CustomTestStringConvertible {
    var json: String
    var pass: String
    var fail: String
    var testDescription: String { json }
}

func constraint(_ json: String) throws -> Constraint {
    try Constraint(json: JSONDecoder().decode(JSONValue.self, from: Data(json.utf8)))
}

let constraintCases: [ConstraintCase] = [
    .init(
        json: #"{"id":"length_constraints:number_words","num_words":5,"relation":"less than"}"#,
        pass: "Rain falls. Wet.", fail: "Rain falls from grey clouds onto the town."),
    .init(
        json: #"{"id":"length_constraints:number_words","num_words":4,"relation":"exactly"}"#,
        pass: "One two three four.  \n", fail: "One two three."),
    .init(
        json: #"{"id":"length_constraints:number_words","num_words":3,"relation":"at least"}"#,
        pass: "**Bold** words _here_", fail: "Two words"),
    .init(
        json: #"{"id":"length_constraints:number_sentences","num_sentences":2,"relation":"at most"}"#,
        pass: "Dr. Smith arrived at 3.30 p.m. today. He left!", fail: "One. Two. Three."),
    .init(
        json: #"{"id":"length_constraints:number_sentences","num_sentences":3,"relation":"exactly"}"#,
        pass: "First one… Second one?\n\nThird one", fail: "Only one sentence here."),
    .init(
        json: #"{"id":"length_constraints:number_paragraphs","num_paragraphs":2}"#,
        pass: "First part.\n***\nSecond part.\n", fail: "First part.\n\nSecond part."),
    .init(
        json:
            #"{"id":"length_constraints:nth_paragraph_first_word","num_paragraphs":2,"nth_paragraph":2,"first_word":"then"}"#,
        pass: "Start here.\n\n\"Then, finish.", fail: "Start here.\n\nAfter that finish."),
    .init(
        json: #"{"id":"prs:number_paragraphs","num_paragraphs":2,"relation":"at least"}"#,
        pass: "One.\n  \nTwo.\n\n\nThree.", fail: "One.\nStill one."),
    .init(
        json: #"{"id":"detectable_format:number_bullet_lists","num_bullets":3}"#,
        pass: "Tips:\n* one\n* two\n- three", fail: "Tips:\n* one\n* two\n\n**Bold line**"),
    .init(
        json: #"{"id":"prs:numbered_steps","num_steps":3,"relation":"at least"}"#,
        pass: "1. Mix\n2) Bake\n 3. Eat", fail: "1. Mix\nThen 2. bake"),
    .init(
        json: #"{"id":"detectable_format:title"}"#,
        pass: "<<A Quiet Morning>>\nText.", fail: "<< >>\n# A Quiet Morning"),
    .init(
        json: #"{"id":"detectable_format:multiple_sections","section_spliter":"Section","num_sections":2}"#,
        pass: "Section 1\nIntro\nSection 2\nBody", fail: "Section 1\nIntro only"),
    .init(
        json: #"{"id":"prs:markdown_sections","num_sections":2}"#,
        pass: "# Why\ntext\n## How\ntext", fail: "#hashtag\nWhy:\ntext"),
    .init(
        json: #"{"id":"detectable_format:json_format"}"#,
        pass: "```json\n{\"a\": [1, 2]}\n```", fail: "Here it is: {\"a\": 1}"),
    .init(
        json: #"{"id":"startend:quotation"}"#,
        pass: "  \"Be kind.\"\n", fail: "“Be kind.”"),
    .init(
        json: #"{"id":"detectable_content:postscript","postscript_marker":"P.S."}"#,
        pass: "Thanks.\n\nP.S. See you soon.", fail: "Thanks. PS see you soon."),
    .init(
        json: #"{"id":"detectable_format:number_highlighted_sections","num_highlights":2}"#,
        pass: "This is *key* and **also key**.", fail: "Only *one* here, and ** ** empty."),
    .init(
        json: #"{"id":"detectable_format:constrained_response"}"#,
        pass: "My answer is maybe.", fail: "Maybe."),
    .init(
        json: #"{"id":"combination:two_responses"}"#,
        pass: "Answer A.\n******\nAnswer B.", fail: "Answer A.\n******\nAnswer A."),
    .init(
        json: #"{"id":"keywords:existence","keywords":["tide","Moon"]}"#,
        pass: "The moon pulls the TIDE.", fail: "The sun warms the sea."),
    .init(
        json: #"{"id":"keywords:frequency","keyword":"green","frequency":2,"relation":"at least"}"#,
        pass: "Green hills, green fields.", fail: "Green hills."),
    .init(
        json: #"{"id":"keywords:forbidden_words","forbidden_words":["very","really"]}"#,
        pass: "It is everything I wanted.", fail: "It is Very good."),
    .init(
        json: #"{"id":"keywords:letter_frequency","letter":"z","let_frequency":2,"let_relation":"less than"}"#,
        pass: "A lazy dog.", fail: "Zigzag jazz."),
    .init(
        json: #"{"id":"prs:start_with","start_phrase":"In short"}"#,
        pass: "\n  in short, yes.", fail: "Yes. In short, yes."),
    .init(
        json: #"{"id":"startend:end_checker","end_phrase":"Any other questions?"}"#,
        pass: "Done. Any other questions?  \n", fail: "Any other questions? Done."),
    .init(
        json: #"{"id":"combination:repeat_prompt","prompt_to_repeat":"Name a colour."}"#,
        pass: "Name a colour. Blue.", fail: "Blue."),
    .init(
        json: #"{"id":"detectable_content:number_placeholders","num_placeholders":2}"#,
        pass: "Dear [name], at [address].", fail: "Dear [name], at home."),
    .init(
        json: #"{"id":"punctuation:no_comma"}"#,
        pass: "No commas here; none at all.", fail: "Well, here is one."),
    .init(
        json: #"{"id":"language:response_language","language":"fr"}"#,
        pass: "Je pense que le chat est dans la maison et il dort.",
        fail: "I think the cat is in the house and it sleeps."),
    .init(
        json: #"{"id":"language:response_language","language":"ru"}"#,
        pass: "Кошка спит дома.", fail: "The cat sleeps at home."),
    .init(
        json: #"{"id":"change_case:english_lowercase"}"#,
        pass: "all quiet — ça va. 123", fail: "all quiet but One."),
    .init(
        json: #"{"id":"change_case:english_capital"}"#,
        pass: "ALL QUIET, 123!", fail: "ALL QUIEt"),
    .init(
        json: #"{"id":"change_case:capital_word_frequency","capital_frequency":2,"capital_relation":"at least"}"#,
        pass: "This is VERY IMPORTANT.", fail: "This is Very IMPORTANT."),
]

@Suite struct ConstraintTests {
    @Test(arguments: constraintCases)
    func eachKindPassesAndFails(_ c: ConstraintCase) throws {
        let k = try constraint(c.json)
        let good = k.check(c.pass)
        #expect(
            good.follow && good.score == 1 && good.critique == nil,
            "should follow: \(c.pass.debugDescription) → \(good)")
        let bad = k.check(c.fail)
        #expect(!bad.follow && bad.score < 1, "should fail: \(c.fail.debugDescription) → \(bad)")
        #expect(bad.critique?.isEmpty == false)
        #expect(bad.score >= 0)
    }

    @Test func everyKindHasATestCase() throws {
        let tested = Set(try constraintCases.map { try constraint($0.json).kind })
        let missing = ConstraintKind.allCases.filter { !tested.contains($0) }
        #expect(missing.isEmpty, "untested kinds: \(missing)")
        #expect(ConstraintKind.allCases.count >= 20)
    }

    @Test func countsGiveGradedCredit() throws {
        let k = try constraint(#"{"id":"length_constraints:number_words","num_words":10,"relation":"at most"}"#)
        let twelve = k.check(Array(repeating: "word", count: 12).joined(separator: " "))
        #expect(abs(twelve.score - 0.8) < 1e-9)
        #expect(twelve.critique == "The answer has 12 words; it should have at most 10.")
        let fifty = k.check(Array(repeating: "word", count: 50).joined(separator: " "))
        #expect(fifty.score == 0)
        let keys = try constraint(#"{"id":"keywords:existence","keywords":["a1","b2","c3","d4"]}"#).check("a1 and b2")
        #expect(keys.score == 0.5)
        #expect(keys.critique == #"The answer does not include "c3", "d4"."#)
    }

    @Test func wordsAndSentencesAreCountedAsDocumented() {
        #expect(
            TextCounts.words("Don't stop — it's 3.5 km, naïve café_bar!").count == 10,
            "Don, t, stop, it, s, 3, 5, km, naïve, café_bar")
        #expect(TextCounts.sentences("Mr. Lee met Dr. Ng at 5 p.m. on Monday. It rained.").count == 2)
        #expect(TextCounts.sentences("“Stop!” she said. Then silence").count == 2)
        #expect(TextCounts.sentences("- item one\n- item two\n\nNext paragraph.").count == 2)
        #expect(TextCounts.paragraphs("a\n\n\n b \n  \nc").count == 3)
    }

    @Test func jsonInsideCodeFencesAndWithTrailingSpaceCounts() throws {
        let k = try constraint(#"{"id":"detectable_format:json_format"}"#)
        #expect(k.check("```\n[1, 2, 3]\n```\n  ").follow)
        #expect(k.check("  {\"ok\": true}  \n").follow)
        #expect(!k.check("```json\n{\"ok\": tru}\n```").follow)
    }

    @Test func looseModeForgivesAFirstLineAndAsterisks() throws {
        let lower = try constraint(#"{"id":"change_case:english_lowercase"}"#)
        let title = try constraint(#"{"id":"prs:start_with","start_phrase":"dear sam"}"#)
        let answer = "Sure! Here is the note:\ndear sam, see you at noon."
        #expect(!Rubric.check(answer, against: [lower, title], mode: .strict).contains { $0.follow })
        #expect(Rubric.check(answer, against: [lower, title], mode: .loose).allSatisfy { $0.follow })
        let bullets = try constraint(#"{"id":"keywords:existence","keywords":["bold claim"]}"#)
        #expect(!Rubric.check("a **bold** claim", against: [bullets], mode: .strict)[0].follow)
        #expect(
            Rubric.check("a **bold** claim", against: [bullets], mode: .loose)[0].follow,
            "Markdown emphasis is forgiven")
        let noStar = try constraint(#"{"id":"keywords:frequency","keyword":"*","frequency":1,"relation":"less than"}"#)
        #expect(!Rubric.check("a *b*", against: [noStar], mode: .strict)[0].follow)
        #expect(Rubric.check("a *b*", against: [noStar], mode: .loose)[0].follow)
    }

    @Test(arguments: [
        (#"{"id":"keywords:nope"}"#, "id: unknown instruction id \"keywords:nope\""),
        (#"{"id":"length_constraints:number_words","relation":"less than"}"#, "num_words: missing"),
        (
            #"{"id":"length_constraints:number_words","num_words":"80","relation":"less than"}"#,
            "num_words: expected a whole number, found a string"
        ),
        (#"{"id":"length_constraints:number_words","num_words":80,"relation":"fewer"}"#, "relation: expected one of"),
        (#"{"id":"keywords:existence","keywords":[]}"#, "keywords: expected a non-empty list"),
        (
            #"{"id":"keywords:letter_frequency","letter":"ab","let_frequency":1,"let_relation":"at least"}"#,
            "letter: expected a single letter"
        ),
        (#"{"id":"language:response_language","language":"xx"}"#, "language: \"xx\" is not a language prs can check"),
    ])
    func badArgumentsNameTheField(json: String, message: String) {
        #expect {
            try constraint(json)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test func constraintsRenderIntoAPreferenceAndRoundTrip() throws {
        let k = try constraint(#"{"id":"length_constraints:number_words","num_words":80,"relation":"less than"}"#)
        #expect(k.instruction == "Answer in less than 80 words.")
        let data = try JSONEncoder().encode(k)
        #expect(try JSONDecoder().decode(Constraint.self, from: data) == k)
    }

    @Test func verifierFeedbackIsTheFailingCritiques() async throws {
        let item = PromptItem(
            id: "a", instruction: "x",
            preference: Preference(
                text: "short, no commas",
                constraints: [
                    try constraint(#"{"id":"punctuation:no_comma"}"#),
                    try constraint(#"{"id":"length_constraints:number_words","num_words":3,"relation":"at most"}"#),
                ]))
        let (g, _) = try await VerifierFeedback().feedback(on: "Yes, sure thing.", for: item, seed: 1)
        #expect(g.text == "The answer uses 1 commas; it should use none.")
        #expect(g.usage == .zero)
        let (ok, _) = try await VerifierFeedback().feedback(on: "Yes sure.", for: item, seed: 1)
        #expect(ok.text.hasPrefix("The draft meets every checkable requirement"))
    }

    @Test func accuracyCountsPromptsAndInstructions() {
        let o = { (f: Bool) in ConstraintOutcome(id: "k", score: f ? 1 : 0, follow: f, critique: nil) }
        let acc = ConstraintAccuracy([[o(true), o(true)], [o(true), o(false)], []])
        #expect(acc.prompts == 2 && acc.promptsFollowed == 1)
        #expect(acc.instructions == 4 && acc.instructionsFollowed == 3)
        #expect(acc.promptLevel == 0.5 && acc.instructionLevel == 0.75)
    }
}
