import ArgumentParser
import Foundation
import LMEngine
import LMTraining
import Logging
import PRSBackends
import PRSRunner

struct Train: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fine-tune a GGUF model on the CPU (LoRA or full; SFT or DPO) from prs exports or TRL-format data.",
        discussion: """
            Data: JSONL in TRL's formats (conversational "messages", "prompt"/"completion", \
            "prompt"/"chosen"/"rejected") \
            or prs's refine.jsonl. The loss is on the answers' tokens only. The adapter is llama.cpp's LoRA GGUF \
            (llama-cli --lora A.gguf; prs: embedded:M.gguf+A.gguf). A checkpoint (OUT.ckpt) is written every \
            --checkpoint-every steps: after a kill, run the same command again to resume.

            Example:
              prs export runs/x --format sft --out sft.jsonl
              prs train --data sft.jsonl --model models/SmolLM2-135M-Instruct.Q4_1.gguf --out runs/x/adapter.gguf \
            --epochs 2
            """)

    @Option(help: "Training data (JSONL; repeatable).") var data: [String] = []
    @Option(help: "The base GGUF model.") var model: String
    @Option(help: "Where to write the adapter (or, with --full, the model).") var out: String
    @Option(help: "sft or dpo (default sft).") var objective: TrainSettings.Objective = .sft
    @Option(name: .customLong("init"), help: "Continue from this adapter (same rank, alpha and targets).")
    var initAdapter: String?
    @Option(name: .customLong("lora-rank"), help: "LoRA rank (default 16).") var loraRank = 16
    @Option(name: .customLong("lora-alpha"), help: "LoRA alpha; the update is scaled by alpha/rank (default 32).")
    var loraAlpha = 32.0
    @Option(name: .customLong("lora-dropout"), help: "Dropout on the adapted inputs (default 0).") var loraDropout = 0.0
    @Option(
        name: .customLong("lora-targets"), help: "all-linear, or some of q,k,v,o,gate,up,down (default all-linear).")
    var loraTargets = "all-linear"
    @Flag(help: "Full fine-tuning of every tensor instead of LoRA.") var full = false
    @Option(
        name: .customLong("full-type"),
        help: "With --full: the written matrices' type, f16, f32, q8_0 or q4_1 (default f16).") var fullType = "f16"
    @Option(help: "Passes over the data (default 2).") var epochs = 2
    @Option(help: "Peak learning rate (default: 2e-4 LoRA SFT, 5e-6 LoRA DPO, 2e-5 full SFT, 5e-7 full DPO).") var lr:
        Double?
    @Option(
        name: .customLong("batch-examples"),
        help: "Examples per optimizer step at most, gradients accumulated (default 8, as TRL).") var batchExamples = 8
    @Option(
        name: .customLong("batch-tokens"),
        help:
            "Tokens per optimizer step at most: a step ends at --batch-examples or at this many tokens (default 4096).")
    var batchTokens = 4096
    @Option(
        name: .customLong("micro-batch-tokens"), help: "Tokens per forward pass at most (default 1024; bounds memory).")
    var microBatchTokens = 1024
    @Option(name: .customLong("max-length"), help: "Tokens of one example at most; longer ones are cut (default 1024).")
    var maxLength = 1024
    @Option(help: "cosine, linear or constant after warmup (default cosine).") var schedule:
        LearningRateSchedule.Shape = .cosine
    @Option(help: "Share of steps spent warming up (default 0.05).") var warmup = 0.05
    @Option(help: "DPO β (default 0.1).") var beta = 0.1
    @Option(name: .customLong("sft-weight"), help: "DPO: weight of an NLL term on the chosen answers (default 0).")
    var sftWeight = 0.0
    @Option(name: .customLong("weight-decay"), help: "AdamW weight decay (default 0).") var weightDecay = 0.0
    @Option(
        name: .customLong("max-grad-norm"), help: "Clip the gradient's global norm to this (default 1; 0: no clipping)."
    ) var maxGradNorm = 1.0
    @Option(name: .customLong("val-split"), help: "Share of examples held out for validation (default 0).")
    var valSplit = 0.0
    @Option(help: "Seed for initialisation, shuffling and dropout (default 0).") var seed: UInt64 = 0
    @Option(help: "Threads (default 2). The result depends on it: resume with the same count.") var threads = 2
    @Option(
        help: "fp32, or bf16: LoRA's frozen products on AMX bfloat16 tiles where the processor has them (default fp32)."
    ) var precision: TrainSettings.Precision = .fp32
    @Option(
        help:
            "auto, on or off: recompute each block's activations in the backward instead of keeping them (less memory, about a third more time; the result is the same). auto: on when keeping them would take over 2 GiB."
    ) var checkpointing: TrainSettings.Checkpointing = .auto
    @Option(
        name: .customLong("max-memory"),
        help:
            "GB the run may take (default: the memory available when it starts); a run estimated above it is refused before it loads."
    ) var maxMemory: Double?
    @Option(name: .customLong("checkpoint-every"), help: "Steps between checkpoints (default 20; 0: none).")
    var checkpointEvery = 20
    @Option(help: "Chat template (chatml, llama3, mistral, gemma); default: the model's.") var template: String?
    @Flag(name: .customLong("all-tokens"), help: "Train on every token, prompts included.") var allTokens = false
    @Option(help: "The JSONL loss log (default: OUT without .gguf, plus .train.jsonl).") var log: String?
    @Flag(help: "Print a JSON summary at the end.") var json = false

    func validate() throws {
        if data.isEmpty { throw ValidationError("--data: give at least one training file") }
        if loraRank < 1 || loraRank > 4096 { throw ValidationError("--lora-rank must be between 1 and 4096") }
        if loraAlpha <= 0 { throw ValidationError("--lora-alpha must be positive") }
        if !(0..<1).contains(loraDropout) { throw ValidationError("--lora-dropout must be in [0, 1)") }
        if epochs < 1 { throw ValidationError("--epochs must be at least 1") }
        if let lr, !(lr > 0) { throw ValidationError("--lr must be positive") }
        if batchTokens < 1 || batchExamples < 1 || microBatchTokens < 1 || maxLength < 2 {
            throw ValidationError("--batch-examples, --batch-tokens and --micro-batch-tokens ≥ 1, --max-length ≥ 2")
        }
        if let maxMemory, !(maxMemory > 0) { throw ValidationError("--max-memory is in GB and must be positive") }
        if !(0..<1).contains(warmup) { throw ValidationError("--warmup is a share of the steps, in [0, 1)") }
        if !(0..<1).contains(valSplit) { throw ValidationError("--val-split must be in [0, 1)") }
        if beta <= 0 { throw ValidationError("--beta must be positive") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
        if checkpointEvery < 0 { throw ValidationError("--checkpoint-every must be 0 or more") }
        if full && precision == .bf16 {
            throw ValidationError("--precision bf16 is for LoRA; full fine-tuning runs in float32")
        }
        if full && initAdapter != nil {
            throw ValidationError("--init continues a LoRA adapter; it does not go with --full")
        }
        if ModelFiles.WrittenType(rawValue: fullType) == nil {
            throw ValidationError("--full-type: expected f16, f32, q8_0 or q4_1")
        }
    }

    func job() throws -> EmbeddedTrainingJob {
        var s = TrainSettings()
        s.objective = objective
        s.lora =
            full
            ? nil
            : LoRASettings(
                rank: loraRank, alpha: loraAlpha, dropout: loraDropout,
                targets: try Projection.parseList(loraTargets))
        s.epochs = epochs
        s.learningRate = lr
        s.batchTokens = batchTokens
        s.batchExamples = batchExamples
        s.checkpointing = checkpointing
        s.microBatchTokens = microBatchTokens
        s.schedule = schedule
        s.warmup = warmup
        s.beta = beta
        s.sftWeight = sftWeight
        s.weightDecay = weightDecay
        s.maxGradNorm = maxGradNorm
        s.valSplit = valSplit
        s.seed = seed
        s.threads = threads
        s.checkpointEvery = checkpointEvery
        s.precision = precision
        var j = EmbeddedTrainingJob(data: data, model: model, out: out)
        j.initAdapter = initAdapter
        j.settings = s
        j.template = template
        j.maxLength = maxLength
        j.allTokens = allTokens
        j.fullType = ModelFiles.WrittenType(rawValue: fullType) ?? .f16
        j.log = log
        j.memoryLimitBytes = maxMemory.map { Int($0 * 1e9) }
        return j
    }

    func run() async throws {
        let logger = Logger(label: "prs.train")
        let job: EmbeddedTrainingJob
        do { job = try self.job() } catch { throw CLIFailure.badInput("\(error)") }
        for f in data where !FileManager.default.fileExists(atPath: f) {
            throw CLIFailure.badInput("\(f): no such file")
        }
        guard FileManager.default.fileExists(atPath: model) else {
            throw CLIFailure.badInput(
                "\(model): no such file (make demo or scripts/setup.sh downloads the default model)")
        }
        let progress = TrainProgress(logger: logger)
        let stop = StopFlag()  // set by the signal handler, read between steps
        let result: EmbeddedTrainingResult
        do {
            result = try await Interruptible.run(onSignal: { stop.set() }) {
                try EmbeddedTraining.run(
                    job, shouldStop: { stop.isSet },
                    onStart: { trainer, estimate in
                        let epochs = max(1, job.settings.epochs)
                        logger.notice(
                            "training",
                            metadata: [
                                "examples": "\(trainer.train.count)", "validation": "\(trainer.validation.count)",
                                "steps": "\(trainer.plan.count) (\(trainer.plan.count / epochs) an epoch)",
                                "lr": "\(job.settings.effectiveLearningRate)",
                                "mode": "\(job.settings.lora == nil ? "full" : "lora r=\(job.settings.lora!.rank)")",
                                "memory": "\(estimate.summary)",
                            ])
                        if trainer.plan.count < Train.fewSteps {
                            logger.warning(
                                "only \(trainer.plan.count) optimizer steps: too few to change the model much. More steps: --epochs, or fewer examples a step with --batch-examples; or a larger --lr"
                            )
                        }
                    }, onStep: progress.update)
            }
        } catch let e as TrainingInputError {
            progress.finish()
            throw CLIFailure.badInput(e.description)
        } catch let e as TrainingInterrupted {
            progress.finish()
            throw CLIFailure(code: Exit.interrupted, description: e.description)
        } catch {
            progress.finish()
            throw CLIFailure.failed("\(error)")
        }
        progress.finish()
        if json {
            struct Out: Encodable {
                var out: String, examples: Int, validation_examples: Int, steps: Int, loss: Double?, val_loss: Double?,
                    seconds: Double
                var tokens_per_s: Double?, peak_rss_mb: Double, memory_estimate: MemoryEstimate
            }
            print(
                try Model.json(
                    Out(
                        out: result.out, examples: result.examples, validation_examples: result.validationExamples,
                        steps: result.steps,
                        loss: result.finalLoss, val_loss: result.validationLoss, seconds: result.seconds,
                        tokens_per_s: result.log.last?.tokensPerSecond, peak_rss_mb: Benchmark.peakRSSMegabytes(),
                        memory_estimate: result.estimate)))
        } else {
            var line =
                "wrote \(result.out): \(result.steps) steps over \(result.examples) examples in "
                + "\(String(format: "%.1f", result.seconds)) s"
            if let l = result.finalLoss { line += ", last loss \(String(format: "%.4f", l))" }
            if let v = result.validationLoss { line += ", validation loss \(String(format: "%.4f", v))" }
            print(line)
        }
    }
}

