import Foundation
import GGUF

/// A LoRA adapter, applied at inference without merging: `W·x + scale · (alpha/r) · B·(A·x)` for
/// each adapted tensor. Read from llama.cpp's GGUF form or from a PEFT directory (`PEFTAdapter`),
/// and held in GGUF's layout either way.
public final class LoRAAdapter: Sendable {
    public struct Pair: Sendable {
        /// A: rank × inDim, B: outDim × rank, row-major F32.
        public let a: [Float]
        public let b: [Float]
        /// B transposed (rank × outDim), the layout the inference kernel reads.
        public let bt: [Float]
        public let rank: Int
        public let inDim: Int
        public let outDim: Int

        public init(a: [Float], b: [Float], rank: Int, inDim: Int, outDim: Int) {
            var bT = [Float](repeating: 0, count: b.count)
            for o in 0..<outDim { for r in 0..<rank { bT[r * outDim + o] = b[o * rank + r] } }
            self.a = a
            self.b = b
            bt = bT
            self.rank = rank
            self.inDim = inDim
            self.outDim = outDim
        }
    }

    public let path: String
    public let alpha: Float
    /// The user's multiplier (`+A.gguf@SCALE`).
    public let userScale: Float
    /// userScale · alpha / rank: the factor on B·A of a tensor of rank `rank` (each tensor's own is
    /// `scale(of:)`, its rank in the denominator, as llama.cpp applies it).
    public let scale: Float
    public let tensors: [String: Pair]
    /// SHA-256 of the file's bytes and the scale: what the prefix cache keys a sequence's blocks by.
    public let identity: String
    public let architecture: String
    /// The rank `scale` divides by (the first tensor's by name in a GGUF file, `r` in a PEFT config).
    public let rank: Int

    /// The factor on B·A of one tensor: userScale · alpha / (its rank).
    public func scale(of pair: Pair) -> Float { userScale * alpha / Float(pair.rank) }
    /// Whether it was read from a PEFT directory.
    public let isPEFT: Bool

    init(
        path: String, alpha: Float, rank: Int, userScale: Float, tensors: [String: Pair], architecture: String,
        identity: String, isPEFT: Bool
    ) {
        self.path = path
        self.alpha = alpha
        self.rank = rank
        self.userScale = userScale
        scale = userScale * alpha / Float(rank)
        self.tensors = tensors
        self.architecture = architecture
        self.identity = identity + "@\(userScale)"
        self.isPEFT = isPEFT
    }

    /// Reads `path`, a llama.cpp adapter GGUF or a PEFT directory (`adapter_config.json` and
    /// `adapter_model.safetensors`; a PEFT directory needs `model`, whose layout it is converted
    /// to). With `model`, checks every adapted tensor exists there with matching shapes.
    public convenience init(path: String, scale userScale: Float = 1, model: LlamaModel? = nil) throws {
        if PEFTAdapter.isPEFT(path) {
            guard let model else {
                throw ModelError("\(path): a PEFT adapter is read against its base model; none was given")
            }
            let r = try PEFTAdapter.read(path, model: model)
            self.init(
                path: path, alpha: r.alpha, rank: r.rank, userScale: userScale, tensors: r.pairs,
                architecture: model.config.architecture,
                identity: r.identity, isPEFT: true)
            return
        }
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw ModelError("\(path): \(error)") }
        let c = file.content
        guard c["general.type"]?.string == "adapter", c["adapter.type"]?.string == "lora" else {
            throw ModelError("\(path): not a LoRA adapter (general.type must be \"adapter\" and adapter.type \"lora\")")
        }
        guard let arch = c["general.architecture"]?.string else {
            throw ModelError("\(path): general.architecture is missing")
        }
        if let model, model.config.architecture != arch {
            throw ModelError("\(path): an adapter for \(arch), but \(model.file.path) is \(model.config.architecture)")
        }
        var pairs: [String: Pair] = [:]
        var alphaValue: Float? = c["adapter.lora.alpha"]?.float.map { Float($0) }
        for t in c.tensors where t.name.hasSuffix(".lora_a") {
            let base = String(t.name.dropLast(".lora_a".count))
            guard let bt = file.tensor(base + ".lora_b") else {
                throw ModelError("\(path): \(t.name) has no \(base).lora_b")
            }
            guard t.dimensions.count == 2, bt.dimensions.count == 2, t.dimensions[1] == bt.dimensions[0] else {
                throw ModelError(
                    "\(path): \(base): lora_a \(t.dimensions) and lora_b \(bt.dimensions) do not share a rank")
            }
            let inDim = t.dimensions[0]
            let rank = t.dimensions[1]
            let outDim = bt.dimensions[1]
            if let model {
                guard let w = model.file.tensor(base) else {
                    throw ModelError("\(path): adapts \(base), which \(model.file.path) does not have")
                }
                guard w.dimensions == [inDim, outDim] else {
                    throw ModelError(
                        "\(path): \(base) is \(inDim)→\(outDim) in the adapter but \(w.dimensions) in "
                            + "\(model.file.path)"
                    )
                }
            }
            let a = Dequantize.toFloat(file.bytes(of: t), type: t.type, count: t.elementCount)
            let b = Dequantize.toFloat(file.bytes(of: bt), type: bt.type, count: bt.elementCount)
            pairs[base] = Pair(a: a, b: b, rank: rank, inDim: inDim, outDim: outDim)
        }
        guard let rank = pairs.keys.min().flatMap({ pairs[$0]?.rank }) else {
            throw ModelError("\(path): no lora_a/lora_b tensors")
        }
        guard pairs.values.allSatisfy({ $0.rank <= 4096 }) else {
            throw ModelError("\(path): a rank over 4096 is not supported")
        }
        if alphaValue == nil { alphaValue = Float(rank) }
        self.init(
            path: path, alpha: alphaValue!, rank: rank, userScale: userScale, tensors: pairs, architecture: arch,
            identity: try SHA256.file(path), isPEFT: false)
    }

    /// Parses `A.gguf[@SCALE]` (or `DIR[@SCALE]`, a PEFT directory).
    public static func parseSpec(_ spec: String) throws -> (path: String, scale: Float) {
        if let at = spec.lastIndex(of: "@"), let s = Float(spec[spec.index(after: at)...]) {
            return (String(spec[..<at]), s)
        }
        return (spec, 1)
    }
}
