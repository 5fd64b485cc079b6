import Foundation
import Testing

/// A `prs serve` process on a free port, stopped (SIGTERM) when the test is done with it.
final class ServeProcess {
    let process = Process()
    let log: URL
    private(set) var baseURL = ""

    init(_ args: [String]) throws {
        log = FileManager.default.temporaryDirectory.appendingPathComponent(
            "prs-serve-\(UUID().uuidString.prefix(8)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.executableURL = Repo.prs
        process.arguments = ["serve", "--model", Repo.model.path, "--port", "0"] + args
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("prs serve: listening on ") }) {
                baseURL = String(line.dropFirst("prs serve: listening on ".count))
            }
            if text.contains("prs serve: ready"), !baseURL.isEmpty { return }
            if !process.isRunning { throw SetupError("prs serve exited at start: \(text)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw SetupError("prs serve was not ready within 120 s; see \(log.path)")
    }

    var pid: Int32 { process.processIdentifier }
    var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Sends SIGTERM and waits for the exit status.
    func stop() -> Int32 {
        if process.isRunning { kill(pid, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill(pid, SIGKILL) }
    }
}

/// `prs serve` driven by the official openai client, and by `prs sample` itself.
@Suite(.serialized) struct ServeTests {
    static let checks = Repo.root.appendingPathComponent("scripts/serve-client-checks.py")

    /// A small adapter that visibly changes the model's answers (trained here in a few seconds).
    static func adapter() throws -> URL {
        let dir = Repo.tempDir("serve-adapter")
        let data = dir.appendingPathComponent("sft.jsonl")
        let pairs = [
            ("Name three colours of the rainbow.", "Red, orange, yellow. PIRATE ARR!"),
            ("Say hi", "Ahoy matey! PIRATE ARR!"),
            ("What is 2+2?", "Four, matey. PIRATE ARR!"), ("Name a fruit.", "A mango, arr. PIRATE ARR!"),
        ]
        let lines = try pairs.map { q, a in
            String(
                decoding: try JSONSerialization.data(withJSONObject: [
                    "messages": [["role": "user", "content": q], ["role": "assistant", "content": a]]
                ]),
                as: UTF8.self)
        }
        try lines.joined(separator: "\n").write(to: data, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("pirate.gguf")
        let r = try run(
            Repo.prs,
            [
                "train", "--data", data.path, "--model", Repo.model.path, "--out", out.path, "--epochs", "4",
                "--lr", "3e-3", "--lora-rank", "4", "--seed", "1",
            ])
        guard r.status == 0 else { throw SetupError("prs train: \(r.stderr)") }
        return out
    }

    /// Runs the client checks of `mode` and expects every one to pass.
    func expectChecksPass(_ arguments: [String]) throws {
        let r = try run(Repo.python, [Self.checks.path] + arguments)
        let lines = r.stdout.split(separator: "\n")
        let failed = lines.filter { $0.hasPrefix("FAIL") }
        #expect(r.status == 0 && failed.isEmpty, "\(failed.joined(separator: "\n"))\n\(r.stderr)")
        #expect(lines.contains { $0.hasPrefix("PASS") }, "no check ran: \(r.stdout) \(r.stderr)")
    }

    @Test func theOpenAIClientGetsWhatOpenAIWouldGive() throws {
        let server = try ServeProcess([
            "--api-key", "sekret", "--lora", "pirate=\(try Self.adapter().path)", "--max-body", "65536",
        ])
        defer { _ = server.stop() }
        // n with seed+i, repeatable seeds, streaming equal to the whole reply, logprobs, text
        // completions, every error with its exception, the adapter in a mixed batch, 8 concurrent
        // clients each equal to itself alone, a client that leaves freeing its blocks, and a fuzz.
        try expectChecksPass(["main", server.baseURL, "sekret", "pirate", "\(server.pid)"])
    }

    /// vLLM's runtime adapter endpoints with the openai client: bad paths and names get 400/404,
    /// an adapter loaded at run time (a `prs train` output, as a loop iteration makes, and its PEFT
    /// export) answers as the one given at start, and with 8 clients in flight one adapter is
    /// unloaded (waiting for its requests) and another loaded, no request failing and each answer
    /// equal to its answer alone.
    @Test func adaptersLoadAndUnloadAtRunTimeUnderLoad() throws {
        let adapter = try Self.adapter()
        let peft = adapter.deletingLastPathComponent().appendingPathComponent("pirate-peft")
        let export = try run(
            Repo.prs, ["model", "export-adapter", adapter.path, "--format", "peft", "--out", peft.path])
        #expect(export.status == 0, "export-adapter: \(export.stderr)")
        let server = try ServeProcess([
            "--api-key", "sekret", "--allow-runtime-lora", "--lora", "pirate=\(adapter.path)",
        ])
        defer { _ = server.stop() }
        try expectChecksPass(["runtime", server.baseURL, "sekret", "pirate", adapter.path, peft.path])
        #expect(
            server.output.contains("adapter unloaded"), "the server logs what it did: \(server.output.suffix(2000))")
    }

    /// lm-evaluation-harness's `local-completions` with its default settings (so its automatic
    /// tokenizer, through /tokenizer_info and /tokenize) on a multiple-choice and a generation task
    /// of examples/lm-eval, offline; every log-likelihood it logged equals llama.cpp's on the same
    /// file within the engine's tolerance (scripts/lm-eval-check.py states it).
    @Test func lmEvaluationHarnessScoresLikeLlamaCpp() throws {
        let server = try ServeProcess(["--name", "smollm2"])
        defer { _ = server.stop() }
        let out = Repo.tempDir("lm-eval")
        let r = try run(
            Repo.python,
            [
                Repo.root.appendingPathComponent("scripts/lm-eval-check.py").path, server.baseURL, "smollm2",
                Repo.model.path, out.path,
            ])
        let lines = r.stdout.split(separator: "\n")
        let failed = lines.filter { $0.hasPrefix("FAIL") }
        #expect(r.status == 0 && failed.isEmpty, "\(failed.joined(separator: "\n"))\n\(r.stderr.suffix(3000))")
        #expect(
            lines.filter { $0.hasPrefix("PASS") }.count >= 10, "the checks ran: \(r.stdout) \(r.stderr.suffix(2000))")
        #expect(
            lines.contains { $0.hasPrefix("ITEM doc 7 choice 3") },
            "every item was compared with llama.cpp: \(r.stdout)")
    }

