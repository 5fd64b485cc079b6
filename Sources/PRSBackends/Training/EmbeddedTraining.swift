import Foundation
import LMEngine
import LMTraining
import PRSCore

/// Fine-tunes a GGUF policy in-process (LMTraining) on files in TRL's formats and prs's
/// `refine.jsonl`, and writes a LoRA adapter llama.cpp loads (or, fully fine-tuned, a model).
public struct EmbeddedTrainingJob: Sendable {
    public var data: [String]
    public var model: String
    public var out: String
    /// An adapter to start from (LoRA only).
    public var initAdapter: String?
    public var settings = TrainSettings()
    /// Chat template by name; nil takes the model's.
    public var template: String?
    public var maxLength = 1024
    /// Train on every token, not only the answers'.
    public var allTokens = false
    /// Full fine-tuning: the matrices' type in the written model.
    public var fullType = ModelFiles.WrittenType.f16
    /// The refinement request's template for `refine.jsonl` records.
    public var templates = PromptTemplates.standard
    /// The JSONL loss log; nil puts it beside `out` (`A.gguf` → `A.train.jsonl`).
    public var log: String?
    /// The memory the run may take; nil: what the machine has available when it starts.
    public var memoryLimitBytes: Int?

    public init(data: [String], model: String, out: String) {
        self.data = data
        self.model = model
        self.out = out
    }

    public var logPath: String { log ?? (out.hasSuffix(".gguf") ? String(out.dropLast(5)) : out) + ".train.jsonl" }
    public var checkpointPath: String { out + ".ckpt" }
}

/// What a training run did.
public struct EmbeddedTrainingResult: Sendable {
    public var examples: Int
    public var validationExamples: Int
    public var steps: Int
    public var resumedAt: Int
    public var finalLoss: Double?
    public var validationLoss: Double?
    public var seconds: Double
    public var out: String
    public var log: [StepReport]
    /// What the run was expected to hold in memory, worked out before it started.
    public var estimate: MemoryEstimate
}

/// A problem with the job's inputs (exit 2) rather than with training itself.
public struct TrainingInputError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

public enum EmbeddedTraining {
    /// Reads `refine.jsonl` records (`prompt`, `preference`, `draft`, `feedback`, `improved`) as
    /// SFT conversations: the refinement request as prs sends it, answered by the improved text.
    public static func refineConverter(_ templates: PromptTemplates) -> TrainingDataReader.Converter {
        { object, location in
            guard object["draft"] != nil || object["improved"] != nil else { return nil }
            func string(_ key: String, optional: Bool = false) throws -> String? {
                guard let v = object[key], !(v is NSNull) else {
                    if optional { return nil }
                    throw TrainingError(
                        "\(location): \(key): missing (a refine.jsonl record needs prompt, preference, draft, improved)"
                    )
                }
                guard let s = v as? String else { throw TrainingError("\(location): \(key): must be a string") }
                return s
            }
            let item = PromptItem(
                id: (object["id"] as? String) ?? location, instruction: try string("prompt")!,
                preference: Preference(text: try string("preference", optional: true) ?? ""))
            let request = templates.refineMessages(
                item, draft: try string("draft")!, feedback: try string("feedback", optional: true))
            let messages = request.map { TemplateMessage(role: $0.role.rawValue, content: $0.content) }
            return .conversation(messages + [TemplateMessage(role: "assistant", content: try string("improved")!)])
        }
    }

    /// The chat template by name, or the model's own (its architecture's for files without one,
    /// as the engine renders prompts: Gemma 3's carry none).
    public static func template(_ name: String?, _ model: LlamaModel) throws -> ChatTemplate {
        if let name {
            guard let t = ChatTemplate.named(name) else {
                throw TrainingInputError(
                    description: "--template \(name): expected one of \(ChatTemplate.names.joined(separator: ", "))")
            }
            return t
        }
        do { return try ChatTemplate.of(model) } catch { throw TrainingInputError(description: "\(error)") }
    }

