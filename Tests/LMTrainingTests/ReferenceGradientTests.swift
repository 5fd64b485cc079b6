import Foundation
import GGUF
import LMEngine
import LMTraining
import Testing

/// The project's paths and the reference tools (scripts/setup.sh installs them).
enum Project {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let smolLM2 = root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let python = root.appendingPathComponent(".venv/bin/python").path
    /// PyTorch, transformers and PEFT (scripts/setup.sh --tests installs them).
    static let torchPython = root.appendingPathComponent(".venv-bench/bin/python").path

    /// Runs a reference script with the venv's Python (or `interpreter`); fails with its output when it fails.
    static func python(_ script: String, _ args: [String], interpreter: String = python) throws -> String {
        guard FileManager.default.isExecutableFile(atPath: interpreter) else {
            throw TrainingError("the reference tools are not installed: run scripts/setup.sh (make test does)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: interpreter)
        p.arguments = [root.appendingPathComponent(script).path] + args
        // Standard output is the answer; llama.cpp's notices go to standard error, kept in a file.
        let out = Pipe()
        let errPath = FileManager.default.temporaryDirectory.appendingPathComponent("prs-ref-\(UUID()).err")
        FileManager.default.createFile(atPath: errPath.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: errPath) }
        p.standardOutput = out
        p.standardError = try FileHandle(forWritingTo: errPath)
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            let err = (try? String(contentsOf: errPath, encoding: .utf8)) ?? ""
            throw TrainingError("\(script) failed (status \(p.terminationStatus)): \((text + err).suffix(2000))")
        }
        return text
    }

    static func temporaryDirectory(_ name: String) throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("prs-\(name)-\(UUID())")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// Three short chat examples rendered with SmolLM2's template.
    static func examples(_ llama: LlamaModel) throws -> [TrainingExample] {
        let template = try ChatTemplate.recognise(llama.file.content["tokenizer.chat_template"]!.string!)
        let tok = ExampleTokenizer(template: template, tokenizer: llama.tokenizer, maxLength: 256)
        let pairs = [
            ("Name a colour.", "Ahoy! Blue, arr."), ("What do bees make?", "Ahoy! Honey, arr."),
            ("How many legs has a spider?", "Ahoy! Eight legs, matey."),
        ]
        return try pairs.enumerated().map { i, p in
            try tok.example(
                .conversation([
                    TemplateMessage(role: "user", content: p.0), TemplateMessage(role: "assistant", content: p.1),
                ]),
                weight: i == 2 ? 2 : 1, source: "test:\(i + 1)")
        }
    }
}

