import Foundation
import GGUF
import LMEngine

/// What a training run will hold in memory, worked out from the model file and the settings
/// before anything is loaded: the base weights (the file's mapped blocks, or float copies), the
/// trainable parameters with their gradients, AdamW's two moments, and the activations of the
/// largest forward pass.
public struct MemoryEstimate: Sendable, Hashable, Codable {
    public var weightsBytes: Int
    public var trainableBytes: Int
    public var optimizerBytes: Int
    public var activationBytes: Int
    /// Expansion tiles, logits, the tokenizer and the process itself.
    public var otherBytes: Int
    /// Whether blocks are recomputed in the backward (the settings' `checkpointing` resolved).
    public var checkpointing: Bool
    public var totalBytes: Int { weightsBytes + trainableBytes + optimizerBytes + activationBytes + otherBytes }

    enum CodingKeys: String, CodingKey {
        case weightsBytes = "weights_bytes"
        case trainableBytes = "trainable_bytes"
        case optimizerBytes = "optimizer_bytes"
        case activationBytes = "activation_bytes"
        case otherBytes = "other_bytes"
        case checkpointing
        case totalBytes = "total_bytes"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(weightsBytes, forKey: .weightsBytes)
        try c.encode(trainableBytes, forKey: .trainableBytes)
        try c.encode(optimizerBytes, forKey: .optimizerBytes)
        try c.encode(activationBytes, forKey: .activationBytes)
        try c.encode(otherBytes, forKey: .otherBytes)
        try c.encode(checkpointing, forKey: .checkpointing)
        try c.encode(totalBytes, forKey: .totalBytes)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        weightsBytes = try c.decode(Int.self, forKey: .weightsBytes)
        trainableBytes = try c.decode(Int.self, forKey: .trainableBytes)
        optimizerBytes = try c.decode(Int.self, forKey: .optimizerBytes)
        activationBytes = try c.decode(Int.self, forKey: .activationBytes)
        otherBytes = try c.decode(Int.self, forKey: .otherBytes)
        checkpointing = try c.decode(Bool.self, forKey: .checkpointing)
    }

    init(
        weightsBytes: Int, trainableBytes: Int, optimizerBytes: Int, activationBytes: Int, otherBytes: Int,
        checkpointing: Bool
    ) {
        self.weightsBytes = weightsBytes
        self.trainableBytes = trainableBytes
        self.optimizerBytes = optimizerBytes
        self.activationBytes = activationBytes
        self.otherBytes = otherBytes
        self.checkpointing = checkpointing
    }

    /// The process's own memory besides the model and the batch: the runtime, the tokenizer,
    /// the engine's view of the model (measured at about 100 MB on SmolLM2).
    static let processBytes = 160 << 20

    /// The estimate for training `llama` with `settings` on forward passes of at most `rows`
    /// tokens whose longest sequence is `longest` tokens (`denseBase`: LoRA on float32 copies of
    /// the frozen weights instead of the file's blocks).
    public static func of(
        _ llama: LlamaModel, settings: TrainSettings, rows: Int, longest: Int, denseBase: Bool = false
    ) -> MemoryEstimate {
        let s = BaseWeights.shape(llama.config)
        let file = llama.file
        let lora = settings.lora
        var matrixParams = 0
        for p in Projection.allCases {
            let (o, i) = p.shape(s)
            matrixParams += o * i * s.layers
        }
        let tied = file.tensor("output.weight") == nil
        let embeddingParams = s.vocabSize * s.dim * (tied ? 1 : 2)
        let otherParams = s.dim * (2 * s.layers + 1)
        let fileTensorBytes = file.content.tensors.reduce(0) { $0 + $1.byteCount }
        let quantized = lora != nil && settings.precision == .fp32 && !denseBase
        var weights: Int
        var other = processBytes
        switch (lora, settings.precision) {
        case (nil, _),
            (.some, .fp32) where denseBase:
            weights = 4 * (matrixParams + embeddingParams + otherParams)
            // Full fine-tuning writes the whole model at the end from a converted copy.
            if lora == nil { other += 4 * (matrixParams + embeddingParams + otherParams) }
        case (.some, .fp32):
            weights = fileTensorBytes
            // Per-thread expansion tiles: the widest forward tile, or a backward tile over a thread's share.
            let widest = max(s.dim, s.hiddenDim)
            other +=
                4 * settings.threads
                * max(QuantMatrix.forwardTile * widest, QuantMatrix.backwardTile * (widest / settings.threads + 256))
        case (.some, .bf16):
            weights = 2 * 2 * matrixParams + 4 * (embeddingParams + otherParams) + 2 * 2 * s.vocabSize * s.dim
        }
        let trainable =
            lora.map { l in
                l.targets.reduce(0) { acc, p in
                    let (o, i) = p.shape(s)
                    return acc + l.rank * (o + i)
                } * s.layers
            }
            ?? (matrixParams + embeddingParams + otherParams)
        let headRows = quantized ? max(Ops.headChunk, min(256, (8 << 20) / max(1, s.vocabSize))) : Ops.headChunk
        other += 4 * headRows * s.vocabSize
        let without =
            4
            * TrainingModel<Float>.activationScalars(s, rows: rows, longest: longest, lora: lora, checkpointing: false)
        let checkpointing: Bool
        switch settings.checkpointing {
        case .on: checkpointing = true
        case .off: checkpointing = false
        case .auto: checkpointing = without > TrainSettings.Checkpointing.autoThresholdBytes
        }
        let activations =
            checkpointing
            ? 4
                * TrainingModel<Float>.activationScalars(
                    s, rows: rows, longest: longest, lora: lora, checkpointing: true) : without
        return MemoryEstimate(
            weightsBytes: weights, trainableBytes: 8 * trainable, optimizerBytes: 8 * trainable,
            activationBytes: activations, otherBytes: other, checkpointing: checkpointing)
    }

    /// "2.41 GB (weights 0.92, trainable 0.07, optimizer 0.07, activations 1.12, other 0.23)".
    public var summary: String {
        func gb(_ b: Int) -> String { String(format: "%.2f", Double(b) / 1e9) }
        return
            "\(gb(totalBytes)) GB (weights \(gb(weightsBytes)), trainable \(gb(trainableBytes)), optimizer "
            + "\(gb(optimizerBytes)), "
            + "activations \(gb(activationBytes))\(checkpointing ? " with checkpointing" : ""), other "
            + "\(gb(otherBytes)))"
    }
}
