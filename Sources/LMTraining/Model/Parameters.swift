import Foundation
import LMEngine

/// Named tensors in one contiguous buffer (llm.c's `ParameterTensors`), with an optional
/// gradient buffer of the same layout: allocation happens once, and a checkpoint is one write.
public final class ParameterStore<T: TrainScalar>: @unchecked Sendable {
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var offset: Int
        /// Row-major rows × cols (a vector has one row).
        public var rows: Int
        public var cols: Int
        public var count: Int { rows * cols }
    }

    public let entries: [Entry]
    let index: [String: Int]
    let values: Buffer<T>
    let grads: Buffer<T>?

    public var count: Int { values.count }

    init(_ shapes: [(name: String, rows: Int, cols: Int)], gradients: Bool) {
        var entries: [Entry] = []
        var offset = 0
        for s in shapes {
            entries.append(Entry(name: s.name, offset: offset, rows: s.rows, cols: s.cols))
            offset += s.rows * s.cols
        }
        self.entries = entries
        index = Dictionary(uniqueKeysWithValues: entries.enumerated().map { ($1.name, $0) })
        values = Buffer(offset)
        grads = gradients ? Buffer(offset) : nil
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    func value(_ name: String) -> UnsafeMutablePointer<T> { values.p + entries[index[name]!].offset }
    func grad(_ name: String) -> UnsafeMutablePointer<T>? { grads.map { $0.p + entries[index[name]!].offset } }

    /// A tensor's values as an array (row-major).
    public func array(_ name: String) -> [T] {
        let e = entries[index[name]!]
        return Array(UnsafeBufferPointer(start: values.p + e.offset, count: e.count))
    }

    /// A tensor's gradient as an array (row-major), when the store keeps gradients.
    public func gradient(_ name: String) -> [T]? {
        guard let g = grads else { return nil }
        let e = entries[index[name]!]
        return Array(UnsafeBufferPointer(start: g.p + e.offset, count: e.count))
    }

    /// Sets a tensor's values.
    public func set(_ name: String, _ v: [T]) {
        let e = entries[index[name]!]
        precondition(v.count == e.count, "\(name): \(v.count) values for \(e.count)")
        v.withUnsafeBufferPointer { (values.p + e.offset).update(from: $0.baseAddress!, count: e.count) }
    }

    public func zeroGradients() { grads?.zero() }

    /// The values buffer itself (for finite-difference checks that nudge one value at a time).
    public var valuesPointer: UnsafeMutablePointer<T> { values.p }

    /// All values (for checkpoints and comparisons), and their replacement.
    public var allValues: [T] { Array(UnsafeBufferPointer(start: values.p, count: values.count)) }
    public func setAll(_ v: [T]) {
        precondition(v.count == values.count)
        v.withUnsafeBufferPointer { values.p.update(from: $0.baseAddress!, count: v.count) }
    }
    public var allGradients: [T]? { grads.map { Array(UnsafeBufferPointer(start: $0.p, count: $0.count)) } }
}

/// The projections of a llama block, by their short names (`--lora-targets`).
public enum Projection: String, Sendable, CaseIterable, Codable {
    case q, k, v, o, gate, up, down

    /// The GGUF tensor name's middle part (`blk.N.<this>.weight`).
    public var ggufName: String {
        switch self {
        case .q: "attn_q"
        case .k: "attn_k"
        case .v: "attn_v"
        case .o: "attn_output"
        case .gate: "ffn_gate"
        case .up: "ffn_up"
        case .down: "ffn_down"
        }
    }

    public func tensorName(layer: Int) -> String { "blk.\(layer).\(ggufName).weight" }

    /// (out, in) of the projection in a model.
    public func shape(_ c: ModelShape) -> (out: Int, in: Int) {
        switch self {
        case .q: (c.qDim, c.dim)
        case .k, .v: (c.kvDim, c.dim)
        case .o: (c.dim, c.qDim)
        case .gate, .up: (c.hiddenDim, c.dim)
        case .down: (c.dim, c.hiddenDim)
        }
    }

    /// `all-linear` or a comma-separated list of projections.
    public static func parseList(_ s: String) throws -> [Projection] {
        if s == "all-linear" || s == "all" { return allCases }
        var out: [Projection] = []
        for part in s.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let p = Projection(rawValue: name) else {
                throw TrainingError(
                    "--lora-targets: \"\(name)\" is not a projection (all-linear, or some of q,k,v,o,gate,up,down)")
            }
            if !out.contains(p) { out.append(p) }
        }
        guard !out.isEmpty else { throw TrainingError("--lora-targets: no projection named") }
        return Projection.allCases.filter(out.contains)
    }
}

/// The sizes of a llama-family model that training needs.
public struct ModelShape: Sendable, Hashable, Codable {
    public var layers: Int
    public var dim: Int
    public var hiddenDim: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var ropeDim: Int
    public var ropeBase: Double
    public var normEps: Double
    public var vocabSize: Int
    public var contextLength: Int
    public var kvDim: Int { kvHeads * headDim }
    /// Width of the queries and the attention's output (heads × headDim; Gemma's differs from dim).
    public var qDim: Int { heads * headDim }

    // What Gemma 3 changes (LlamaConfig's fields of the same names; the defaults are llama's).
    /// Rotary pairs (i, i + ropeDim/2), NEOX mode, instead of adjacent ones.
    public var ropeHalves = false
    /// Rope scaling of the global layers (Llama 3.x `rope_freqs`, linear, YaRN); nil: none.
    public var ropeScaling: RopeScaling? = nil
    /// GELU (tanh approximation) on the gate instead of SiLU: GeGLU.
    public var geglu = false
    /// Multiplies the token embedding; nil: none.
    public var embeddingScale: Double? = nil
    /// Per-head RMSNorm of q and k before rope, and RMSNorms of the attention's and the
    /// feed-forward's outputs before they join the residual stream.
    public var sandwichNorms = false
    /// Per-head RMSNorm of q and k alone, without Gemma's other norms (Qwen3); nil in shapes
    /// written before it existed.
    public var qkNormsOnly: Bool? = nil
    /// Whether q and k are normed per head before rope (Gemma 3 and Qwen3).
    public var qkNorms: Bool { sandwichNorms || (qkNormsOnly ?? false) }
    /// The scale of q·k (1/√headDim unless the model says otherwise).
    public var attentionScale: Double
    /// Local layers attend to the last `slidingWindow` positions (their own included), with rope
    /// base `localRopeBase`; nil: every layer is global.
    public var slidingWindow: Int? = nil
    public var localLayers: [Bool] = []
    public var localRopeBase: Double = 10000
    public func isLocal(_ l: Int) -> Bool { slidingWindow != nil && l < localLayers.count && localLayers[l] }

    public init(
        layers: Int, dim: Int, hiddenDim: Int, heads: Int, kvHeads: Int, headDim: Int? = nil, ropeDim: Int? = nil,
        ropeBase: Double = 10000,
        normEps: Double = 1e-5, vocabSize: Int, contextLength: Int = 2048
    ) {
        self.layers = layers
        self.dim = dim
        self.hiddenDim = hiddenDim
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim ?? dim / heads
        attentionScale = 1 / Double(self.headDim).squareRoot()
        self.ropeDim = ropeDim ?? self.headDim
        self.ropeBase = ropeBase
        self.normEps = normEps
        self.vocabSize = vocabSize
        self.contextLength = contextLength
    }
}

/// Training that cannot go on, with what is wrong and where.
public struct TrainingError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
