import Foundation
import Testing

/// `prs sample` and `prs model generate` on the embedded default, no server.
@Suite(.serialized) struct EmbeddedSampleTests {
    @Test func sampleRunsOnTheEmbeddedDefault() throws {
        let dir = Repo.tempDir("embedded")
        let prompts = dir.appendingPathComponent("p.jsonl")
        try
            #"{"id": "tea", "instruction": "How should I brew green tea?", "preference": "Brief, with the exact water temperature."}"#
            .write(to: prompts, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("run")
        let args = [
            "sample", "--prompts", prompts.path, "--out", out.path, "--strategy", "prs", "--budget", "4",
            "--max-tokens", "24", "--seed", "3",
        ]
        // Run from the repository so the default model is found as models/… .
        let r = try run(Repo.prs, args, environment: ["PRS_HOME": Repo.root.path])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("policy=embedded:"), "the embedded default is used")
        // The engine's batching and prefix cache, in the summary and on the terminal.
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("summary.json")))
                as? [String: Any])
        let engine = try #require(summary["engine"] as? [String: Any], "summary.json has an engine object")
        #expect((engine["largest_decode_batch"] as? Int ?? 0) >= 2, "the two first-layer answers decoded together")
        #expect((engine["requests"] as? Int ?? 0) >= 3)
        #expect((engine["prefix_hit_rate"] as? Double ?? 0) > 0, "the refinement reuses the feedback request's blocks")
        #expect(r.stdout.contains("prefix cache hit"))
        let tree = try #require(try readTrees(out).first)
        let nodes = try #require(tree["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["kind"] as? String } == ["initial", "initial", "feedback", "refinement", "refinement"])
        #expect(nodes.filter { $0["kind"] as? String != "feedback" }.allSatisfy { $0["reward"] is Double })
        // The same seed reproduces the texts exactly on the embedded engine.
        let again = dir.appendingPathComponent("again")
        let r2 = try run(
            Repo.prs, args.map { $0 == out.path ? again.path : $0 }, environment: ["PRS_HOME": Repo.root.path])
        #expect(r2.status == 0)
        let nodes2 = try #require(try readTrees(again).first?["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["text"] as? String } == nodes2.map { $0["text"] as? String })
    }

    @Test func generateMatchesLlamaCppGreedy() throws {
        let r = try run(
            Repo.prs,
            [
                "model", "generate", Repo.model.path, "--prompt", "The capital of France is", "--temperature", "0",
                "--max-tokens", "8", "--json",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        // llama.cpp's greedy tokens for this prompt (scripts/reference/llama_greedy.py).
        #expect(o["tokens"] as? [Int] == [7042, 30, 198, 198, 504, 1797, 1918, 553])
        #expect((o["text"] as? String)?.hasPrefix(" Paris.") == true)
    }

    @Test func badGenerateFlagsExitTwo() throws {
        let r = try run(Repo.prs, ["model", "generate", Repo.model.path, "--prompt", "x", "--top-p", "2"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--top-p must be between 0 and 1"))
        let dir = Repo.tempDir("bad-model")
        let prompts = dir.appendingPathComponent("p.jsonl")
        try #"{"instruction": "hi"}"#.write(to: prompts, atomically: true, encoding: .utf8)
        let r2 = try run(
            Repo.prs,
            [
                "sample", "--prompts", prompts.path, "--out", dir.appendingPathComponent("run").path,
                "--policy", "embedded:/nonexistent.gguf",
            ])
        #expect(r2.status == 2)
        #expect(r2.stderr.contains("/nonexistent.gguf: no such file; `make demo`"), "\(r2.stderr)")
        let r3 = try run(
            Repo.prs,
            ["sample", "--prompts", prompts.path, "--out", dir.appendingPathComponent("run3").path, "--max-batch", "0"])
        #expect(r3.status == 2)
        #expect(r3.stderr.contains("max-batch must be at least 1"), "\(r3.stderr)")
    }

    /// Gemma 3 270M (scripts/fetch-gemma3.sh): tokenize, generate and bench through the CLI, and a
    /// PRS run with it as the embedded policy in Gemma's turn format.
    @Test func gemma3RunsThroughTheCLI() throws {
        let gemma = Repo.root.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf")
        if !FileManager.default.fileExists(atPath: gemma.path) {
            let fetched = try run(
                URL(fileURLWithPath: "/bin/bash"), [Repo.root.appendingPathComponent("scripts/fetch-gemma3.sh").path])
            #expect(fetched.status == 0, "\(fetched.stderr)")
        }
        let tok = try run(
            Repo.prs, ["model", "tokenize", gemma.path, "The capital of France is", "--add-special", "--json"])
        #expect(tok.status == 0, "\(tok.stderr)")
        // llama.cpp's ids and greedy tokens for this prompt (llama-cpp-python on the same file).
        #expect(tok.stdout.contains(#""tokens":[2,818,5279,529,7001,563]"#), "\(tok.stdout)")
        let gen = try run(
            Repo.prs,
            [
                "model", "generate", gemma.path, "--prompt", "The capital of France is", "--temperature", "0",
                "--max-tokens", "8", "--json",
            ])
        #expect(gen.status == 0, "\(gen.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(gen.stdout.utf8)) as? [String: Any])
        #expect(o["tokens"] as? [Int] == [506, 5279, 529, 506, 2891, 529, 7001, 236761])
        let bench = try run(
            Repo.prs, ["model", "bench", gemma.path, "--prompt-tokens", "16", "--gen", "8", "--n", "2", "--json"])
        #expect(bench.status == 0, "\(bench.stderr)")
        let b = try #require(try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any])
        #expect((b["decode_tokens_per_s"] as? Double ?? 0) > 0)
        let info = try run(Repo.prs, ["model", "info", gemma.path])
        #expect(
            info.stdout.contains("architecture   gemma3")
                && info.stdout.contains("SentencePiece (llama), 262144 tokens"), "\(info.stdout)")

        let dir = Repo.tempDir("gemma")
        let prompts = dir.appendingPathComponent("p.jsonl")
        // A held-out prompt with verifiable constraints, so the rubric scores every answer.
        let first = try String(
            contentsOf: Repo.root.appendingPathComponent("examples/prefs-heldout.jsonl"), encoding: .utf8
        ).split(separator: "\n")[0]
        try String(first).write(to: prompts, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("run")
        let r = try run(
            Repo.prs,
            [
                "sample", "--prompts", prompts.path, "--out", out.path, "--strategy", "prs", "--budget", "4",
                "--max-tokens", "24",
                "--seed", "3", "--reward", "rubric", "--policy", "embedded:\(gemma.path)", "--template", "gemma",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let tree = try #require(try readTrees(out).first)
        let nodes = try #require(tree["nodes"] as? [[String: Any]])
        #expect(nodes.map { $0["kind"] as? String } == ["initial", "initial", "feedback", "refinement", "refinement"])
        #expect(nodes.allSatisfy { !($0["text"] as? String ?? "").isEmpty }, "every node has text")
    }
}