    @Test func aFullQueueIsRefusedAndSIGTERMDrainsThenExits() throws {
        let server = try ServeProcess(["--max-batch", "1", "--max-queue", "0", "--drain-timeout", "60"])
        defer { _ = server.stop() }
        try expectChecksPass(["small", server.baseURL, "\(server.pid)"])
        #expect(server.stop() == 0, "the server exits cleanly after draining: \(server.output)")
        #expect(server.output.contains("shutting down: finishing requests in flight"))
    }

    @Test func prsSampleThroughPrsServeEqualsTheEmbeddedRun() throws {
        let server = try ServeProcess([])
        defer { _ = server.stop() }
        let dir = Repo.tempDir("serve-sample")
        let prompts = dir.appendingPathComponent("prompts.jsonl")
        // Three prompts with checkable constraints, from the held-out set.
        let lines = try String(
            contentsOf: Repo.root.appendingPathComponent("examples/prefs-heldout.jsonl"), encoding: .utf8
        )
        .split(separator: "\n").prefix(3).joined(separator: "\n")
        try lines
            .write(to: prompts, atomically: true, encoding: .utf8)
        func sample(_ policy: String, _ name: String) throws -> [[String: Any]] {
            let out = dir.appendingPathComponent(name)
            let r = try run(
                Repo.prs,
                [
                    "sample", "--prompts", prompts.path, "--out", out.path, "--policy", policy, "--strategy", "prs",
                    "--budget", "6", "--max-tokens", "40", "--seed", "7", "--reward", "rubric", "--concurrency", "3",
                ])
            #expect(r.status == 0, "\(policy): \(r.stderr)")
            return try readTrees(out)
        }
        let served = try sample("openai:\(server.baseURL)", "served")
        let embedded = try sample("embedded:\(Repo.model.path)", "embedded")
        func shape(_ trees: [[String: Any]]) -> [String: [String]] {
            Dictionary(
                uniqueKeysWithValues: trees.map { t in
                    let nodes = (t["nodes"] as? [[String: Any]] ?? []).map { n in
                        "\(n["id"] ?? "")|\(n["parent_id"] ?? "-")|\(n["kind"] ?? "")|\(n["reward"] ?? "-")|\(n["text"] ?? "")"
                    }
                    return (t["id"] as? String ?? "", nodes + ["best \(t["best_id"] ?? "")"])
                })
        }
        let a = shape(served)
        let b = shape(embedded)
        #expect(
            a.count == 3 && a.values.allSatisfy { $0.count == 8 },
            "three trees of 6 responses and a critique: \(a.mapValues(\.count))")
        for id in a.keys.sorted() { #expect(a[id] == b[id], "\(id): served\n\(a[id] ?? [])\nembedded\n\(b[id] ?? [])") }
    }
}