/// Training progress: one line redrawn on a terminal (step, loss, tokens/s, ETA); otherwise a
/// log line about every 10% of the steps.
/// Shows training's progress (`step 12/40 epoch 1 loss … ETA 35s`), a line a decile (and every
/// validation) when stderr is not a terminal.
final class TrainProgress: LineProgress, @unchecked Sendable {
    func update(_ r: StepReport) {
        let remaining = Double(r.steps - r.step)
        let perStep = r.elapsedSeconds / Double(max(1, r.step))
        var line =
            "step \(r.step)/\(r.steps) epoch \(r.epoch) loss \(String(format: "%.4f", r.loss)) lr "
            + "\(String(format: "%.2e", r.lr)) "
            + "\(Int(r.tokensPerSecond)) tok/s ETA \(RunProgress.duration(remaining * perStep))"
        if let v = r.valLoss { line += " val \(String(format: "%.4f", v))" }
        if let a = r.rewardAccuracy { line += " acc \(String(format: "%.2f", a))" }
        show(line, done: r.step, total: r.steps, always: r.valLoss != nil)
    }
}

extension TrainSettings.Objective: ExpressibleByArgument {}
extension TrainSettings.Precision: ExpressibleByArgument {}
extension TrainSettings.Checkpointing: ExpressibleByArgument {}

extension Train {
    /// Fewer optimizer steps than this get a warning: an adapter barely moves in so few.
    static let fewSteps = 10
}
extension LearningRateSchedule.Shape: ExpressibleByArgument {}
