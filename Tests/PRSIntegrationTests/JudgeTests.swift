import Foundation
import Testing

/// The judge rates at a forced position, on the embedded engine and over HTTP against the real
/// llama.cpp server, and `prs score --pairs` measures a reward on preference pairs.
@Suite(.serialized) struct JudgeTests {
    static func firstPrompts(_ n: Int, to dir: URL) throws -> URL {
        let lines = try String(contentsOf: Repo.root.appendingPathComponent("examples/prompts.jsonl"), encoding: .utf8)
            .split(separator: "\n").prefix(n)
        let u = dir.appendingPathComponent("prompts.jsonl")
        try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    /// The new user's run from the issue: with the free-text judge, one prompt's drafts got no
    /// rating and the item failed; at a forced position every response is rated.
    @Test func aCompareJudgedByTheEmbeddedModelRatesEveryResponse() throws {
        let dir = Repo.tempDir("judge-compare")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try Self.firstPrompts(6, to: dir)
        let out = dir.appendingPathComponent("cmp")
        let r = try run(
            Repo.prs,
            [
                "compare", "--prompts", prompts.path, "--budget", "4", "--strategies", "rand,prand,prs",
                "--reward", "judge", "--max-tokens", "48", "--out", out.path,
            ])
        #expect(r.status == 0, "\(r.stderr)")
        for s in ["rand", "prand", "prs"] {
            let summary = try #require(
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: out.appendingPathComponent("\(s)/summary.json"))) as? [String: Any])
            let strategy = try #require((summary["strategies"] as? [[String: Any]])?.first)
            #expect(strategy["prompts"] as? Int == 6, "\(s)")
            #expect(strategy["unscored_responses"] as? Int == 0, "\(s): every response is rated")
        }
    }

    @Test func theJudgeOverTheLlamaCppServerRatesEveryResponse() throws {
        let dir = Repo.tempDir("judge-http")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = try Self.firstPrompts(6, to: dir)
        let ids = try String(contentsOf: prompts, encoding: .utf8).split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["id"] as? String
        }
        let responses = dir.appendingPathComponent("responses.jsonl")
        let lines = ids.enumerated().map { i, id in
            #"{"id":"\#(id)","response":"\#(i % 2 == 0 ? "Suffice it to say, I'm here to help" : "Here is a clear, complete answer.")"}"#
        }
        try lines.joined(separator: "\n").write(to: responses, atomically: true, encoding: .utf8)
        let scores = dir.appendingPathComponent("scores.jsonl")
        let r = try run(
            Repo.prs,
            [
                "score", "--prompts", prompts.path, "--responses", responses.path,
                "--reward", "judge:openai:\(try LlamaServer.url())", "--out", scores.path,
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = try String(contentsOf: scores, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(rows.count == ids.count)
        #expect(
            rows.allSatisfy { ($0["reward"] as? Double).map { (0...1).contains($0) } == true },
            "every response has a rating")
    }

    @Test func scoringPairsGivesTheRewardsAccuracyWithAnInterval() throws {
        let dir = Repo.tempDir("pairs")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = dir.appendingPathComponent("p.jsonl")
        let pairs = dir.appendingPathComponent("pairs.jsonl")
        let moon = #"[{"id":"keywords:existence","keywords":["moon"]}]"#
        try (0..<4).map {
            #"{"id":"q\#($0)","instruction":"Why are there tides?","preference":"Name the moon.","category":"\#($0 < 2 ? "a" : "b")","constraints":\#(moon)}"#
        }
        .joined(separator: "\n").write(to: prompts, atomically: true, encoding: .utf8)
        // Three pairs the constraint decides; one where neither answer names the moon (a tie).
        let rows = [
            ("q0", "The moon pulls the sea.", "Wind."),
            ("q1", "It is the moon.", "The sun, mostly, with some help from the wind"),
            ("q2", "Moon.", "Gravity."), ("q3", "Gravity.", "Wind."),
        ]
        try rows.map {
            #"{"id":"\#($0.0)","prompt":[{"role":"user","content":"Why are there tides?"}],"chosen":[{"role":"assistant","content":"\#($0.1)"}],"rejected":[{"role":"assistant","content":"\#($0.2)"}]}"#
        }
        .joined(separator: "\n").write(to: pairs, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("scores.jsonl")
        let r = try run(
            Repo.prs,
            ["score", "--pairs", pairs.path, "--prompts", prompts.path, "--reward", "rubric", "--out", out.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("accuracy (chosen above rejected, ties ½)   87.5%"), "\(r.stdout)")
        #expect(r.stdout.contains("length baseline"))
        #expect(r.stdout.contains("a ") && r.stdout.contains("100.0%"), "per category: a is 2 of 2")
        #expect(try String(contentsOf: out, encoding: .utf8).split(separator: "\n").count == 4)
        let bad = dir.appendingPathComponent("bad.jsonl")
        try #"{"prompt":"x","chosen":"y"}"#.write(to: bad, atomically: true, encoding: .utf8)
        let refused = try run(Repo.prs, ["score", "--pairs", bad.path, "--reward", "rubric"])
        #expect(refused.status == 2 && refused.stderr.contains("\(bad.path):1: rejected:"), "\(refused.stderr)")
    }
}
