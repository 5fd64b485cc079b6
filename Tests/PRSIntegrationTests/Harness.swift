import Foundation
import Testing

/// Paths of the repository, the built `prs` and the reference tools set up by scripts/setup.sh.
enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let python = root.appendingPathComponent(".venv/bin/python")
    static let model = root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")

    /// The `prs` built beside this test bundle (same configuration), or `PRS_BIN`.
    static var prs: URL {
        if let bin = ProcessInfo.processInfo.environment["PRS_BIN"] { return URL(fileURLWithPath: bin) }
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let u = candidate.appendingPathComponent("prs")
            if FileManager.default.isExecutableFile(atPath: u.path) { return u }
        }
        return root.appendingPathComponent(".build/release/prs")
    }

    static func tempDir(_ name: String) -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent(
            "prs-it-\(name)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }
}

/// The result of running a command to completion.
struct Ran {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Starts `prs` with `args`, waits (up to 10 minutes) until `ready` holds, sends `signal` and
/// returns the exit status; expects the process to be still running when `ready` holds.
func startThenSignal(_ args: [String], signal: Int32, when ready: () -> Bool) throws -> Int32 {
    let p = Process()
    p.executableURL = Repo.prs
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    let deadline = Date().addingTimeInterval(600)
    while Date() < deadline, p.isRunning, !ready() { Thread.sleep(forTimeInterval: 0.05) }
    #expect(p.isRunning, "\(args.first ?? "prs") ended before it could be interrupted")
    kill(p.processIdentifier, signal)
    p.waitUntilExit()
    return p.terminationStatus
}

/// Runs `executable` with `arguments`, capturing output.
func run(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws -> Ran {
    let p = Process()
    p.executableURL = executable
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    p.environment = env
    // Output goes to files, not pipes: a server started meanwhile by another test would
    // inherit a pipe's write end and the read would never see its end.
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("prs-run-\(UUID().uuidString)")
    let outURL = base.appendingPathExtension("out")
    let errURL = base.appendingPathExtension("err")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    defer {
        try? FileManager.default.removeItem(at: outURL)
        try? FileManager.default.removeItem(at: errURL)
    }
    let out = try FileHandle(forWritingTo: outURL)
    let err = try FileHandle(forWritingTo: errURL)
    p.standardOutput = out
    p.standardError = err
    try p.run()
    p.waitUntilExit()
    try? out.close()
    try? err.close()
    let o = (try? Data(contentsOf: outURL)) ?? Data()
    let e = (try? Data(contentsOf: errURL)) ?? Data()
    return Ran(
        status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
        stderr: String(decoding: e, as: UTF8.self))
}

/// A llama.cpp OpenAI-compatible server (llama-cpp-python's) with SmolLM2-135M-Instruct on a
/// loopback port, started once for the test process and stopped when it exits.
enum LlamaServer {
    static let baseURL: Result<String, any Error> = Result {
        guard FileManager.default.isExecutableFile(atPath: Repo.python.path),
            FileManager.default.fileExists(atPath: Repo.model.path)
        else {
            throw SetupError("the reference server is not installed: run scripts/setup.sh (make test does)")
        }
        let port = 20000 + Int.random(in: 0..<20000)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("prs-llama-server-\(port).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        // The server exits by itself when this test process is gone, however it ended.
        let launcher = """
            import os, sys, threading, time, runpy
            parent = int(sys.argv[1])
            def watch():
                while True:
                    try: os.kill(parent, 0)
                    except OSError: os._exit(0)
                    time.sleep(1)
            threading.Thread(target=watch, daemon=True).start()
            sys.argv = ["llama_cpp.server"] + sys.argv[2:]
            runpy.run_module("llama_cpp.server", run_name="__main__")
            """
        let p = Process()
        p.executableURL = Repo.python
        p.arguments = [
            "-c", launcher, "\(getpid())", "--model", Repo.model.path, "--host", "127.0.0.1",
            "--port", "\(port)", "--n_ctx", "4096", "--n_threads", "1", "--n_threads_batch", "1",
        ]
        let handle = try FileHandle(forWritingTo: log)
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let url = "http://127.0.0.1:\(port)/v1"
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if !p.isRunning { throw SetupError("the llama.cpp server exited at start; see \(log.path)") }
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if text.contains("Uvicorn running on") { return url }
            Thread.sleep(forTimeInterval: 0.3)
        }
        throw SetupError("the llama.cpp server did not start on \(url) within 120 s; see \(log.path)")
    }

    static func url() throws -> String { try baseURL.get() }
}

struct SetupError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// The trees of a run directory, as JSON objects.
func readTrees(_ dir: URL) throws -> [[String: Any]] {
    let text = try String(contentsOf: dir.appendingPathComponent("trees.jsonl"), encoding: .utf8)
    return try text.split(separator: "\n").map { line in
        guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw SetupError("not an object: \(line)")
        }
        return o
    }
}
