import Foundation
import GGUF
import LMEngine

/// A GGUF llama-family model's tensors as dense float copies for training.
public enum BaseWeights {
    /// The training shape of a model's configuration.
    public static func shape(_ c: LlamaConfig) -> ModelShape {
        ModelShape(layers: c.layers, dim: c.dim, hiddenDim: c.hiddenDim, heads: c.heads, kvHeads: c.kvHeads, ropeDim: c.ropeDim,
                   ropeBase: Double(c.ropeBase), normEps: Double(c.normEps), vocabSize: c.vocabSize, contextLength: c.contextLength)
    }

    /// Every tensor the forward pass reads, dequantized (`gradients` for full fine-tuning).
    public static func load<T: TrainScalar>(_ model: LlamaModel, gradients: Bool) throws -> ParameterStore<T> {
        let file = model.file, s = shape(model.config)
        let tied = file.tensor("output.weight") == nil
        let biases = Set(Projection.allCases.filter { file.tensor("blk.0.\($0.ggufName).bias") != nil })
        let store = ParameterStore<T>(TrainingModel<T>.baseShapes(s, tied: tied, biases: biases), gradients: gradients)
        for e in store.entries {
            guard let t = file.tensor(e.name) else { throw TrainingError("\(file.path): tensor \(e.name) is missing") }
            guard t.elementCount == e.count else {
                throw TrainingError("\(file.path): tensor \(e.name) has shape \(t.dimensions), expected \(e.cols) × \(e.rows)")
            }
            let values = Dequantize.toFloat(file.bytes(of: t), type: t.type, count: t.elementCount)
            let p = store.values.p + e.offset
            if T.self == Float.self {
                values.withUnsafeBufferPointer { src in
                    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self).update(from: src.baseAddress!, count: e.count)
                }
            } else {
                for i in 0..<e.count { p[i] = T(values[i]) }
            }
        }
        return store
    }
}