/// The whole model's LoRA gradients for one batch of the real SmolLM2, and the loss over 10
/// AdamW steps, against an independent implementation (numpy + HIPS autograd in float64,
/// scripts/reference/train_reference.py) starting from the same adapter.
/// Tolerances: each tensor's gradient within 2e-3 relative L2 error (prs computes in float32,
/// the reference in float64, over 30 layers); the loss within 1e-4 relative at the start and
/// 1e-3 after each of the 10 steps.
@Suite(.serialized) struct ReferenceGradientTests {
    @Test func loraGradientsAndTenAdamWStepsMatchAnAutogradReference() throws {
        let llama = try LlamaModel(path: Project.smolLM2)
        let examples = try Project.examples(llama)
        BLASThreads.set(2)
        let base: ParameterStore<Float> = try BaseWeights.load(llama, gradients: false)
        let settings = LoRASettings(rank: 4, alpha: 8)
        let model = TrainingModel(shape: BaseWeights.shape(llama.config), base: base, lora: settings, seed: 3)
        let lora = model.lora!
        var rng = SplitMix64(seed: 17)
        for e in lora.entries where e.name.hasSuffix(".lora_b") {
            lora.set(e.name, (0..<e.count).map { _ in Float((rng.uniform() * 2 - 1) * 0.02) })
        }
        let dir = try Project.temporaryDirectory("train-ref")
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = dir.appendingPathComponent("adapter.gguf").path
        try ModelFiles.writeAdapter(lora, settings: settings, architecture: "llama", baseSHA256: "test", to: adapter)
        struct Seq: Encodable {
            var tokens: [Int32]
            var scored: [Bool]
            var weight: Double
        }
        struct Batch: Encodable { var sequences: [Seq] }
        let seqs: [Seq] = examples.map { e in
            guard case .sft(let s) = e.body else { fatalError() }
            return Seq(tokens: s.tokens, scored: s.scored, weight: e.weight)
        }
        let batchPath = dir.appendingPathComponent("batch.json")
        try JSONEncoder().encode(Batch(sequences: seqs)).write(to: batchPath)
        _ = try Project.python(
            "scripts/reference/train_reference.py",
            [Project.smolLM2, adapter, batchPath.path, dir.path, "--steps", "10", "--lr", "1e-3", "--clip", "1.0"])
        struct Result: Decodable {
            var loss: Double
            var losses: [Double]
            var names: [String]
        }
        let ref = try JSONDecoder().decode(
            Result.self, from: Data(contentsOf: dir.appendingPathComponent("result.json")))
        let refGrads = try Data(contentsOf: dir.appendingPathComponent("grads.bin"))

        // Gradient at the adapter: the SFT loss (weighted mean NLL of the answer tokens).
        var batch = PackedBatch()
        var weights: [Double] = []
        for s in seqs {
            let before = batch.lossRows.count
            batch.append(s.tokens, scored: s.scored)
            weights += Array(repeating: s.weight, count: batch.lossRows.count - before)
        }
        let total = weights.reduce(0, +)
        lora.zeroGradients()
        let logp = model.forward(batch)
        let loss = -zip(logp, weights).reduce(0.0) { $0 + Double($1.0) * $1.1 } / total
        model.backward(weights.map { Float(-$0 / total) })
        #expect(abs(loss - ref.loss) <= 1e-4 * abs(ref.loss), "loss \(loss) against the reference's \(ref.loss)")
        var offset = 0
        var worst = 0.0
        for name in ref.names {
            let ours = lora.gradient(name)!
            let theirs: [Float] = refGrads.withUnsafeBytes { raw in
                (0..<ours.count).map { raw.loadUnaligned(fromByteOffset: (offset + $0) * 4, as: Float.self) }
            }
            offset += ours.count
            var diff = 0.0
            var norm = 0.0
            for (a, b) in zip(ours, theirs) {
                diff += Double(a - b) * Double(a - b)
                norm += Double(b) * Double(b)
            }
            let rel = (diff / max(norm, 1e-30)).squareRoot()
            worst = max(worst, rel)
            #expect(rel <= 2e-3, "\(name): gradient relative error \(rel)")
        }
        #expect(offset * 4 == refGrads.count, "every adapter tensor compared")
        print("LoRA gradients: worst relative L2 error \(worst) over \(ref.names.count) tensors")

        // Ten AdamW steps through the trainer (one step an epoch: every example in each).
        var ts = TrainSettings()
        ts.lora = settings
        ts.epochs = 10
        ts.batchTokens = 1 << 20
        ts.learningRate = 1e-3
        ts.schedule = .constant
        ts.warmup = 0
        ts.maxGradNorm = 1
        ts.checkpointEvery = 0
        let trainer = try Trainer(model: model, examples: examples, settings: ts)
        try trainer.run(checkpoint: nil, fingerprint: "test")
        let losses = trainer.log.map(\.loss)
        #expect(losses.count == 10)
        for (i, (a, b)) in zip(losses, ref.losses).enumerated() {
            #expect(abs(a - b) <= 1e-3 * abs(b), "step \(i + 1): loss \(a) against the reference's \(b)")
        }
        #expect(losses.last! < losses.first! * 0.8, "ten steps lower the loss")
    }
}
