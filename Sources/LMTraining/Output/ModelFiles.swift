import Foundation
import GGUF
import LMEngine

/// The files training writes: llama.cpp's LoRA GGUF adapters, and standalone models (a fully
/// fine-tuned model, or a base with an adapter merged in).
public enum ModelFiles {
    /// Writes the adapter tensors of `lora` as llama.cpp's LoRA GGUF: `general.type` adapter,
    /// `adapter.type` lora, `adapter.lora.alpha`, `NAME.lora_a` (ne [in, r]) and `NAME.lora_b`
    /// (ne [r, out]) per adapted tensor, with `prs.*` keys recording the base and the settings.
    public static func writeAdapter(
        _ lora: ParameterStore<Float>, settings: LoRASettings, architecture: String,
        baseSHA256: String, extra: [(String, MetadataValue)] = [], type: TensorType = .f32,
        to path: String
    ) throws {
        var w = GGUFWriter()
        w.metadata =
            [
                ("general.architecture", .string(architecture)),
                ("general.type", .string("adapter")),
                ("general.name", .string(URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)),
                ("adapter.type", .string("lora")),
                ("adapter.lora.alpha", .float32(Float(settings.alpha))),
                ("prs.base_sha256", .string(baseSHA256)),
                ("prs.lora.rank", .uint32(UInt32(settings.rank))),
                ("prs.lora.dropout", .float32(Float(settings.dropout))),
                ("prs.lora.targets", .string(settings.targets.map(\.rawValue).joined(separator: ","))),
            ] + extra
        for e in lora.entries {
            w.tensors.append(
                .init(
                    name: e.name, dimensions: [e.cols, e.rows], type: type,
                    data: try Quantize.encode(lora.array(e.name), as: type)))
        }
        try w.write(to: path)
    }

    /// Writes a loaded adapter (from GGUF or a PEFT directory, in GGUF's layout) as llama.cpp's LoRA
    /// GGUF, its tensors as `type` (F32 or F16): a PEFT directory's conversion to GGUF.
    public static func writeAdapter(
        _ adapter: LoRAAdapter, type: TensorType = .f32, extra: [(String, MetadataValue)] = [],
        to path: String
    ) throws {
        var w = GGUFWriter()
        w.metadata =
            [
                ("general.architecture", .string(adapter.architecture)),
                ("general.type", .string("adapter")),
                ("general.name", .string(URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)),
                ("adapter.type", .string("lora")),
                ("adapter.lora.alpha", .float32(adapter.alpha)),
            ] + extra
        for name in adapter.tensors.keys.sorted() {
            let p = adapter.tensors[name]!
            w.tensors.append(
                .init(
                    name: name + ".lora_a", dimensions: [p.inDim, p.rank], type: type,
                    data: try Quantize.encode(p.a, as: type)))
            w.tensors.append(
                .init(
                    name: name + ".lora_b", dimensions: [p.rank, p.outDim], type: type,
                    data: try Quantize.encode(p.b, as: type)))
        }
        try w.write(to: path)
    }

    /// The matrices' type of a fully fine-tuned model's file (`prs train --full-type`).
    public enum WrittenType: String, CaseIterable, Sendable {
        case f16, f32, q8_0, q4_1
        var tensorType: TensorType {
            switch self {
            case .f16: .f16
            case .f32: .f32
            case .q8_0: .q8_0
            case .q4_1: .q4_1
            }
        }
    }

    /// `writeModel` with the written type named as `prs train` names it.
    public static func writeModel(base: GGUFFile, replace: [String: [Float]], type: WrittenType, to path: String) throws
    {
        try writeModel(base: base, replace: replace, type: type.tensorType, to: path)
    }

    /// A GGUF file's `general.type` ("adapter" for a LoRA adapter, "model" or nil for a model).
    public static func generalType(ofFile path: String) throws -> String? {
        try GGUFFile(path: path).content["general.type"]?.string
    }