    /// Every file's examples, tokenized as the engine renders them.
    public static func examples(
        _ files: [String], model: LlamaModel, template: ChatTemplate, maxLength: Int, allTokens: Bool,
        templates: PromptTemplates
    ) throws -> [TrainingExample] {
        let reader = TrainingDataReader(convert: refineConverter(templates))
        var tokenizer = ExampleTokenizer(
            template: template, tokenizer: model.tokenizer, maxLength: min(maxLength, model.config.contextLength))
        tokenizer.allTokens = allTokens
        var out: [TrainingExample] = []
        do {
            for f in files {
                for (raw, weight, source) in try reader.read(f) {
                    out.append(try tokenizer.example(raw, weight: weight, source: source))
                }
            }
        } catch let e as TrainingError { throw TrainingInputError(description: e.description) }
        return out
    }

    /// Trains and writes `job.out`; resumes from `job.checkpointPath` when a run of the same job was stopped.
    public static func run(
        _ job: EmbeddedTrainingJob, shouldStop: @escaping () -> Bool = { false },
        onStart: (Trainer, MemoryEstimate) -> Void = { _, _ in }, onStep: (StepReport) -> Void = { _ in }
    ) throws -> EmbeddedTrainingResult {
        let started = Date()
        let llama: LlamaModel
        do { llama = try LlamaModel(path: job.model) } catch { throw TrainingInputError(description: "\(error)") }
        let template = try template(job.template, llama)
        let examples = try examples(
            job.data, model: llama, template: template, maxLength: job.maxLength, allTokens: job.allTokens,
            templates: job.templates)
        BLASThreads.set(job.settings.threads)
        let estimate = try checkMemory(job, llama, examples)
        let model: TrainingModel<Float>
        do {
            model = try BaseWeights.model(
                llama, lora: job.settings.lora, seed: job.settings.seed, bf16: job.settings.precision == .bf16,
                threads: job.settings.threads, quantized: !denseBase, checkpointing: estimate.checkpointing)
        } catch let e as TrainingError { throw TrainingInputError(description: e.description) }
        let base = model.base
        var fingerprint = "base:" + (try SHA256.file(job.model))
        for f in job.data { fingerprint += "|data:" + (try SHA256.file(f)) }
        if let initPath = job.initAdapter {
            guard let settings = job.settings.lora, let store = model.lora else {
                throw TrainingInputError(
                    description: "--init \(initPath): continuing from an adapter needs LoRA training (not --full)")
            }
            let adapter: LoRAAdapter
            do { adapter = try LoRAAdapter(path: initPath, model: llama) } catch {
                throw TrainingInputError(description: "--init: \(error)")
            }
            try load(adapter, into: store, settings: settings, layers: llama.config.layers)
            fingerprint += "|init:" + adapter.identity
        }
        let trainer: Trainer
        do { trainer = try Trainer(model: model, examples: examples, settings: job.settings) } catch let e
            as TrainingError
        {
            throw TrainingInputError(description: e.description)
        }
        onStart(trainer, estimate)
        let resumedAt = FileManager.default.fileExists(atPath: job.checkpointPath) ? -1 : 0
        try trainer.run(
            checkpoint: job.checkpointPath, fingerprint: fingerprint, logPath: job.logPath, shouldStop: shouldStop,
            onStep: onStep)
        let sha = String(fingerprint.dropFirst(5).prefix(64))
        if let settings = job.settings.lora, let store = model.lora {
            try ModelFiles.writeAdapter(
                store, settings: settings, architecture: llama.config.architecture, baseSHA256: sha,
                extra: ModelFiles.trainingMetadata(
                    job.settings, data: job.data.map { URL(fileURLWithPath: $0).lastPathComponent }),
                to: job.out)
        } else {
            var replace: [String: [Float]] = [:]
            for e in base.entries { replace[e.name] = base.array(e.name) }
            try ModelFiles.writeModel(base: llama.file, replace: replace, type: job.fullType, to: job.out)
        }
        try? FileManager.default.removeItem(atPath: job.checkpointPath)
        let last = trainer.log.last
        return EmbeddedTrainingResult(
            examples: trainer.train.count, validationExamples: trainer.validation.count, steps: trainer.plan.count,
            resumedAt: resumedAt, finalLoss: last?.loss,
            validationLoss: trainer.log.last(where: { $0.valLoss != nil })?.valLoss,
            seconds: Date().timeIntervalSince(started), out: job.out, log: trainer.log, estimate: estimate)
    }

