import Foundation
import Testing

/// Bad input and unreachable servers give clear errors and the contract's exit statuses.
@Suite struct CommandLineErrorTests {
    func write(_ text: String, _ name: String = "prompts.jsonl") throws -> URL {
        let u = Repo.tempDir("cli").appendingPathComponent(name)
        try text.write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    @Test func badPromptLinesStopTheRunNamingFileLineAndField() throws {
        let f = try write("{\"id\":\"a\",\"instruction\":\"ok\"}\n{\"id\":\"b\"}\nnot json\n")
        let out = f.deletingLastPathComponent().appendingPathComponent("run")
        let r = try run(
            Repo.prs, ["sample", "--prompts", f.path, "--out", out.path, "--policy", "openai:http://127.0.0.1:9/v1"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(f.path):2: instruction: missing"))
        #expect(r.stderr.contains("\(f.path):3: line is not valid JSON"))
        #expect(r.stderr.contains("--skip-invalid"))
        #expect(!FileManager.default.fileExists(atPath: out.path), "nothing is started")
    }

    @Test func unreachableServerFailsWithTheURL() throws {
        let f = try write("{\"id\":\"a\",\"instruction\":\"ok\"}\n{\"id\":\"b\"}\n")
        let out = f.deletingLastPathComponent().appendingPathComponent("run")
        let r = try run(
            Repo.prs,
            [
                "sample", "--prompts", f.path, "--out", out.path, "--skip-invalid",
                "--policy", "openai:http://127.0.0.1:9/v1#m", "--retries", "1", "--budget", "2",
            ])
        #expect(r.status == 1)
        #expect(r.stderr.contains("http://127.0.0.1:9/v1/chat/completions"))
        #expect(r.stderr.contains("connection failed"))
        #expect(r.stderr.contains("skipped bad prompt lines"))
    }

    @Test(arguments: [
        (["--strategy", "best"], "strategy \"best\": expected one of rand, prand, greedy, prs, prs-nofeedback"),
        (["--budget", "8", "--split", "4,3"], "split 4,3 sums to 7, but the budget is 8"),
        (["--split", "4,x"], "\"x\" is not a whole number"),
        (["--reward", "bleu"], "\"bleu\" is not a reward"),
        (["--policy", "llama"], "expected openai:http://HOST:PORT/v1[#model] or embedded:PATH.gguf"),
        (["--budget", "many"], "--budget"),
    ])
    func badFlagsExitTwo(flags: [String], message: String) throws {
        let f = try write("{\"id\":\"a\",\"instruction\":\"ok\"}\n")
        var args = [
            "sample", "--prompts", f.path, "--out", f.deletingLastPathComponent().appendingPathComponent("run").path,
        ]
        if !flags.contains("--policy") { args += ["--policy", "openai:http://127.0.0.1:9/v1"] }
        let r = try run(Repo.prs, args + flags)
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }

    @Test func configFileSettingsAndTyposAreChecked() throws {
        let f = try write("{\"id\":\"a\",\"instruction\":\"ok\"}\n")
        let cfg = try write("budget: 4\nsplit: [2, 2]\ntemprature: 0.5\n", "prs.yaml")
        let r = try run(
            Repo.prs,
            [
                "sample", "--config", cfg.path, "--prompts", f.path, "--out", "/tmp/x", "--policy",
                "openai:http://127.0.0.1:9/v1",
            ])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(cfg.path):3: temprature: unknown setting"), "\(r.stderr)")
        let typed = try write("budget: four\n", "typed.yaml")
        let r2 = try run(
            Repo.prs,
            [
                "sample", "--config", typed.path, "--prompts", f.path, "--out", "/tmp/x", "--policy",
                "openai:http://127.0.0.1:9/v1",
            ])
        #expect(r2.status == 2)
        #expect(r2.stderr.contains("\(typed.path):1: budget: expected Int"), "\(r2.stderr)")
    }

    @Test func templateOverridesAreReadAndChecked() throws {
        let f = try write("{\"id\":\"a\",\"instruction\":\"ok\"}\n")
        let t = try write("Improve {draft} using {feedbak}", "refine.txt")
        let cfg = try write("templates:\n  refine: \(t.path)\n", "prs.yaml")
        let r = try run(
            Repo.prs,
            [
                "sample", "--config", cfg.path, "--prompts", f.path, "--out", "/tmp/x", "--policy",
                "openai:http://127.0.0.1:9/v1",
            ])
        #expect(r.status == 2)
        #expect(r.stderr.contains("template refine: unknown placeholder {feedbak}"), "\(r.stderr)")
        let missing = try write("templates:\n  refine: /nonexistent/refine.txt\n", "missing.yaml")
        let r2 = try run(
            Repo.prs,
            [
                "sample", "--config", missing.path, "--prompts", f.path, "--out", "/tmp/x", "--policy",
                "openai:http://127.0.0.1:9/v1",
            ])
        #expect(r2.status == 2)
        #expect(r2.stderr.contains("template refine: cannot read /nonexistent/refine.txt"), "\(r2.stderr)")
    }
}
