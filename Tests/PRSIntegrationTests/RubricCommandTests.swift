import Foundation
import Testing

/// `prs sample --reward rubric --feedback verifier` on the embedded model, and `prs score`.
@Suite(.serialized) struct RubricCommandTests {
    @Test func verifierFeedbackNodesCarryTheFailingCritiques() throws {
        let dir = Repo.tempDir("verifier")
        let prompts = dir.appendingPathComponent("p.jsonl")
        // Constraints a 135M model will not meet on its first try, so the verifier has something to say.
        try #"""
        {"id": "tea", "instruction": "How should I brew green tea?", "constraints": [{"id": "detectable_format:title"}, {"id": "startend:end_checker", "end_phrase": "Enjoy your tea!"}]}
        """#.write(to: prompts, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("run")
        let r = try run(
            Repo.prs,
            [
                "sample", "--prompts", prompts.path, "--out", out.path, "--strategy", "prs", "--budget", "4",
                "--max-tokens", "32", "--seed", "5", "--reward", "rubric", "--feedback", "verifier",
            ],
            environment: ["PRS_HOME": Repo.root.path])
        #expect(r.status == 0, "\(r.stderr)")
        let nodes = try #require(try readTrees(out).first?["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["kind"] as? String } == ["initial", "initial", "feedback", "refinement", "refinement"])
        let feedback = try #require(nodes.first { $0["kind"] as? String == "feedback" })
        #expect(feedback["source"] as? String == "verifier")
        let draft = try #require(nodes.first { $0["id"] as? Int == feedback["parent_id"] as? Int })
        let draftText = try #require(draft["text"] as? String)
        let text = try #require(feedback["text"] as? String)
        if !draftText.contains("<<") {
            #expect(text.contains("no title wrapped in double angular brackets"), "\(text)")
        }
        #expect((feedback["usage"] as? [String: Int])?["completion_tokens"] == 0, "the verifier generates nothing")
        for n in nodes where n["kind"] as? String != "feedback" {
            let rewards = try #require(n["rewards"] as? [String: Double])
            #expect(Set(rewards.keys) == ["detectable_format:title", "startend:end_checker"])
            let mean = rewards.values.reduce(0, +) / 2
            #expect(abs((n["reward"] as? Double ?? -1) - mean) < 1e-9)
        }
    }

    @Test func scoreGivesIFEvalAccuraciesAndPerResponseBreakdown() throws {
        let dir = Repo.tempDir("score")
        let prompts = dir.appendingPathComponent("ifeval.jsonl")
        try """
        {"key": 1, "prompt": "Write a haiku about rain in lowercase.", "instruction_id_list": \
        ["change_case:english_lowercase"], "kwargs": [{}]}
        {"key": 2, "prompt": "Describe tea in under 10 words, with no commas.", "instruction_id_list": \
        ["length_constraints:number_words", "punctuation:no_comma"], "kwargs": [{"num_words": 10, "relation": "less \
        than"}, {}]}
        {"key": 3, "prompt": "Give a title.", "instruction_id_list": ["detectable_format:title"], "kwargs": [{}]}
        """.write(to: prompts, atomically: true, encoding: .utf8)
        let responses = dir.appendingPathComponent("responses.jsonl")
        try """
        {"key": 1, "response": "Sure:\\nsoft rain on the roof"}
        {"key": 2, "response": "Tea is warm, green and calm."}
        {"key": 3, "response": "<<Rain>> falls."}
        """.write(to: responses, atomically: true, encoding: .utf8)
        let scores = dir.appendingPathComponent("scores.jsonl")
        let r = try run(
            Repo.prs,
            [
                "score", "--prompts", prompts.path, "--responses", responses.path, "--reward", "rubric", "--out",
                scores.path,
            ])
        #expect(r.status == 0, "\(r.stderr)")
        // Strict: 1 of 3 prompts (key 3), 2 of 4 instructions. Loose also forgives key 1's first line.
        #expect(r.stdout.contains("prompt-level        33.3%   66.7%"), "\(r.stdout)")
        #expect(r.stdout.contains("instruction-level   50.0%   75.0%"), "\(r.stdout)")
        let lines = try String(contentsOf: scores, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 3)
        let second = try #require(try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any])
        #expect(second["id"] as? String == "2")
        let cs = try #require(second["constraints"] as? [[String: Any]])
        #expect(cs.map { $0["id"] as? String } == ["length_constraints:number_words", "punctuation:no_comma"])
        #expect(cs.map { $0["follow"] as? Bool } == [true, false])
        #expect(abs((second["reward"] as? Double ?? 0) - 0.75) < 1e-9, "the mean of 1 (words) and 1/(1 comma + 1)")
    }

    @Test func scoreNamesBadResponseLines() throws {
        let dir = Repo.tempDir("score-bad")
        let prompts = dir.appendingPathComponent("p.jsonl")
        try #"{"id": "a", "instruction": "x", "constraints": [{"id": "punctuation:no_comma"}]}"#.write(
            to: prompts, atomically: true, encoding: .utf8)
        let responses = dir.appendingPathComponent("r.jsonl")
        try "{\"id\": \"a\", \"response\": 3}\n{\"id\": \"zz\", \"response\": \"hi\"}\n".write(
            to: responses, atomically: true, encoding: .utf8)
        let r = try run(Repo.prs, ["score", "--prompts", prompts.path, "--responses", responses.path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("r.jsonl:1: response: expected a string, found a number"), "\(r.stderr)")
        #expect(r.stderr.contains("r.jsonl:2: id: \"zz\" is not an id of the prompt file"), "\(r.stderr)")
    }
}