    /// `PRS_TRAIN_DENSE=1` trains LoRA on float32 copies of the frozen weights, as prs did before
    /// it read them from the file's blocks (for `make bench-train`'s comparison; ~4 bytes a parameter).
    static var denseBase: Bool { ProcessInfo.processInfo.environment["PRS_TRAIN_DENSE"] == "1" }

    /// The largest forward pass the job makes: its tokens and its longest sequence. A pass packs
    /// a step's examples up to `microBatchTokens` (an example longer than that alone), and a step
    /// holds at most `batchExamples` examples.
    static func largestPass(_ examples: [TrainingExample], settings: TrainSettings) -> (rows: Int, longest: Int) {
        var longest = 1
        for e in examples {
            switch e.body {
            case .sft(let s): longest = max(longest, s.tokens.count)
            case .preference(let c, let r): longest = max(longest, c.tokens.count, r.tokens.count)
            }
        }
        let counts = examples.map(\.tokenCount).sorted(by: >)
        let step = counts.prefix(max(1, settings.batchExamples)).reduce(0, +)
        return (max(counts.first ?? 1, min(settings.microBatchTokens, step)), longest)
    }

    /// The run's memory estimate; refused (naming the figures and what would fit) when it is
    /// over the job's limit or the memory this machine has available.
    public static func checkMemory(
        _ job: EmbeddedTrainingJob, _ llama: LlamaModel, _ examples: [TrainingExample]
    ) throws -> MemoryEstimate {
        let pass = largestPass(examples, settings: job.settings)
        let estimate = MemoryEstimate.of(
            llama, settings: job.settings, rows: pass.rows, longest: pass.longest, denseBase: denseBase)
        let limit = job.memoryLimitBytes ?? SystemMemory.availableBytes()
        guard let limit, estimate.totalBytes > limit else { return estimate }
        var fits: [String] = []
        var settings = job.settings
        if !estimate.checkpointing {
            settings.checkpointing = .on
            let e = MemoryEstimate.of(
                llama, settings: settings, rows: pass.rows, longest: pass.longest, denseBase: denseBase)
            fits.append("--checkpointing on (\(String(format: "%.2f", Double(e.totalBytes) / 1e9)) GB)")
        }
        var tokens = job.settings.microBatchTokens / 2
        while tokens >= 64 {
            var s = settings
            s.microBatchTokens = tokens
            let p = largestPass(examples, settings: s)
            let e = MemoryEstimate.of(llama, settings: s, rows: p.rows, longest: p.longest, denseBase: denseBase)
            if e.totalBytes <= limit || tokens < 128 {
                let extra = settings.checkpointing == .on && !estimate.checkpointing ? " with --checkpointing on" : ""
                fits.append(
                    "--micro-batch-tokens \(tokens)\(extra) (\(String(format: "%.2f", Double(e.totalBytes) / 1e9)) GB)")
                break
            }
            tokens /= 2
        }
        let source = job.memoryLimitBytes != nil ? "the limit given (--max-memory)" : "this machine's available memory"
        throw TrainingInputError(
            description: "\(job.model): training would take about \(estimate.summary), more than \(source), "
                + "\(String(format: "%.2f", Double(limit) / 1e9)) GB. Options that lower it: "
                + "\(fits.joined(separator: "; "))"
                + (job.settings.lora == nil ? "; LoRA instead of --full (frozen weights stay quantized)" : ""))
    }

    /// Copies an adapter's A and B into a LoRA parameter store of the same rank and targets.
    static func load(
        _ adapter: LoRAAdapter, into store: ParameterStore<Float>, settings: LoRASettings, layers: Int
    ) throws {
        for e in store.entries {
            let isA = e.name.hasSuffix(".lora_a")
            let base = String(e.name.dropLast(7))
            guard let pair = adapter.tensors[base] else {
                throw TrainingInputError(
                    description:
                        "--init \(adapter.path): has no \(base); train with the adapter's targets (--lora-targets)")
            }
            guard pair.rank == settings.rank else {
                throw TrainingInputError(
                    description: "--init \(adapter.path): rank \(pair.rank), but --lora-rank is \(settings.rank)")
            }
            guard abs(Double(adapter.alpha) - settings.alpha) < 1e-6 else {
                throw TrainingInputError(
                    description: "--init \(adapter.path): alpha \(adapter.alpha), but --lora-alpha is \(settings.alpha)"
                )
            }
            store.set(e.name, isA ? pair.a : pair.b)
        }
        if adapter.tensors.count * 2 != store.entries.count {
            throw TrainingInputError(
                description:
                    "--init \(adapter.path): adapts \(adapter.tensors.count) tensors, the training "
                    + "\(store.entries.count / 2); use the adapter's --lora-targets"
            )
        }
    }
}

