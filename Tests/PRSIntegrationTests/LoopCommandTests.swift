import Foundation
import Testing

/// `prs loop` and `prs report LOOP` run as a user runs them: the real model, the real trainer,
/// a real loop store; SIGKILL at two points and a rerun; an external trainer command; bad configs.
@Suite(.serialized) struct LoopCommandTests {
    /// The first lines of the project's loop prompt sets.
    static func prompts(_ dir: URL, train: Int = 8, eval: Int = 4) throws -> (URL, URL) {
        func head(_ name: String, _ n: Int) throws -> URL {
            let lines = try String(contentsOf: Repo.root.appendingPathComponent("examples/\(name)"), encoding: .utf8)
                .split(separator: "\n").prefix(n)
            let u = dir.appendingPathComponent(name)
            try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
            return u
        }
        return (try head("loop-train.jsonl", train), try head("loop-heldout.jsonl", eval))
    }

    static func config(
        _ dir: URL, strategies: String = "[prs, rand]", iterations: Int = 2, budget: Int = 2, trainer: String = ""
    ) throws -> URL {
        let (train, eval) = try prompts(dir)
        let text = """
            model: \(Repo.model.path)
            train_prompts: \(train.path)
            eval_prompts: \(eval.path)
            strategies: \(strategies)
            iterations: \(iterations)
            prompts_per_iteration: 4
            budget: \(budget)
            max_tokens: 24
            reward: rubric
            concurrency: 4
            threads: 2
            select:
              sft: best
            train:
              epochs: 1
              lora_rank: 4
              lora_alpha: 8
              lr: 0.001
              batch_tokens: 256
              checkpoint_every: 1
            evaluate:
              samples: 2
              greedy: true
            \(trainer)
            """
        let u = dir.appendingPathComponent("loop.yaml")
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    static func summary(_ loop: URL) throws -> [String: Any] {
        try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: loop.appendingPathComponent("summary.json")))
                as? [String: Any])
    }

    /// The summary without the keys that measure time.
    static func timeless(_ loop: URL) throws -> String {
        var s = try summary(loop)
        var chains = try #require(s["chains"] as? [String: [[String: Any]]])
        for (k, entries) in chains {
            chains[k] = entries.map { e in
                var e = e
                e["seconds"] = nil
                e["stage_seconds"] = nil
                return e
            }
        }
        s["chains"] = chains
        return String(
            decoding: try JSONSerialization.data(withJSONObject: s, options: [.sortedKeys, .withoutEscapingSlashes]),
            as: UTF8.self)
    }

    /// Starts `prs loop`, waits until `ready` holds, and kills it with SIGKILL.
    static func killLoop(_ args: [String], when ready: () -> Bool) throws {
        _ = try startThenSignal(args, signal: SIGKILL, when: ready)
    }

    /// Items a run's store holds as done (read with Python's sqlite3 while the loop writes).
    static func doneItems(_ directory: URL) -> Int {
        let db = directory.appendingPathComponent("run.sqlite").path
        guard FileManager.default.fileExists(atPath: db) else { return 0 }
        let script =
            "import sqlite3,sys\ntry:\n  print(sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', "
            + "uri=True).execute(\"select count(*) from item where state='done'\").fetchone()[0])\nexcept Exception:\n "
            + " print(0)"
        let r = try? run(Repo.python, ["-c", script, db])
        return Int(r?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
    }

    @Test func aLoopKilledTwiceEndsWithTheSummaryOfAnUninterruptedOneAndItsAdaptersLoadInLlamaCpp() throws {
        let dir = Repo.tempDir("loop")
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = try Self.config(dir)
        let a = dir.appendingPathComponent("a")
        let b = dir.appendingPathComponent("b")
        let whole = try run(Repo.prs, ["loop", "--config", config.path, "--out", a.path])
        #expect(whole.status == 0, "\(whole.stderr)")
        #expect(whole.stdout.contains("held-out reward"), "the loop prints its table")
        #expect(whole.stderr.contains("stage 2/17"), "progress names the stage")

        let s = try Self.summary(a)
        let chains = try #require(s["chains"] as? [String: [[String: Any]]])
        #expect(Set(chains.keys) == ["prs", "rand"])
        var adapters: [String] = []
        for (name, entries) in chains {
            #expect(entries.map { $0["iteration"] as? Int } == [0, 1, 2], "\(name)")
            for e in entries {
                #expect(e["eval_mean_reward"] is Double, "\(name) \(e["iteration"] ?? "?")")
                #expect(e["eval_greedy_reward"] is Double)
            }
            for e in entries.dropFirst() {
                let adapter = try #require(e["adapter"] as? String)
                #expect(FileManager.default.fileExists(atPath: adapter))
                #expect((e["policy"] as? String) == "embedded:\(Repo.model.path)+\(adapter)")
                #expect((e["train_losses"] as? [Double])?.isEmpty == false)
                adapters.append(adapter)
            }
        }
        #expect(FileManager.default.fileExists(atPath: a.appendingPathComponent("prs/iter-2/data/sft.jsonl").path))
        #expect(FileManager.default.fileExists(atPath: a.appendingPathComponent("prs/iter-2/train.jsonl").path))
        #expect(FileManager.default.fileExists(atPath: a.appendingPathComponent("iter-0/eval/greedy/trees.jsonl").path))

        // llama.cpp loads every iteration's adapter and generates with it.
        let script = """
            import sys
            from llama_cpp import Llama
            for path in sys.argv[2:]:
                m = Llama(model_path=sys.argv[1], lora_path=path, n_ctx=128, verbose=False)
                out = m("Hello", max_tokens=4, temperature=0)
                assert out["choices"][0]["text"] is not None
                print("loaded", path)
            """
        let py = try run(Repo.python, ["-c", script, Repo.model.path] + adapters)
        #expect(py.status == 0, "\(py.stderr)")
        #expect(py.stdout.components(separatedBy: "loaded").count - 1 == adapters.count)

        // The report: the iteration table, and a page per run linked from it.
        let report = dir.appendingPathComponent("report.html")
        let r = try run(Repo.prs, ["report", a.path, "--out", report.path])
        #expect(r.status == 0, "\(r.stderr)")
        let html = try String(contentsOf: report, encoding: .utf8)
        #expect(html.contains("Held-out reward of the policy by iteration") && html.contains("<svg"))
        #expect(html.contains("report-runs/prs-iter-2-eval.html"))
        #expect(
            FileManager.default.fileExists(
                atPath: dir.appendingPathComponent("report-runs/rand-iter-1-sample.html").path))
        let md = dir.appendingPathComponent("report.md")
        #expect(try run(Repo.prs, ["report", a.path, "--out", md.path, "--format", "md"]).status == 0)
        #expect(try String(contentsOf: md, encoding: .utf8).contains("| prs | 2 |"))

        // Killed mid-sampling, then mid-training, then run to the end.
        let args = ["loop", "--config", config.path, "--out", b.path]
        try Self.killLoop(args) { Self.doneItems(b.appendingPathComponent("prs/iter-1/sample")) >= 2 }
        try Self.killLoop(args) {
            FileManager.default.fileExists(atPath: b.appendingPathComponent("prs/iter-2/adapter.gguf.ckpt").path)
        }
        let rest = try run(Repo.prs, args)
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(rest.stderr.contains("resuming loop"))
        let (ta, tb) = (try Self.timeless(a).replacingOccurrences(of: a.path, with: b.path), try Self.timeless(b))
        if ta != tb {
            try? ta.write(toFile: "/tmp/prs-loop-uninterrupted.json", atomically: true, encoding: .utf8)
            try? tb.write(toFile: "/tmp/prs-loop-resumed.json", atomically: true, encoding: .utf8)
        }
        #expect(
            ta == tb,
            "the resumed loop's summary (times aside) is the uninterrupted one's; both in /tmp/prs-loop-*.json")
        for chain in ["prs", "rand"] {
            for k in 1...2 {
                let p = "\(chain)/iter-\(k)/adapter.gguf"
                #expect(
                    try Data(contentsOf: a.appendingPathComponent(p)) == Data(contentsOf: b.appendingPathComponent(p)),
                    "\(p) bit for bit")
            }
        }
    }

    @Test func anExternalTrainerCommandTrainsTheIterationsAndItsFailureIsReportedAndRetried() throws {
        let dir = Repo.tempDir("loop-command")
        defer { try? FileManager.default.removeItem(at: dir) }
        let loop = dir.appendingPathComponent("loop")
        let broken = try Self.config(
            dir, strategies: "[rand]", iterations: 1,
            trainer: "trainer:\n  command: \"echo boom >&2; exit 3\"")
        let failed = try run(Repo.prs, ["loop", "--config", broken.path, "--out", loop.path])
        #expect(failed.status == 1)
        #expect(
            failed.stderr.contains("status 3") && failed.stderr.contains("boom")
                && failed.stderr.contains("trainer.log"), "\(failed.stderr)")

        // Other settings on the same loop directory are refused, naming them.
        let budget3 = try Self.config(
            dir, strategies: "[rand]", iterations: 1, budget: 3,
            trainer: "trainer:\n  command: \"echo boom >&2; exit 3\"")
        let refused = try run(Repo.prs, ["loop", "--config", budget3.path, "--out", loop.path])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("budget: 2 → 3"), "\(refused.stderr)")

        let good = try Self.config(
            dir, strategies: "[rand]", iterations: 1,
            trainer:
                "trainer:\n  command: \"sh \(Repo.root.path)/scripts/loop-trainers/prs-train.sh {data} {base} "
                + "{init} {out}\""
        )
        let noForce = try run(Repo.prs, ["loop", "--config", good.path, "--out", loop.path])
        #expect(noForce.status == 2 && noForce.stderr.contains("trainer: command:"), "\(noForce.stderr)")
        let ok = try run(
            Repo.prs, ["loop", "--config", good.path, "--out", loop.path, "--force"],
            environment: ["PRS": Repo.prs.path, "PRS_TRAIN_ARGS": "--epochs 1 --lora-rank 4 --batch-tokens 256"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let entries = try #require((try Self.summary(loop))["chains"] as? [String: [[String: Any]]])["rand"]
        let last = try #require(entries?.last)
        let adapter = loop.appendingPathComponent("rand/iter-1/adapter.gguf").path
        #expect((last["policy"] as? String) == "embedded:\(Repo.model.path)+\(adapter)")
        #expect(
            (last["train_losses"] as? [Double])?.isEmpty == false, "the losses are read from the command's train.jsonl")
        #expect(last["eval_mean_reward"] is Double)
        #expect(FileManager.default.fileExists(atPath: loop.appendingPathComponent("rand/iter-1/trainer.log").path))
    }

    /// `serve:` in the config: each iteration's adapter is exported to PEFT, loaded into a running
    /// `prs serve --allow-runtime-lora` and evaluated there as `openai:URL#NAME`, its greedy answers
    /// equal to `embedded:M+A`'s; after the server restarts, the next iteration loads it again.
    @Test func aLoopLoadsEachIterationIntoARunningServer() throws {
        let dir = Repo.tempDir("loop-serve")
        let loop = dir.appendingPathComponent("loop")
        var server = try ServeProcess(["--allow-runtime-lora"])
        let url = server.baseURL
        let config = try Self.config(
            dir, strategies: "[rand]", iterations: 1, trainer: "serve:\n  url: \(url)\n  format: peft")
        let first = try run(Repo.prs, ["loop", "--config", config.path, "--out", loop.path])
        #expect(first.status == 0, "\(first.stderr.suffix(2000))")
        let policy = "openai:\(url)#loop-rand-iter-1"
        let chain = try #require((try Self.summary(loop)["chains"] as? [String: [[String: Any]]])?["rand"])
        #expect(
            chain.count == 2 && chain[1]["policy"] as? String == policy,
            "iteration 1 is the served adapter: \(chain.map { $0["policy"] ?? "" })")
        let iter = loop.appendingPathComponent("rand/iter-1")
        #expect(FileManager.default.fileExists(atPath: iter.appendingPathComponent("peft/adapter_config.json").path))
        #expect(server.output.contains("name=loop-rand-iter-1"), "the server loaded it: \(server.output.suffix(1000))")
        // The served policy's greedy answers are the embedded engine's with the same adapter.
        let embedded = dir.appendingPathComponent("embedded")
        let eval = try Self.prompts(dir).1
        let direct = try run(
            Repo.prs,
            [
                "sample", "--prompts", eval.path, "--out", embedded.path, "--policy",
                "embedded:\(Repo.model.path)+\(iter.appendingPathComponent("adapter.gguf").path)",
                "--strategy", "greedy", "--budget", "1", "--max-tokens", "24", "--reward", "rubric",
            ])
        #expect(direct.status == 0, "\(direct.stderr)")
        func texts(_ run: URL) throws -> [String: [String]] {
            Dictionary(
                uniqueKeysWithValues: try readTrees(run).map { t in
                    (
                        t["id"] as? String ?? "",
                        (t["nodes"] as? [[String: Any]] ?? []).map { $0["text"] as? String ?? "" }
                    )
                })
        }
        let served = try texts(iter.appendingPathComponent("eval/greedy"))
        let local = try texts(embedded)
        #expect(served.count == 4 && served == local, "served greedy answers = embedded:M+A's")
        // And the PEFT export, taken where a GGUF adapter is.
        let viaPEFT = dir.appendingPathComponent("embedded-peft")
        let peftRun = try run(
            Repo.prs,
            [
                "sample", "--prompts", eval.path, "--out", viaPEFT.path, "--policy",
                "embedded:\(Repo.model.path)+\(iter.appendingPathComponent("peft").path)",
                "--strategy", "greedy", "--budget", "1", "--max-tokens", "24", "--reward", "rubric",
            ])
        #expect(peftRun.status == 0, "\(peftRun.stderr)")
        let peftTexts = try texts(viaPEFT)
        #expect(peftTexts == local, "embedded:M+PEFT_DIR answers as embedded:M+A.gguf")
        // A new server on the same port knows no adapters: iteration 2 samples with iteration 1's policy, loaded again first.
        _ = server.stop()
        let port = String(url.split(separator: ":").last!.split(separator: "/").first!)
        server = try ServeProcess(["--allow-runtime-lora", "--port", port])
        defer { _ = server.stop() }
        let second = try run(Repo.prs, ["loop", "--config", config.path, "--out", loop.path, "--iterations", "2"])
        #expect(second.status == 0, "\(second.stderr.suffix(2000))")
        #expect(
            server.output.contains("name=loop-rand-iter-1") && server.output.contains("name=loop-rand-iter-2"),
            "the restarted server got iteration 1 back and then iteration 2: \(server.output.suffix(1500))")
    }

    /// The GPU users' trainer, scripts/loop-trainers/trl_peft.py (TRL's SFTTrainer with a PEFT LoRA,
    /// run here on the CPU for two steps): its PEFT directory and the GGUF that prs's converter
    /// makes of it answer alike in prs.
    @Test func aTRLTrainedAdapterReachesPrsAsPEFTAndAsGGUF() throws {
        let dir = Repo.tempDir("trl")
        let data = dir.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let examples = [
            ("Name a colour.", "Ahoy! Blue, arr."), ("What do bees make?", "Ahoy! Honey, arr."),
            ("Name a fruit.", "Ahoy! A mango, arr."), ("What is two plus two?", "Ahoy! Four, arr."),
        ]
        let lines = try examples.map { q, a in
            String(
                decoding: try JSONSerialization.data(withJSONObject: [
                    "messages": [["role": "user", "content": q], ["role": "assistant", "content": a]]
                ]),
                as: UTF8.self)
        }
        try (lines.joined(separator: "\n") + "\n").write(
            to: data.appendingPathComponent("sft.jsonl"), atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("adapter.gguf")
        let torch = Repo.root.appendingPathComponent(".venv-bench/bin/python")
        let trained = try run(
            torch,
            [
                Repo.root.appendingPathComponent("scripts/loop-trainers/trl_peft.py").path, "--data", data.path,
                "--base", Repo.model.path, "--out", out.path, "--max-steps", "2", "--batch-size", "2", "--lr", "1e-3",
            ],
            environment: ["PRS_BIN": Repo.prs.path])
        #expect(trained.status == 0, "trl_peft.py: \(trained.stderr.suffix(2000))")
        let peft = dir.appendingPathComponent("adapter.peft")
        #expect(FileManager.default.fileExists(atPath: peft.appendingPathComponent("adapter_config.json").path))
        let eval = try Self.prompts(dir).1
        func greedy(_ adapter: URL, _ name: String) throws -> [String] {
            let r = try run(
                Repo.prs,
                [
                    "sample", "--prompts", eval.path, "--out", dir.appendingPathComponent(name).path, "--policy",
                    "embedded:\(Repo.model.path)+\(adapter.path)", "--strategy", "greedy", "--budget", "1",
                    "--max-tokens", "24", "--reward", "rubric",
                ])
            #expect(r.status == 0, "\(r.stderr)")
            return try readTrees(dir.appendingPathComponent(name)).map {
                ($0["nodes"] as? [[String: Any]])?.first?["text"] as? String ?? ""
            }
        }
        let viaPEFT = try greedy(peft, "peft")
        let viaGGUF = try greedy(out, "gguf")
        #expect(viaPEFT.count == 4 && viaPEFT == viaGGUF, "the PEFT directory and its GGUF answer alike")
    }

    @Test func theLoopPromptSetIsWhatItsScriptMakesWithHeldOutTopicsKeptOutOfTraining() throws {
        let r = try run(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["python3", Repo.root.appendingPathComponent("scripts/make_loop_prompts.py").path, "--check"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let count = { (name: String) in
            try String(contentsOf: Repo.root.appendingPathComponent("examples/\(name)"), encoding: .utf8).split(
                separator: "\n"
            ).count
        }
        #expect(try count("loop-train.jsonl") >= 400 && count("loop-heldout.jsonl") >= 100)
    }

    @Test func aBadConfigIsReportedWithItsFileLineAndKey() throws {
        let dir = Repo.tempDir("loop-config")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, eval) = try Self.prompts(dir)
        func check(_ body: String, _ expected: String) throws {
            let u = dir.appendingPathComponent("bad.yaml")
            try ("train_prompts: \(train.path)\neval_prompts: \(eval.path)\n" + body).write(
                to: u, atomically: true, encoding: .utf8)
            let r = try run(Repo.prs, ["loop", "--config", u.path, "--out", dir.appendingPathComponent("never").path])
            #expect(r.status == 2, "\(body): \(r.stderr)")
            #expect(r.stderr.contains("\(u.path):\(expected)"), "\(body): \(r.stderr)")
        }
        try check("budget: many\n", "3: budget: expected a whole number")
        try check("select:\n  sft: best\n  min_rewrd: 0.5\n", "5: select.min_rewrd: unknown setting")
        try check("strategies: [prs, best]\n", "3: strategies: \"best\"")
        try check("train:\n  init: latest\n", "4: train.init: \"latest\": expected previous or base")
        try check("iterations: 0\n", "3: iterations: must be at least 1")
        try check(
            "strategies: [prs, prs/better]\n",
            "3: strategies: \"prs/better\": after / comes improving, synthetic or improving+synthetic")
        try check(
            "select:\n  refine: made-up\n",
            "4: select.refine: \"made-up\": expected improving, synthetic, improving+synthetic or none")
        try check("select:\n  synthetic_margin: 0\n", "4: select.synthetic_margin: 0.0: it must be above 0")
        try check(
            "select:\n  synthetic_feedback: critic\n",
            "4: select.synthetic_feedback: \"critic\": expected verifier or policy")
        try check(
            "strategies: [prs/synthetic, prand]\nevaluate:\n  search: 8\n  search_chains: [rand]\n",
            "6: evaluate.search_chains: \"rand\" is not one of the loop's strategies (prs-synthetic, prand)")
        #expect(
            !FileManager.default.fileExists(atPath: dir.appendingPathComponent("never/loop.sqlite").path),
            "nothing is created for a bad config")
    }

    /// One fingerprint for every run: a sample run and a loop that differ only in top_k are told
    /// apart, each naming the setting with both values. The settings are checked before any model
    /// loads, so a model path that does not exist is enough.
    @Test func aSampleRunAndALoopThatDifferOnlyInTopKAreRefusedNamingIt() throws {
        let dir = Repo.tempDir("top-k")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (train, eval) = try Self.prompts(dir)
        let absent = "embedded:\(dir.path)/absent.gguf"
        let sample = [
            "sample", "--prompts", eval.path, "--out", dir.appendingPathComponent("sample").path, "--policy", absent,
            "--reward", "rubric", "--budget", "2",
        ]
        let first = try run(Repo.prs, sample + ["--top-k", "40"])
        #expect(
            first.status != 0 && first.stderr.contains("absent.gguf") && !first.stderr.contains("other settings"),
            "\(first.stderr)")
        let other = try run(Repo.prs, sample + ["--top-k", "50"])
        #expect(
            other.status == 2 && other.stderr.contains("was started with other settings (top_k: 40 → 50)"),
            "\(other.stderr)")
        func loop(_ k: Int) throws -> Ran {
            let u = dir.appendingPathComponent("loop-\(k).yaml")
            let text =
                "model: \(absent)\ntrain_prompts: \(train.path)\neval_prompts: \(eval.path)\n"
                + "strategies: [prs]\ntop_k: \(k)\n"
            try text.write(to: u, atomically: true, encoding: .utf8)
            return try run(Repo.prs, ["loop", "--config", u.path, "--out", dir.appendingPathComponent("loop").path])
        }
        let firstLoop = try loop(40)
        #expect(firstLoop.status != 0 && !firstLoop.stderr.contains("other settings"), "\(firstLoop.stderr)")
        let otherLoop = try loop(50)
        #expect(
            otherLoop.status == 2 && otherLoop.stderr.contains("other settings (top_k: 40 → 50)"), "\(otherLoop.stderr)"
        )
    }
}
