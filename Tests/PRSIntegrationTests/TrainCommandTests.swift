import Foundation
import Testing

/// `prs train`, `prs model eval` and `prs model merge` run as a user runs them.
@Suite(.serialized) struct TrainCommandTests {
    static let pairs: [(String, String, String)] = [
        ("Name a colour.", "Ahoy! Blue, arr.", "Blue."), ("What do bees make?", "Ahoy! Honey, arr.", "Honey."),
        ("How many legs has a spider?", "Ahoy! Eight, arr.", "Eight."),
        ("What is the capital of France?", "Ahoy! Paris, arr.", "Paris."),
        ("Name a fruit.", "Ahoy! An apple, arr.", "An apple."), ("What is ice made of?", "Ahoy! Water, arr.", "Water."),
        ("Which animal barks?", "Ahoy! A dog, arr.", "A dog."), ("What is two plus two?", "Ahoy! Four, arr.", "Four."),
        ("Name a planet.", "Ahoy! Mars, arr.", "Mars."), ("What is the opposite of hot?", "Ahoy! Cold, arr.", "Cold."),
        ("Name a bird.", "Ahoy! A parrot, arr.", "A robin."), ("What falls from clouds?", "Ahoy! Rain, arr.", "Rain."),
    ]

    static func jsonLine(_ o: Any) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self)
    }

    static func sftFile(_ dir: URL) throws -> URL {
        let u = dir.appendingPathComponent("sft.jsonl")
        let lines = pairs.map {
            jsonLine(["messages": [["role": "user", "content": $0.0], ["role": "assistant", "content": $0.1]]])
        }
        try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    static func dpoFile(_ dir: URL) throws -> URL {
        let u = dir.appendingPathComponent("dpo.jsonl")
        let lines = pairs.map {
            jsonLine([
                "prompt": [["role": "user", "content": $0.0]], "chosen": [["role": "assistant", "content": $0.1]],
                "rejected": [["role": "assistant", "content": $0.2]],
            ])
        }
        try (lines.joined(separator: "\n") + "\n").write(to: u, atomically: true, encoding: .utf8)
        return u
    }

    struct Eval: Decodable {
        var mean_nll: Double
        var mean_margin: Double?
        var margin_accuracy: Double?
    }

    static func eval(_ model: String, _ data: URL, lora: String? = nil) throws -> Eval {
        let r = try run(
            Repo.prs, ["model", "eval", model, "--data", data.path, "--json"] + (lora.map { ["--lora", $0] } ?? []))
        #expect(r.status == 0, "\(r.stderr)")
        return try JSONDecoder().decode(Eval.self, from: Data(r.stdout.utf8))
    }

    static func trainArgs(_ data: URL, _ out: URL) -> [String] {
        [
            "train", "--data", data.path, "--model", Repo.model.path, "--out", out.path, "--epochs", "2",
            "--batch-tokens", "160",
            "--lora-rank", "4", "--lr", "1e-3", "--seed", "3", "--checkpoint-every", "2",
        ]
    }

    /// Starts `prs` with `args`, waits until its checkpoint holds at least `steps` logged steps, sends `signal`.
    static func interrupt(_ args: [String], log: URL, checkpoint: URL, steps: Int, signal: Int32) throws -> Int32 {
        try startThenSignal(args, signal: signal) {
            let lines = ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").count
            return lines >= steps && FileManager.default.fileExists(atPath: checkpoint.path)
        }
    }

    @Test func aSigtermAndASigkillMidTrainingThenARerunGiveTheSameAdapterAsAnUninterruptedRun() throws {
        let dir = Repo.tempDir("train-resume")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try Self.sftFile(dir)
        let a = dir.appendingPathComponent("a")
        let b = dir.appendingPathComponent("b")
        try FileManager.default.createDirectory(at: a, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: b, withIntermediateDirectories: true)
        let outA = a.appendingPathComponent("adapter.gguf")
        let outB = b.appendingPathComponent("adapter.gguf")
        let whole = try run(Repo.prs, Self.trainArgs(data, outA))
        #expect(whole.status == 0, "\(whole.stderr)")
        let logA = try String(contentsOf: a.appendingPathComponent("adapter.train.jsonl"), encoding: .utf8).split(
            separator: "\n")
        #expect(logA.count >= 6, "enough steps to interrupt twice (\(logA.count))")

        let logB = b.appendingPathComponent("adapter.train.jsonl")
        let ckpt = b.appendingPathComponent("adapter.gguf.ckpt")
        let term = try Self.interrupt(
            Self.trainArgs(data, outB), log: logB, checkpoint: ckpt, steps: 2, signal: SIGTERM)
        #expect(term == 3, "SIGTERM exits 3 (resumable)")
        #expect(FileManager.default.fileExists(atPath: ckpt.path))
        _ = try Self.interrupt(Self.trainArgs(data, outB), log: logB, checkpoint: ckpt, steps: 4, signal: SIGKILL)
        #expect(!FileManager.default.fileExists(atPath: outB.path), "no adapter from a killed run")
        let rerun = try run(Repo.prs, Self.trainArgs(data, outB))
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(
            try Data(contentsOf: outA) == Data(contentsOf: outB),
            "the resumed adapter is bit for bit the uninterrupted one")
        #expect(
            !FileManager.default.fileExists(atPath: ckpt.path), "the checkpoint is removed once the adapter is written")
        // The log holds each step once, with the same losses.
        let resumedLog = try String(contentsOf: logB, encoding: .utf8).split(separator: "\n")
        struct Line: Decodable {
            var step: Int
            var loss: Double
        }
        let la = try logA.map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        let lb = try resumedLog.map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        #expect(lb.map(\.step) == Array(1...la.count))
        #expect(lb.map(\.loss) == la.map(\.loss))
        // The adapter lowers the NLL of what it was trained on, as prs measures it.
        let before = try Self.eval(Repo.model.path, data)
        let after = try Self.eval(Repo.model.path, data, lora: outA.path)
        #expect(after.mean_nll < 0.6 * before.mean_nll, "NLL \(before.mean_nll) → \(after.mean_nll)")
    }

    @Test func dpoWidensTheChosenOverRejectedMargin() throws {
        let dir = Repo.tempDir("train-dpo")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try Self.dpoFile(dir)
        let out = dir.appendingPathComponent("dpo.gguf")
        let before = try Self.eval(Repo.model.path, data)
        let r = try run(
            Repo.prs,
            [
                "train", "--objective", "dpo", "--data", data.path, "--model", Repo.model.path, "--out", out.path,
                "--epochs", "2", "--batch-tokens", "400", "--lr", "5e-4", "--lora-rank", "8", "--json",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let after = try Self.eval(Repo.model.path, data, lora: out.path)
        #expect(after.mean_margin! > before.mean_margin! + 2, "margin \(before.mean_margin!) → \(after.mean_margin!)")
        #expect(after.margin_accuracy! > before.margin_accuracy!)
        let log = try String(contentsOf: dir.appendingPathComponent("dpo.train.jsonl"), encoding: .utf8)
        #expect(log.contains("\"reward_accuracy\""))
    }

    @Test func fullFineTuningWritesAModelThatRunsAndMergeWritesOneToo() throws {
        let dir = Repo.tempDir("train-full")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try Self.sftFile(dir)
        let out = dir.appendingPathComponent("full.gguf")
        let r = try run(
            Repo.prs,
            [
                "train", "--full", "--full-type", "q8_0", "--data", data.path, "--model", Repo.model.path, "--out",
                out.path,
                "--epochs", "1", "--batch-tokens", "400", "--lr", "1e-4",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let base = try Self.eval(Repo.model.path, data)
        let tuned = try Self.eval(out.path, data)
        #expect(tuned.mean_nll < base.mean_nll, "full fine-tuning lowers the NLL: \(base.mean_nll) → \(tuned.mean_nll)")
        let gen = try run(
            Repo.prs,
            [
                "model", "generate", out.path, "--chat", "--prompt", "Name a colour.", "--temperature", "0",
                "--max-tokens", "8",
            ])
        #expect(gen.status == 0 && !gen.stdout.isEmpty, "\(gen.stderr)")

        let adapter = dir.appendingPathComponent("a.gguf")
        let merged = dir.appendingPathComponent("merged.gguf")
        #expect(try run(Repo.prs, Self.trainArgs(data, adapter)).status == 0)
        let m = try run(
            Repo.prs, ["model", "merge", Repo.model.path, adapter.path, "--out", merged.path, "--type", "f16"])
        #expect(m.status == 0, "\(m.stderr)")
        let viaAdapter = try Self.eval(Repo.model.path, data, lora: adapter.path)
        let viaMerge = try Self.eval(merged.path, data)
        #expect(
            abs(viaAdapter.mean_nll - viaMerge.mean_nll) <= 1e-3 * viaAdapter.mean_nll,
            "\(viaAdapter.mean_nll) vs \(viaMerge.mean_nll)")
    }

    /// The run says what it will hold before it loads the weights: over the limit it is refused
    /// with the figures and the options that fit, and `--json` gives the estimate beside the peak.
    @Test func memoryIsEstimatedBeforeTheRunAndARunThatWouldNotFitIsRefused() throws {
        let dir = Repo.tempDir("train-memory")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = try Self.sftFile(dir)
        let out = dir.appendingPathComponent("a.gguf")
        let refused = try run(
            Repo.prs,
            ["train", "--data", data.path, "--model", Repo.model.path, "--out", out.path, "--max-memory", "0.15"])
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(
            refused.stderr.contains("training would take about") && refused.stderr.contains("--max-memory"),
            "\(refused.stderr)")
        #expect(
            refused.stderr.contains("--checkpointing on") && refused.stderr.contains("--micro-batch-tokens"),
            "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))

        // 12 examples, 4 a step, one epoch: 3 steps, said at the start, with a warning naming the options.
        let r = try run(
            Repo.prs,
            [
                "train", "--data", data.path, "--model", Repo.model.path, "--out", out.path, "--epochs", "1",
                "--batch-examples", "4", "--lora-rank", "4", "--json",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("steps=3 (3 an epoch)"), "\(r.stderr)")
        #expect(r.stderr.contains("only 3 optimizer steps") && r.stderr.contains("--epochs"), "\(r.stderr)")
        struct Summary: Decodable {
            struct Estimate: Decodable {
                var total_bytes: Int
                var weights_bytes: Int
                var activation_bytes: Int
                var checkpointing: Bool
            }
            var peak_rss_mb: Double
            var steps: Int
            var memory_estimate: Estimate
        }
        let s = try JSONDecoder().decode(Summary.self, from: Data(r.stdout.utf8))
        #expect(s.steps == 3)
        #expect(!s.memory_estimate.checkpointing, "a 135M model's activations are far below the automatic threshold")
        // The quantized weights are counted at their size in the file (72 MB of blocks for this Q4_1 model), not as float32.
        #expect((50_000_000...200_000_000).contains(s.memory_estimate.weights_bytes), "\(s.memory_estimate)")
        let peak = s.peak_rss_mb * 1_048_576
        #expect(
            Double(s.memory_estimate.total_bytes) >= 0.5 * peak && Double(s.memory_estimate.total_bytes) <= 3 * peak,
            "estimate \(s.memory_estimate.total_bytes) vs measured peak \(peak)")
        // Forcing checkpointing keeps the adapter bit for bit and lowers the estimate.
        let sub = dir.appendingPathComponent("checkpointed")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let outC = sub.appendingPathComponent("a.gguf")  // the same name: the file records it as general.name
        let c = try run(
            Repo.prs,
            [
                "train", "--data", data.path, "--model", Repo.model.path, "--out", outC.path, "--epochs", "1",
                "--batch-examples", "4", "--lora-rank", "4", "--checkpointing", "on", "--json",
            ])
        #expect(c.status == 0, "\(c.stderr)")
        let sc = try JSONDecoder().decode(Summary.self, from: Data(c.stdout.utf8))
        #expect(
            sc.memory_estimate.checkpointing && sc.memory_estimate.activation_bytes < s.memory_estimate.activation_bytes
        )
        #expect(try Data(contentsOf: out) == Data(contentsOf: outC), "checkpointing changes memory, not the adapter")
    }

    @Test func badDataIsNamedByFileLineAndField() throws {
        let dir = Repo.tempDir("train-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let data = dir.appendingPathComponent("bad.jsonl")
        try """
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
        {"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}]}
        """.write(to: data, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("a.gguf")
        let r = try run(Repo.prs, ["train", "--data", data.path, "--model", Repo.model.path, "--out", out.path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("bad.jsonl:3: messages[1].role: must be system, user or assistant"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let sftAsDPO = try run(
            Repo.prs,
            [
                "train", "--objective", "dpo", "--data", try Self.sftFile(dir).path, "--model", Repo.model.path,
                "--out", out.path,
            ])
        #expect(
            sftAsDPO.status == 2 && sftAsDPO.stderr.contains("sft.jsonl:1: not a preference pair"), "\(sftAsDPO.stderr)"
        )
        let missing = try run(
            Repo.prs,
            ["train", "--data", data.path, "--model", dir.appendingPathComponent("none.gguf").path, "--out", out.path])
        #expect(missing.status == 2 && missing.stderr.contains("none.gguf: no such file"), "\(missing.stderr)")
    }
}

/// What a newcomer sees: an overview with examples, examples in every command's help, and a
/// missing default model explained.
@Suite struct HelpTests {
    @Test func helpStartsAUser() throws {
        let root = try run(Repo.prs, [])
        #expect(
            root.stdout.contains("prs train --data sft.jsonl") && root.stdout.contains("prs sample --prompts"),
            "\(root.stdout)")
        for command in [
            ["sample"], ["compare"], ["report"], ["inspect"], ["export"], ["train"], ["score"], ["merge"], ["loop"],
            ["serve"],
            ["model", "info"], ["model", "generate"], ["model", "bench"], ["model", "tokenize"], ["model", "merge"],
            ["model", "eval"],
        ] {
            let r = try run(Repo.prs, command + ["--help"])
            #expect(
                r.stdout.contains("Example:") || r.stdout.contains("Examples:"),
                "prs \(command.joined(separator: " ")) --help shows no example")
        }
        let missing = try run(
            Repo.prs,
            [
                "sample", "--prompts", Repo.root.appendingPathComponent("examples/prompts.jsonl").path,
                "--out", Repo.tempDir("nomodel").path, "--policy", "embedded:/nonexistent/m.gguf",
            ])
        #expect(missing.status == 2 && missing.stderr.contains("make demo"), "\(missing.stderr)")
    }
}

/// Without a terminal, a run logs its stage and about one progress line per 10% of the items,
/// not one per item, and nothing below notice unless --verbose.
@Suite struct QuietOutputTests {
    @Test func aRunWithoutATerminalLogsAboutOneLinePerTenthOfItsItems() throws {
        let dir = Repo.tempDir("quiet")
        defer { try? FileManager.default.removeItem(at: dir) }
        let prompts = dir.appendingPathComponent("p.jsonl")
        let lines = (1...20).map { #"{"id": "p\#($0)", "instruction": "Say the number \#($0)."}"# }
        try lines.joined(separator: "\n").write(to: prompts, atomically: true, encoding: .utf8)
        let r = try run(
            Repo.prs,
            [
                "sample", "--prompts", prompts.path, "--out", dir.appendingPathComponent("run").path,
                "--strategy", "rand", "--budget", "1", "--max-tokens", "4", "--reward", "judge",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let progress = r.stderr.split(separator: "\n").filter { $0.contains("progress") }
        #expect((2...12).contains(progress.count), "\(progress.count) progress lines for 20 items:\n\(r.stderr)")
        #expect(!r.stderr.contains(" info "), "info-level logs only with --verbose:\n\(r.stderr)")
    }
}