/// How well a model (with adapters merged in memory) predicts a data file's answers.
public struct AnswerLikelihood: Sendable, Encodable {
    public var examples: Int
    /// Answer tokens scored, and their mean negative log-likelihood (weighted by `weight`).
    public var tokens: Int
    public var meanNLL: Double
    /// Preference pairs: the mean of log π(chosen) − log π(rejected), summed over each answer's
    /// tokens, and the share of pairs where chosen is the more likely.
    public var pairs: Int
    public var meanMargin: Double?
    public var marginAccuracy: Double?

    enum CodingKeys: String, CodingKey {
        case examples, tokens, pairs
        case meanNLL = "mean_nll"
        case meanMargin = "mean_margin"
        case marginAccuracy = "margin_accuracy"
    }
}

extension EmbeddedTraining {
    /// Scores `files` under `modelPath` with `adapters` (`A.gguf[@SCALE]`) merged in memory.
    public static func likelihood(
        model modelPath: String, adapters specs: [String], data files: [String], template name: String? = nil,
        maxLength: Int = 1024, threads: Int = 2
    ) throws -> AnswerLikelihood {
        let llama: LlamaModel
        do { llama = try LlamaModel(path: modelPath) } catch { throw TrainingInputError(description: "\(error)") }
        let template = try template(name, llama)
        let examples = try examples(
            files, model: llama, template: template, maxLength: maxLength, allTokens: false, templates: .standard)
        BLASThreads.set(threads)
        let base: ParameterStore<Float> = try BaseWeights.load(llama, gradients: false)
        do {
            let adapters = try specs.map { spec in
                let (path, scale) = try LoRAAdapter.parseSpec(spec)
                return try LoRAAdapter(path: path, scale: scale, model: llama)
            }
            try ModelFiles.merge(adapters, into: base)
        } catch { throw TrainingInputError(description: "--lora: \(error)") }
        let model = TrainingModel(shape: BaseWeights.shape(llama.config), base: base, lora: nil)
        var nll = 0.0
        var weight = 0.0
        var tokens = 0
        var pairs = 0
        var margin = 0.0
        var wins = 0.0
        for e in examples {
            var batch = PackedBatch()
            switch e.body {
            case .sft(let s): batch.append(s.tokens, scored: s.scored)
            case .preference(let c, let r):
                batch.append(c.tokens, scored: c.scored)
                batch.append(r.tokens, scored: r.scored)
            }
            let logp = model.forward(batch)
            var sums = [0.0, 0.0]
            for (i, lp) in logp.enumerated() { sums[batch.lossSegment[i]] += Double(lp) }
            if case .preference = e.body {
                pairs += 1
                let m = sums[0] - sums[1]
                margin += m
                wins += m > 0 ? 1 : m == 0 ? 0.5 : 0
                let chosen = batch.lossSegment.filter { $0 == 0 }.count
                nll -= e.weight * sums[0]
                weight += e.weight * Double(chosen)
                tokens += chosen
            } else {
                nll -= e.weight * sums[0]
                weight += e.weight * Double(logp.count)
                tokens += logp.count
            }
        }
        return AnswerLikelihood(
            examples: examples.count, tokens: tokens, meanNLL: nll / max(1e-12, weight), pairs: pairs,
            meanMargin: pairs > 0 ? margin / Double(pairs) : nil, marginAccuracy: pairs > 0 ? wins / Double(pairs) : nil
        )
    }
}

/// The memory this machine can give a new run (Linux's MemAvailable), when it can be read.
public enum SystemMemory {
    public static func availableBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let parts = line.split(separator: " ")
            if parts.count >= 2, let kb = Int(parts[1]) { return kb * 1024 }
        }
        return nil
    }
}