    /// The training settings as an adapter records them (`prs.train.*`); `data` the files' names.
    public static func trainingMetadata(_ s: TrainSettings, data: [String]) -> [(String, MetadataValue)] {
        [
            ("prs.train.objective", .string(s.objective.rawValue)),
            ("prs.train.epochs", .uint32(UInt32(s.epochs))),
            ("prs.train.learning_rate", .float32(Float(s.effectiveLearningRate))),
            ("prs.train.schedule", .string(s.schedule.rawValue)),
            ("prs.train.batch_tokens", .uint32(UInt32(s.batchTokens))),
            ("prs.train.batch_examples", .uint32(UInt32(s.batchExamples))),
            ("prs.train.seed", .uint64(s.seed)),
            ("prs.train.data", .string(data.joined(separator: ","))),
        ] + (s.objective == .dpo ? [("prs.train.beta", .float32(Float(s.beta)))] : [])
    }

    /// A standalone model: `base`'s metadata and tensors, with the 2-D tensors in `replace`
    /// encoded as `type` (1-D ones stay F32) and `general.file_type` updated.
    public static func writeModel(base: GGUFFile, replace: [String: [Float]], type: TensorType, to path: String) throws
    {
        var w = GGUFWriter()
        let fileType: UInt32 =
            switch type {
            case .f32: 0
            case .f16: 1
            case .q4_1: 3
            case .q8_0: 7
            default: 1
            }
        w.metadata = base.content.metadata.map { m in m.key == "general.file_type" ? (m.key, .uint32(fileType)) : m }
        if !w.metadata.contains(where: { $0.key == "general.file_type" }) {
            w.metadata.append(("general.file_type", .uint32(fileType)))
        }
        w.alignment = base.content.alignment
        for t in base.content.tensors {
            if let values = replace[t.name] {
                let tType = t.dimensions.count >= 2 && t.dimensions[0] % type.blockSize == 0 ? type : .f32
                w.tensors.append(
                    .init(
                        name: t.name, dimensions: t.dimensions, type: tType,
                        data: try Quantize.encode(values, as: tType)))
            } else {
                w.tensors.append(
                    .init(name: t.name, dimensions: t.dimensions, type: t.type, data: Array(base.bytes(of: t))))
            }
        }
        try w.write(to: path)
    }

    /// `base` with adapters merged: W + scale · (alpha/r) · B·A for each adapted tensor; the
    /// adapted tensors are written as `type`, the others keep their encoding.
    public static func merge(base: GGUFFile, adapters: [LoRAAdapter], type: TensorType, to path: String) throws {
        var replace: [String: [Float]] = [:]
        for adapter in adapters {
            for (name, pair) in adapter.tensors {
                guard let info = base.tensor(name) else {
                    throw TrainingError("\(adapter.path): adapts \(name), which \(base.path) does not have")
                }
                var w =
                    replace[name] ?? Dequantize.toFloat(base.bytes(of: info), type: info.type, count: info.elementCount)
                w.withUnsafeMutableBufferPointer { addDelta(pair, scale: adapter.scale(of: pair), to: $0.baseAddress!) }
                replace[name] = w
            }
        }
        try writeModel(base: base, replace: replace, type: type, to: path)
    }

    /// Adds each adapter's scale · B·A into the matching dense tensors of `store`.
    public static func merge(_ adapters: [LoRAAdapter], into store: ParameterStore<Float>) throws {
        for adapter in adapters {
            for (name, pair) in adapter.tensors {
                guard let e = store.entry(name), e.rows == pair.outDim, e.cols == pair.inDim else {
                    throw TrainingError(
                        "\(adapter.path): adapts \(name), which the model does not have with that shape")
                }
                addDelta(pair, scale: adapter.scale(of: pair), to: store.valuesPointer + e.offset)
            }
        }
    }

    /// W[o][i] += s · Σ_r B[o][r] · A[r][i] (W row-major, out × in).
    static func addDelta(_ t: LoRAAdapter.Pair, scale s: Float, to w: UnsafeMutablePointer<Float>) {
        for o in 0..<t.outDim {
            for r in 0..<t.rank {
                let bv = s * t.b[o * t.rank + r]
                if bv == 0 { continue }
                let row = w + o * t.inDim
                let arow = r * t.inDim
                for i in 0..<t.inDim { row[i] += bv * t.a[arow + i] }
            }
        }
    }
}
