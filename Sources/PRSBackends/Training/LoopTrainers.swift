import Foundation
import LMTraining
import PRSCore

/// The loop's in-process trainer: LoRA on the base GGUF with LMTraining, each iteration's
/// adapter written to `ITER/adapter.gguf` (llama.cpp's LoRA GGUF) with its loss log beside it.
/// SFT trains on the SFT and refinement files; DPO on the preference pairs. An interrupted job
/// resumes from its checkpoint when given again.
public struct EmbeddedPolicyTrainer: PolicyTrainer {
    public var model: String
    public var settings: TrainSettings
    public var template: String?
    public var maxLength: Int
    public var templates: PromptTemplates

    public init(
        model: String, settings: TrainSettings, template: String? = nil, maxLength: Int = 1024,
        templates: PromptTemplates = .standard
    ) {
        self.model = model
        self.settings = settings
        self.template = template
        self.maxLength = maxLength
        self.templates = templates
    }

    public var identity: String {
        "embedded:" + settings.fingerprint + "|max_length=\(maxLength)|template=\(template ?? "model")"
    }

    public func train(
        _ job: TrainingJob, onProgress: @escaping @Sendable (TrainingProgress) -> Void
    ) async throws -> TrainedPolicy {
        var s = settings
        s.seed = job.seed
        let data = s.objective == .dpo ? job.dpo : job.sft + job.refine
        guard !data.isEmpty else {
            throw TrainingInputError(
                description:
                    "\(job.directory): no "
                    + "\(s.objective == .dpo ? "preference pairs (select.dpo: best-worst)" : "SFT data") to train on"
            )
        }
        let out = URL(fileURLWithPath: job.directory).appendingPathComponent("adapter.gguf").path
        var j = EmbeddedTrainingJob(data: data, model: model, out: out)
        j.initAdapter = job.initAdapter
        j.settings = s
        j.template = template
        j.maxLength = maxLength
        j.templates = templates
        j.log = URL(fileURLWithPath: job.directory).appendingPathComponent("train.jsonl").path
        let stop = StopFlag()
        let job = j
        let result: EmbeddedTrainingResult = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // Training is long and synchronous: it gets a thread of its own, not one of the pool's.
                let thread = Thread {
                    do {
                        let r = try EmbeddedTraining.run(
                            job, shouldStop: { stop.isSet },
                            onStep: { r in
                                onProgress(
                                    TrainingProgress(
                                        step: r.step, steps: r.steps, loss: r.loss, elapsedSeconds: r.elapsedSeconds))
                            })
                        continuation.resume(returning: r)
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.stackSize = 8 << 20
                thread.start()
            }
        } onCancel: {
            stop.set()
        }
        if result.examples == 0 { throw TrainingInputError(description: "\(job.out): no examples were trained on") }
        return TrainedPolicy(
            policy: .embedded(path: model, adapters: [out]), adapter: out, examples: result.examples,
            losses: result.log.map(\.loss), tokens: result.log.map(\.tokens).reduce(0, +))
    }
}

/// An external trainer: a shell command run once per iteration, given the data, the base and
/// the policy to start from, that leaves a model or adapter at `{out}` or prints the new
/// policy's spec on a line `policy: SPEC` (e.g. `openai:http://vllm:8000/v1#iter-2`, a LoRA
/// module a vLLM cluster serves).
///
/// Placeholders, shell-quoted: `{data}` (a directory with `sft.jsonl`, `refine.jsonl` and
/// `dpo.jsonl` holding what to train on), `{base}` (the base model), `{init}` (the adapter to
/// start from, or empty), `{out}` (`ITER/adapter.gguf`), `{dir}` (the iteration's directory).
/// The same are in the environment as `PRS_DATA`, `PRS_BASE`, `PRS_INIT`, `PRS_OUT`, `PRS_DIR`,
/// with `PRS_INIT_POLICY`, `PRS_CHAIN`, `PRS_ITERATION`, `PRS_SEED` and `PRS_BIN` (this prs). Lines the command prints
/// in `prs train`'s log format (JSON with `step`, `steps`, `loss`) are shown as progress and kept
/// as the loss curve (else those of `{dir}/train.jsonl`, where `prs train --log` writes them).
/// Its output goes to `ITER/trainer.log`.
public struct CommandPolicyTrainer: PolicyTrainer {
    public var command: String
    /// The base model as `{base}` shows it (a GGUF path for an embedded policy).
    public var baseModel: String

    public init(command: String, baseModel: String) {
        self.command = command
        self.baseModel = baseModel
    }

    public var identity: String { "command:" + command }

    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// Concatenates a kind's files into one, so the command sees one file per kind.
    static func combine(_ files: [String], into url: URL) throws {
        var data = Data()
        for f in files {
            guard let d = FileManager.default.contents(atPath: f) else {
                throw TrainingInputError(description: "\(f): cannot read the selected data")
            }
            data += d
            if let last = d.last, last != UInt8(ascii: "\n") { data.append(UInt8(ascii: "\n")) }
        }
        try data.write(to: url, options: .atomic)
    }

