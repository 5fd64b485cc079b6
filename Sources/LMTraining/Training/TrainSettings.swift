import Foundation

/// How `prs train` trains: the objective, LoRA or full fine-tuning, the optimizer and the
/// schedule, the batches, validation and checkpoints.
public struct TrainSettings: Sendable, Hashable, Codable {
    public enum Objective: String, Sendable, Hashable, Codable, CaseIterable { case sft, dpo }

    public var objective: Objective = .sft
    /// nil: full fine-tuning of every base tensor.
    public var lora: LoRASettings? = LoRASettings()
    public var epochs = 2
    /// nil picks TRL's defaults: 2e-4 for LoRA SFT, 5e-6 for LoRA DPO, 2e-5 and 5e-7 for full fine-tuning.
    public var learningRate: Double?
    /// Examples an optimizer step covers at most (TRL's default batch of 8), gradients accumulated.
    public var batchExamples = 8
    /// Tokens an optimizer step covers at most: a step ends at `batchExamples` examples or when
    /// its examples reach this many tokens, whichever comes first.
    public var batchTokens = 4096
    /// Tokens one forward pass holds at most (bounds activation memory).
    public var microBatchTokens = 1024
    public var schedule = LearningRateSchedule.Shape.cosine
    /// The share of steps spent warming up.
    public var warmup = 0.05
    /// DPO's β.
    public var beta = 0.1
    /// DPO: the weight of an NLL term on the chosen answers (0: none).
    public var sftWeight = 0.0
    /// The share of examples held out for validation (0: none).
    public var valSplit = 0.0
    public var seed: UInt64 = 0
    public var maxGradNorm = 1.0
    public var weightDecay = 0.0
    /// Steps between checkpoints (0: none).
    public var checkpointEvery = 20
    public var threads = 2
    /// The frozen products' precision: float32 (BLAS), or bfloat16 on AMX tiles (LoRA only;
    /// adapters, gradients and optimizer state stay float32).
    public var precision = Precision.fp32

    public enum Precision: String, Sendable, Hashable, Codable, CaseIterable { case fp32, bf16 }

    /// Whether each block's activations are recomputed in the backward instead of kept: `auto`
    /// turns it on when keeping them would take more than `Checkpointing.autoThresholdBytes`.
    /// It changes memory and time, never the result.
    public var checkpointing = Checkpointing.auto

    public enum Checkpointing: String, Sendable, Hashable, Codable, CaseIterable {
        case auto, on, off
        /// Above this much activation memory `auto` recomputes blocks (2 GiB).
        public static let autoThresholdBytes = 2 << 30
    }

    public init() {}

    public var effectiveLearningRate: Double {
        if let learningRate { return learningRate }
        switch (objective, lora != nil) {
        case (.sft, true): return 2e-4
        case (.dpo, true): return 5e-6
        case (.sft, false): return 2e-5
        case (.dpo, false): return 5e-7
        }
    }

    /// A stable description of everything that changes the result (thread count included:
    /// products' summation order depends on it), for refusing to resume with other settings.
    public var fingerprint: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var copy = self
        copy.checkpointEvery = 0
        copy.checkpointing = .auto
        return String(decoding: (try? enc.encode(copy)) ?? Data(), as: UTF8.self)
    }
}

/// One optimizer step, as the progress line and the JSONL log show it.
public struct StepReport: Sendable, Codable, Hashable {
    public var step: Int
    public var steps: Int
    public var epoch: Int
    public var loss: Double
    public var lr: Double
    public var gradNorm: Double
    public var tokens: Int
    public var tokensPerSecond: Double
    public var elapsedSeconds: Double
    /// DPO: the share of pairs whose implicit reward ranks chosen first, and the mean margin.
    public var rewardAccuracy: Double?
    public var rewardMargin: Double?
    /// Set on the steps after which validation ran.
    public var valLoss: Double?

    enum CodingKeys: String, CodingKey {
        case step, steps, epoch, loss, lr, tokens
        case gradNorm = "grad_norm"
        case tokensPerSecond = "tokens_per_s"
        case elapsedSeconds = "elapsed_s"
        case rewardAccuracy = "reward_accuracy"
        case rewardMargin = "reward_margin"
        case valLoss = "val_loss"
    }
}
