import Foundation
import Testing

/// `prs sample` end to end against a real llama.cpp server and the real SmolLM2 model.
/// Serialized: the server answers one request at a time.
@Suite(.serialized) struct SampleAgainstLlamaServerTests {
    static let prompts = """
        {"id": "sky", "instruction": "Why is the sky blue?", "preference": "At most two sentences, with one everyday \
        analogy.", "category": "concise"}
        {"id": "tea", "instruction": "How should I brew green tea?", "preference": "Brief, with the exact water \
        temperature.", "category": "concise"}
        """

    func sample(
        _ strategy: String, budget: Int = 4, seed: Int = 7, prompts: String = Self.prompts, extra: [String] = []
    ) throws -> (Ran, URL) {
        let dir = Repo.tempDir(strategy)
        let file = dir.appendingPathComponent("prompts.jsonl")
        try prompts.write(to: file, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("run")
        let ran = try run(
            Repo.prs,
            [
                "sample", "--prompts", file.path, "--out", out.path, "--policy", "openai:\(try LlamaServer.url())",
                "--strategy", strategy, "--budget", "\(budget)", "--max-tokens", "32", "--seed", "\(seed)",
                "--concurrency", "2",
            ] + extra)
        return (ran, out)
    }

    /// (initial, feedback, refinement) node counts per tree for budget 4.
    @Test(arguments: [
        ("prs", 2, 1, 2), ("prs-nofeedback", 2, 0, 2), ("rand", 4, 0, 0), ("prand", 4, 0, 0), ("greedy", 1, 0, 0),
    ])
    func everyStrategyBuildsItsTree(strategy: String, initial: Int, feedback: Int, refinements: Int) throws {
        let (ran, out) = try sample(strategy)
        #expect(ran.status == 0, "stderr: \(ran.stderr)")
        let trees = try readTrees(out)
        #expect(Set(trees.compactMap { $0["id"] as? String }) == ["sky", "tea"])
        for tree in trees {
            #expect(tree["strategy"] as? String == strategy)
            let nodes = try #require(tree["nodes"] as? [[String: Any]])
            func count(_ kind: String) -> Int { nodes.count { $0["kind"] as? String == kind } }
            #expect(count("initial") == initial)
            #expect(count("feedback") == feedback)
            #expect(count("refinement") == refinements)
            let responses = nodes.filter { $0["kind"] as? String != "feedback" }
            let rewards = responses.compactMap { $0["reward"] as? Double }
            #expect(
                rewards.count == responses.count,
                "every response has a reward: \(responses.map { $0["reward_error"] ?? "" })")
            #expect(nodes.allSatisfy { !(($0["text"] as? String) ?? "").isEmpty })
            let best = try #require(nodes.first { $0["id"] as? Int == tree["best_id"] as? Int })
            #expect(best["reward"] as? Double == rewards.max(), "the reported best is the maximum")
            if feedback > 0 {
                let fb = try #require(nodes.first { $0["kind"] as? String == "feedback" })
                let draft = try #require(nodes.first { $0["id"] as? Int == fb["parent_id"] as? Int })
                let firstLayer = nodes.filter { $0["layer"] as? Int == 0 }.compactMap { $0["reward"] as? Double }
                #expect(draft["reward"] as? Double == firstLayer.max(), "feedback critiques the best initial answer")
            }
        }
        let summary =
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json")))
            as? [String: Any]
        let s = try #require((summary?["strategies"] as? [[String: Any]])?.first)
        #expect(s["prompts"] as? Int == 2)
        #expect((s["completion_tokens"] as? Int ?? 0) > 0)
        #expect(ran.stdout.contains("mean best reward"))
    }

    @Test func theSameSeedAsksTheSameRequests() throws {
        let one = #"{"id": "sky", "instruction": "Why is the sky blue?", "preference": "One sentence."}"#
        let (a, outA) = try sample("prs", seed: 11, prompts: one)
        let (b, outB) = try sample("prs", seed: 11, prompts: one)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let na = try #require(try readTrees(outA).first?["nodes"] as? [[String: Any]])
        let nb = try #require(try readTrees(outB).first?["nodes"] as? [[String: Any]])
        #expect(na.count == nb.count)
        for (x, y) in zip(na, nb) {
            #expect(x["seed"] as? Int == y["seed"] as? Int)
            #expect(
                NSDictionary(dictionary: x["params"] as? [String: Any] ?? [:])
                    == NSDictionary(dictionary: y["params"] as? [String: Any] ?? [:]))
            #expect(x["text"] as? String == y["text"] as? String, "llama.cpp is deterministic for a seed")
        }
        let (c, outC) = try sample("prs", seed: 12, prompts: one)
        #expect(c.status == 0)
        let nc = try #require(try readTrees(outC).first?["nodes"] as? [[String: Any]])
        #expect(nc.first?["seed"] as? Int != na.first?["seed"] as? Int, "another run seed asks other samples")
    }

    @Test func aRerunSkipsFinishedPrompts() throws {
        let (first, out) = try sample("rand", budget: 2)
        #expect(first.status == 0)
        let before = try String(contentsOf: out.appendingPathComponent("trees.jsonl"), encoding: .utf8)
        let again = try run(
            Repo.prs,
            [
                "sample", "--prompts", out.deletingLastPathComponent().appendingPathComponent("prompts.jsonl").path,
                "--out", out.path, "--policy", "openai:\(try LlamaServer.url())", "--strategy", "rand",
                "--budget", "2", "--max-tokens", "32", "--seed", "7",
            ])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try String(contentsOf: out.appendingPathComponent("trees.jsonl"), encoding: .utf8) == before)
        #expect(again.stderr.contains("resuming run"))
    }
}
