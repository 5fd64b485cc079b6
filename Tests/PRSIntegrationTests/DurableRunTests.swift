import Foundation
import Testing

/// Runs that survive SIGKILL, full disks, read-only and damaged directories; shards that merge
/// into the unsharded run; exports that TRL's formats accept. All on the embedded model.
@Suite(.serialized) struct DurableRunTests {
    /// Six prompts with constraints, PRS with the model's own feedback, scored by the rubric.
    static let prompts: URL = {
        let dir = Repo.tempDir("durable-prompts")
        let lines =
            (try? String(contentsOf: Repo.root.appendingPathComponent("examples/prefs-heldout.jsonl"), encoding: .utf8))?
            .split(separator: "\n").prefix(6).joined(separator: "\n") ?? ""
        let url = dir.appendingPathComponent("p.jsonl")
        try? lines.write(to: url, atomically: true, encoding: .utf8)
        return url
    }()

    static func args(_ out: URL, _ extra: [String] = []) -> [String] {
        [
            "sample", "--prompts", prompts.path, "--out", out.path, "--strategy", "prs", "--budget", "4",
            "--max-tokens", "20",
            "--seed", "11", "--reward", "rubric", "--feedback", "self", "--concurrency", "2",
        ] + extra
    }

    static let env = ["PRS_HOME": Repo.root.path]

    /// The uninterrupted run every other run is compared with.
    static let reference: Result<URL, any Error> = Result {
        let out = Repo.tempDir("durable-ref").appendingPathComponent("run")
        let r = try run(Repo.prs, args(out), environment: env)
        guard r.status == 0 else { throw SetupError("reference run failed: \(r.stderr)") }
        return out
    }

    /// id → node texts, and the node ids of each tree (checked for duplicates).
    func texts(_ dir: URL) throws -> [String: [String]] {
        var out: [String: [String]] = [:]
        for t in try readTrees(dir) {
            let nodes = try #require(t["nodes"] as? [[String: Any]])
            let ids = nodes.compactMap { $0["id"] as? Int }
            #expect(ids == Array(0..<nodes.count), "node ids are unique and complete")
            out[t["id"] as! String] = nodes.map { $0["text"] as? String ?? "" }
        }
        return out
    }

