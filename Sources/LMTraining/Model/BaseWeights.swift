import Foundation
import GGUF
import LMEngine

/// A GGUF llama-family model's tensors as dense float copies for training.
public enum BaseWeights {
    /// The training shape of a model's configuration.
    public static func shape(_ c: LlamaConfig) -> ModelShape {
        var s = ModelShape(
            layers: c.layers, dim: c.dim, hiddenDim: c.hiddenDim, heads: c.heads, kvHeads: c.kvHeads,
            headDim: c.headDim,
            ropeDim: c.ropeDim, ropeBase: Double(c.ropeBase), normEps: Double(c.normEps), vocabSize: c.vocabSize,
            contextLength: c.contextLength)
        s.ropeHalves = c.ropePairs == .halves
        s.ropeScaling = c.ropeScaling.isIdentity ? nil : c.ropeScaling
        s.geglu = c.activation == .geluTanh
        s.embeddingScale = c.embeddingScale.map(Double.init)
        s.sandwichNorms = c.sandwichNorms
        if c.qkNorms && !c.postNorms { s.qkNormsOnly = true }
        if c.attentionScale != 1 / Float(c.headDim).squareRoot() { s.attentionScale = Double(c.attentionScale) }
        s.slidingWindow = c.slidingWindow
        s.localLayers = c.localLayers
        s.localRopeBase = Double(c.localRopeBase)
        return s
    }

    /// Whether bfloat16 AMX products can be used on this machine.
    public static var bf16Available: Bool { BF16Matrix.available }

    /// A model ready for training. With LoRA in float32 the frozen matrices (projections,
    /// embedding, output head) stay as the GGUF stores them and are expanded a tile at a time
    /// inside each product (`quantized`; false keeps dense float32 copies, as full fine-tuning
    /// does); with `bf16` they are bfloat16 AMX tiles. `checkpointing` keeps only each block's
    /// input and recomputes the rest in the backward.
    public static func model(
        _ llama: LlamaModel, lora: LoRASettings?, seed: UInt64, bf16: Bool, threads: Int,
        quantized: Bool = true, checkpointing: Bool = false
    ) throws -> TrainingModel<Float> {
        guard ["llama", "qwen2", "qwen3", "gemma3"].contains(llama.config.architecture) else {
            throw TrainingError(
                "\(llama.file.path): prs train runs llama, qwen2, qwen3 and gemma3 models; "
                    + "\(llama.config.architecture) runs in the engine (sampling, serving) but not in training yet"
            )
        }
        // Soft-capping is not in the training forward pass: a file that sets it is refused.
        guard llama.config.attentionSoftcap == 0, llama.config.finalLogitSoftcap == 0 else {
            throw TrainingError(
                "\(llama.file.path): \(llama.config.architecture).final_logit_softcapping is set; prs train does not "
                    + "implement logit soft-capping, so it refuses the file rather than train a different model"
            )
        }
        guard !bf16 || lora != nil else {
            throw TrainingError("bfloat16 training is for LoRA; full fine-tuning runs in float32")
        }
        guard !bf16 || BF16Matrix.available else {
            throw TrainingError(
                "bfloat16 training needs AVX512-BF16 or AMX-BF16, which this processor does not have (or PRS_ISA "
                    + "turned off); use --precision fp32"
            )
        }
        let s = shape(llama.config)
        let file = llama.file
        let tied = file.tensor("output.weight") == nil
        let head = tied ? "token_embd.weight" : "output.weight"
        var packed: [String: any FrozenMatrix] = [:]
        if lora != nil && !bf16 && quantized {
            let base: ParameterStore<Float> = try load(llama, gradients: false, matrices: false, embeddings: false)
            let scratch = QuantScratch()
            for l in 0..<s.layers {
                for p in Projection.allCases {
                    let (o, i) = p.shape(s)
                    packed[p.tensorName(layer: l)] = try QuantMatrix(
                        file: file, name: p.tensorName(layer: l), rows: o, cols: i, threads: threads, scratch: scratch)
                }
            }
            packed["token_embd.weight"] = try QuantMatrix(
                file: file, name: "token_embd.weight", rows: s.vocabSize, cols: s.dim, threads: threads,
                scratch: scratch)
            if !tied {
                packed["output.weight"] = try QuantMatrix(
                    file: file, name: "output.weight", rows: s.vocabSize, cols: s.dim, threads: threads,
                    scratch: scratch)
            }
            return TrainingModel(
                shape: s, base: base, lora: lora, seed: seed, packed: packed, checkpointing: checkpointing)
        }
        let base: ParameterStore<Float> = try load(llama, gradients: lora == nil, matrices: !bf16)
        if bf16 {
            let scratch = BF16Scratch()
            for l in 0..<s.layers {
                for p in Projection.allCases {
                    let name = p.tensorName(layer: l)
                    let (o, i) = p.shape(s)
                    let values = try dense(file, name, count: o * i)
                    packed[name] = values.withUnsafeBufferPointer {
                        BF16Matrix($0.baseAddress!, rows: o, cols: i, threads: threads, scratch: scratch)
                    }
                }
            }
            packed[head] = BF16Matrix(
                base.value(head), rows: s.vocabSize, cols: s.dim, threads: threads, scratch: scratch)
        }
        return TrainingModel(shape: s, base: base, lora: lora, seed: seed, packed: packed, checkpointing: checkpointing)
    }

    static func dense(_ file: GGUFFile, _ name: String, count: Int) throws -> [Float] {
        guard let t = file.tensor(name), t.elementCount == count else {
            throw TrainingError("\(file.path): tensor \(name) is missing or of another shape")
        }
        return Dequantize.toFloat(file.bytes(of: t), type: t.type, count: t.elementCount)
    }

    /// Every tensor the forward pass reads, dequantized (`gradients` for full fine-tuning;
    /// without the projection matrices unless `matrices`, nor the embedding and head unless `embeddings`).
    public static func load<T: TrainScalar>(
        _ model: LlamaModel, gradients: Bool, matrices: Bool = true,
        embeddings: Bool = true
    ) throws -> ParameterStore<T> {
        let file = model.file
        let s = shape(model.config)
        let tied = file.tensor("output.weight") == nil
        let biases = Set(Projection.allCases.filter { file.tensor("blk.0.\($0.ggufName).bias") != nil })
        let store = ParameterStore<T>(
            TrainingModel<T>.baseShapes(s, tied: tied, biases: biases, matrices: matrices, embeddings: embeddings),
            gradients: gradients)
        for e in store.entries {
            guard let t = file.tensor(e.name) else { throw TrainingError("\(file.path): tensor \(e.name) is missing") }
            guard t.elementCount == e.count else {
                throw TrainingError(
                    "\(file.path): tensor \(e.name) has shape \(t.dimensions), expected \(e.cols) × \(e.rows)")
            }
            let values = Dequantize.toFloat(file.bytes(of: t), type: t.type, count: t.elementCount)
            let p = store.values.p + e.offset
            if T.self == Float.self {
                values.withUnsafeBufferPointer { src in
                    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self).update(
                        from: src.baseAddress!, count: e.count)
                }
            } else {
                for i in 0..<e.count { p[i] = T(values[i]) }
            }
        }
        return store
    }
}