    public func train(
        _ job: TrainingJob, onProgress: @escaping @Sendable (TrainingProgress) -> Void
    ) async throws -> TrainedPolicy {
        let dir = URL(fileURLWithPath: job.directory)
        let data = dir.appendingPathComponent("train-data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try Self.combine(job.sft, into: data.appendingPathComponent("sft.jsonl"))
        try Self.combine(job.refine, into: data.appendingPathComponent("refine.jsonl"))
        try Self.combine(job.dpo, into: data.appendingPathComponent("dpo.jsonl"))
        let out = dir.appendingPathComponent("adapter.gguf")
        try? FileManager.default.removeItem(at: out)
        let fills = [
            "{data}": data.path, "{base}": baseModel, "{init}": job.initAdapter ?? "", "{out}": out.path,
            "{dir}": dir.path,
        ]
        var line = command
        for (k, v) in fills { line = line.replacingOccurrences(of: k, with: Self.quote(v)) }
        var env = ProcessInfo.processInfo.environment
        env["PRS_DATA"] = data.path
        env["PRS_BASE"] = baseModel
        env["PRS_INIT"] = job.initAdapter ?? ""
        env["PRS_INIT_POLICY"] = job.initPolicy?.description ?? ""
        env["PRS_OUT"] = out.path
        env["PRS_DIR"] = dir.path
        env["PRS_CHAIN"] = job.chain
        env["PRS_ITERATION"] = "\(job.iteration)"
        env["PRS_SEED"] = "\(job.seed)"
        // This prs, for commands that call it back (`prs model export-adapter` to convert a PEFT adapter).
        if env["PRS_BIN"] == nil { env["PRS_BIN"] = Bundle.main.executableURL?.path ?? CommandLine.arguments[0] }
        let logURL = dir.appendingPathComponent("trainer.log")
        FileManager.default.createFile(atPath: logURL.path, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logURL.path) else {
            throw TrainingInputError(description: "\(logURL.path): cannot write the trainer's log")
        }
        defer { try? log.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", line]
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = log
        let lines = LineCollector()
        let status: Int32 = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let reader = Thread {
                    let handle = pipe.fileHandleForReading
                    while true {
                        let chunk = handle.availableData
                        if chunk.isEmpty { break }
                        log.write(chunk)
                        for l in lines.add(chunk) { Self.progress(l, onProgress) }
                    }
                    process.waitUntilExit()
                    continuation.resume(returning: process.terminationStatus)
                }
                do { try process.run() } catch {
                    continuation.resume(
                        throwing: TrainingInputError(description: "trainer command: cannot start /bin/sh: \(error)"))
                    return
                }
                reader.start()
            }
        } onCancel: {
            if process.isRunning { process.terminate() }
        }
        if Task.isCancelled { throw CancellationError() }
        guard status == 0 else {
            let tail = (try? String(contentsOf: logURL, encoding: .utf8)).map { String($0.suffix(600)) } ?? ""
            throw TrainingInputError(
                description: "trainer command exited with status \(status) (log: \(logURL.path)): \(tail)")
        }
        let all = lines.all
        var losses = all.compactMap { Self.step($0)?.loss }
        if losses.isEmpty, let log = try? String(contentsOf: dir.appendingPathComponent("train.jsonl"), encoding: .utf8)
        {
            losses = log.split(separator: "\n").compactMap { Self.step(String($0))?.loss }
        }
        let examples = [job.sft, job.refine, job.dpo].flatMap { $0 }.reduce(0) { n, f in
            n + ((try? String(contentsOfFile: f, encoding: .utf8))?.split(separator: "\n").count ?? 0)
        }
        if let spec = all.last(where: { $0.hasPrefix("policy:") }) {
            let text = spec.dropFirst("policy:".count).trimmingCharacters(in: .whitespaces)
            let policy: PolicySpec
            do { policy = try PolicySpec.parse(text) } catch let e as SpecError {
                throw TrainingInputError(
                    description: "trainer command printed \"\(spec)\": \(e.description) (log: \(logURL.path))")
            }
            return TrainedPolicy(
                policy: policy, adapter: FileManager.default.fileExists(atPath: out.path) ? out.path : nil,
                examples: examples, losses: losses)
        }
        guard FileManager.default.fileExists(atPath: out.path) else {
            throw TrainingInputError(
                description:
                    "trainer command finished but left no \(out.path) and printed no 'policy: SPEC' line (log: "
                    + "\(logURL.path))"
            )
        }
        let type: String?
        do { type = try ModelFiles.generalType(ofFile: out.path) } catch {
            throw TrainingInputError(description: "\(out.path): the trainer's output is not a GGUF file: \(error)")
        }
        if type == "adapter" {
            return TrainedPolicy(
                policy: .embedded(path: baseModel, adapters: [out.path]), adapter: out.path, examples: examples,
                losses: losses)
        }
        return TrainedPolicy(policy: .embedded(path: out.path), examples: examples, losses: losses)
    }

    static func step(_ line: String) -> (step: Int, steps: Int, loss: Double)? {
        guard line.hasPrefix("{"), let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
            let step = o["step"] as? Int, let loss = (o["loss"] as? NSNumber)?.doubleValue
        else { return nil }
        return (step, (o["steps"] as? Int) ?? step, loss)
    }

    static func progress(_ line: String, _ onProgress: @Sendable (TrainingProgress) -> Void) {
        if let s = step(line) {
            onProgress(TrainingProgress(step: s.step, steps: s.steps, loss: s.loss, elapsedSeconds: 0))
        }
    }
}

/// A flag set from a signal or cancellation handler and read by synchronous work (training) between steps.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    public init() {}
    public func set() {
        lock.lock()
        value = true
        lock.unlock()
    }
    public var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

/// Splits a byte stream into lines as it arrives.
final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var pending = Data()
    private var lines: [String] = []

    func add(_ chunk: Data) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        pending += chunk
        var out: [String] = []
        while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
            out.append(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
            pending = Data(pending[pending.index(after: nl)...])
        }
        lines += out
        return out
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return pending.isEmpty ? lines : lines + [String(decoding: pending, as: UTF8.self)]
    }
}