    @Test func killedAtRandomAndResumedEqualsTheUninterruptedRun() throws {
        let reference = try Self.reference.get()
        let out = Repo.tempDir("durable-kill").appendingPathComponent("run")
        var kills = 0
        var refusedSecond = false
        var delays: [Double] = []
        while kills < 12 {
            let p = Process()
            p.executableURL = Repo.prs
            p.arguments = Self.args(out)
            p.environment = ProcessInfo.processInfo.environment.merging(Self.env) { $1 }
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let delay = Double.random(in: 0.4...1.6)
            delays.append(delay)
            Thread.sleep(forTimeInterval: delay)
            if !refusedSecond, p.isRunning {
                // A second process on the same directory is refused, naming the first.
                let second = try run(Repo.prs, Self.args(out), environment: Self.env)
                #expect(second.status == 2)
                #expect(
                    second.stderr.contains("in use by another prs process (pid \(p.processIdentifier)"),
                    "\(second.stderr)")
                refusedSecond = true
            }
            guard p.isRunning else {
                p.waitUntilExit()
                break
            }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            kills += 1
        }
        let last = try run(Repo.prs, Self.args(out), environment: Self.env)
        #expect(last.status == 0, "\(last.stderr)")
        #expect(last.stdout.contains("items: 6 done, 0 failed, 0 pending, 0 running"), "\(last.stdout)")
        #expect(
            kills >= 10, "killed \(kills) times (delays \(delays)); the run finished too early to be killed 10 times")
        #expect(refusedSecond)
        let ours = try texts(out)
        let theirs = try texts(reference)
        #expect(ours.count == 6)
        #expect(ours == theirs, "the resumed run has the same trees, node for node")
    }

    @Test func sigtermStopsCleanlyWithExitThreeAndTheRunResumes() throws {
        let reference = try Self.reference.get()
        let out = Repo.tempDir("durable-term").appendingPathComponent("run")
        let p = Process()
        p.executableURL = Repo.prs
        p.arguments = Self.args(out)
        p.environment = ProcessInfo.processInfo.environment.merging(Self.env) { $1 }
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        Thread.sleep(forTimeInterval: 2.5)
        try #require(p.isRunning, "the run finished before it could be stopped")
        kill(p.processIdentifier, SIGTERM)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 3, "\(stderr)")
        #expect(stderr.contains("run the same command to resume"), "\(stderr)")
        let again = try run(Repo.prs, Self.args(out), environment: Self.env)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try texts(out) == texts(reference))
    }

    @Test func twoShardsMergeIntoTheUnshardedRun() throws {
        let reference = try Self.reference.get()
        let dir = Repo.tempDir("durable-shards")
        let a = dir.appendingPathComponent("a")
        let b = dir.appendingPathComponent("b")
        let merged = dir.appendingPathComponent("m")
        for (shard, out) in [("0/2", a), ("1/2", b)] {
            let r = try run(Repo.prs, Self.args(out, ["--shard", shard]), environment: Self.env)
            #expect(r.status == 0, "\(r.stderr)")
        }
        let aIDs = Set(try texts(a).keys)
        let bIDs = Set(try texts(b).keys)
        #expect(aIDs.isDisjoint(with: bIDs) && aIDs.union(bIDs).count == 6 && !aIDs.isEmpty && !bIDs.isEmpty)
        let m = try run(Repo.prs, ["merge", a.path, b.path, "--out", merged.path])
        #expect(m.status == 0, "\(m.stderr)")
        #expect(try texts(merged) == texts(reference))
        // Shards of another configuration, or overlapping ones, are refused.
        let other = dir.appendingPathComponent("other")
        _ = try run(Repo.prs, Self.args(other, ["--shard", "1/2", "--max-tokens", "8"]), environment: Self.env)
        let bad = try run(Repo.prs, ["merge", a.path, other.path, "--out", dir.appendingPathComponent("bad").path])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("max_tokens: 20 vs 8"), "\(bad.stderr)")
        let overlap = try run(Repo.prs, ["merge", a.path, a.path, "--out", dir.appendingPathComponent("overlap").path])
        #expect(overlap.status != 0)
        #expect(overlap.stderr.contains("is in more than one shard"), "\(overlap.stderr)")
    }

    @Test func otherSettingsOnAnExistingRunAreRefusedUnlessForced() throws {
        let reference = try Self.reference.get()
        let copy = Repo.tempDir("durable-settings").appendingPathComponent("run")
        try FileManager.default.copyItem(at: reference, to: copy)
        let r = try run(Repo.prs, Self.args(copy, ["--temperature", "0.5"]), environment: Self.env)
        #expect(r.status == 2)
        #expect(r.stderr.contains("was started with other settings (temperature: 0.8 → 0.5)"), "\(r.stderr)")
        let same = try run(Repo.prs, Self.args(copy), environment: Self.env)
        #expect(
            same.status == 0 && same.stdout.contains("items: 6 done"),
            "resuming a finished run does nothing: \(same.stderr)")
    }

    @Test func exportsMatchTRLFormats() throws {
        let reference = try Self.reference.get()
        let dir = Repo.tempDir("durable-export")
        for format in ["sft", "dpo", "refine", "alpaca-eval", "trees"] {
            let out = dir.appendingPathComponent(format)
            let r = try run(Repo.prs, ["export", reference.path, "--format", format, "--out", out.path])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("wrote "), "\(r.stdout)")
            if format == "sft" || format == "dpo" {
                let check = try run(
                    Repo.python,
                    [
                        Repo.root.appendingPathComponent("scripts/check_trl_exports.py").path, "--format", format,
                        out.path,
                    ])
                #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
            }
        }
        let sft = try String(contentsOf: dir.appendingPathComponent("sft"), encoding: .utf8).split(separator: "\n")
        #expect(sft.count == 6, "one best answer per prompt")
        let dpo = try run(
            Repo.prs,
            [
                "export", reference.path, "--format", "dpo", "--out", dir.appendingPathComponent("dpo2").path,
                "--min-margin", "5",
            ])
        #expect(
            dpo.stdout.contains("wrote 0 dpo records")
                && dpo.stdout.contains("skipped 6 prompts: no response below the best by --min-margin"), "\(dpo.stdout)"
        )
    }

    /// `--synthetic-feedback policy` on a real run: every synthetic pair's draft gets the policy's
    /// own feedback (the tree's, or generated by the run's recorded model), the same text on a rerun;
    /// a policy that cannot be loaded is refused naming it, and nothing is written.
    @Test func syntheticPairsCarryThePolicysOwnFeedback() throws {
        let reference = try Self.reference.get()
        let dir = Repo.tempDir("durable-synthetic-feedback")
        func export(_ name: String, _ extra: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let r = try run(
                Repo.prs,
                [
                    "export", reference.path, "--format", "refine", "--pairing", "synthetic", "--synthetic-margin",
                    "0.01", "--out", dir.appendingPathComponent(name).path,
                ] + extra, environment: Self.env)
            return (r.status, r.stdout, r.stderr)
        }
        func records(_ name: String) throws -> [[String: Any]] {
            try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").map {
                try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
            }
        }
        let verifier = try export("verifier", [])
        #expect(verifier.status == 0, "\(verifier.stderr)")
        let byVerifier = try records("verifier")
        try #require(!byVerifier.isEmpty, "the reference run gives synthetic pairs: \(verifier.stdout)")
        #expect(byVerifier.allSatisfy { $0["feedback_source"] as? String == "verifier" })
        let first = try export("policy", ["--synthetic-feedback", "policy"])
        #expect(first.status == 0, "\(first.stderr)")
        let byPolicy = try records("policy")
        #expect(byPolicy.map { $0["draft"] as? String } == byVerifier.map { $0["draft"] as? String })
        for r in byPolicy {
            let text = try #require(r["feedback"] as? String, "\(r)")
            #expect(!text.isEmpty && r["feedback_source"] as? String == "self", "\(r)")
        }
        let byVerifierText = Set(byVerifier.compactMap { $0["feedback"] as? String })
        #expect(byPolicy.contains { !byVerifierText.contains($0["feedback"] as! String) }, "the model wrote them")
        _ = try export("again", ["--synthetic-feedback", "policy"])
        #expect(
            try String(contentsOf: dir.appendingPathComponent("again"), encoding: .utf8)
                == String(contentsOf: dir.appendingPathComponent("policy"), encoding: .utf8), "seeded: a rerun agrees")
        let bad = try export("bad", ["--synthetic-feedback", "policy", "--policy", "embedded:/nonexistent/m.gguf"])
        #expect(bad.status == 2 && bad.stderr.contains("/nonexistent/m.gguf"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("bad").path))
    }

    @Test func aDamagedStoreIsAClearErrorAndIsLeftAlone() throws {
        let dir = Repo.tempDir("durable-damaged").appendingPathComponent("run")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let db = dir.appendingPathComponent("run.sqlite")
        let garbage = Data(repeating: 0x5A, count: 8192)
        try garbage.write(to: db)
        let r = try run(Repo.prs, Self.args(dir), environment: Self.env)
        #expect(r.status == 2)
        #expect(r.stderr.contains("run.sqlite: cannot use the run store: it is not an SQLite database"), "\(r.stderr)")
        #expect(try Data(contentsOf: db) == garbage)
    }

    @Test func aFullDiskStopsWithACleanErrorAndTheRunResumesOnceThereIsRoom() throws {
        let mount = Repo.tempDir("durable-full")
        let m = try run(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=192k", "tmpfs", mount.path])
        try #require(m.status == 0, "mounting a small tmpfs needs root (CI runs as root): \(m.stderr)")
        defer { _ = try? run(URL(fileURLWithPath: "/bin/umount"), ["-l", mount.path]) }
        let out = mount.appendingPathComponent("run")
        let r = try run(Repo.prs, Self.args(out, ["--strategy", "rand", "--budget", "2"]), environment: Self.env)
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("the disk is full"), "\(r.stderr)")
        // Room again: the same command resumes and finishes every prompt.
        _ = try run(URL(fileURLWithPath: "/bin/mount"), ["-o", "remount,size=64m", mount.path])
        let again = try run(Repo.prs, Self.args(out, ["--strategy", "rand", "--budget", "2"]), environment: Self.env)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("items: 6 done"), "\(again.stdout)")
    }

    @Test func aReadOnlyRunDirectoryIsAClearErrorAndIsLeftAlone() throws {
        let reference = try Self.reference.get()
        let copy = Repo.tempDir("durable-ro").appendingPathComponent("run")
        try FileManager.default.copyItem(at: reference, to: copy)
        let before = try FileManager.default.contentsOfDirectory(atPath: copy.path).sorted()
        let db = try Data(contentsOf: copy.appendingPathComponent("run.sqlite"))
        let bind = try run(URL(fileURLWithPath: "/bin/mount"), ["--bind", "-o", "ro", copy.path, copy.path])
        try #require(bind.status == 0, "a read-only bind mount needs root (CI runs as root): \(bind.stderr)")
        defer { _ = try? run(URL(fileURLWithPath: "/bin/umount"), ["-l", copy.path]) }
        _ = try run(URL(fileURLWithPath: "/bin/mount"), ["-o", "remount,bind,ro", copy.path])
        let r = try run(Repo.prs, Self.args(copy), environment: Self.env)
        #expect(r.status == 2)
        #expect(
            r.stderr.contains("cannot open the lock file") && r.stderr.contains("Read-only file system"), "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: copy.path).sorted() == before)
        #expect(try Data(contentsOf: copy.appendingPathComponent("run.sqlite")) == db)
    }
}
