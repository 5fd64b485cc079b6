import Foundation
import LMEngine

/// A packed batch: sequences laid end to end, each attending only to itself, positions
/// restarting at 0 for each; `lossRows` are the rows whose next token is scored, with that token.
public struct PackedBatch: Sendable {
    public var tokens: [Int32] = []
    public var positions: [Int] = []
    public var segments: [Ops.Segment] = []
    /// Rows (into `tokens`) whose next-token log-probability is computed, and those next tokens.
    public var lossRows: [Int] = []
    public var targets: [Int32] = []
    /// For each loss row, the sequence (index into `segments`) it belongs to.
    public var lossSegment: [Int] = []

    public init() {}

    /// Appends a sequence whose tokens at `scored` positions (index ≥ 1) are predicted from the one before.
    public mutating func append(_ seq: [Int32], scored: [Bool]) {
        let start = tokens.count
        let s = segments.count
        segments.append(Ops.Segment(start: start, length: seq.count))
        tokens += seq
        positions += 0..<seq.count
        for i in 1..<max(1, seq.count) where scored[i] {
            lossRows.append(start + i - 1)
            targets.append(seq[i])
            lossSegment.append(s)
        }
    }
}

/// LoRA settings: rank, alpha (the update is scaled by alpha / rank), dropout on the adapted
/// input, and which projections of every block are adapted.
public struct LoRASettings: Sendable, Hashable, Codable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    public var targets: [Projection]
    public init(rank: Int = 16, alpha: Double = 32, dropout: Double = 0, targets: [Projection] = Projection.allCases) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
    }
    public var scale: Double { alpha / Double(rank) }
}

/// The llama forward pass with its activations saved, and its backward, for a packed batch.
///
/// With `lora` the base weights are frozen and only the adapters' A and B get gradients;
/// frozen matrices may stay as the GGUF stores them (`QuantMatrix`) or as bfloat16 tiles.
/// Without it the base weights are dense (`T`) copies of the GGUF's and every base tensor gets
/// a gradient (full fine-tuning). With `checkpointing` the forward keeps only each block's input
/// and the backward recomputes the rest of a block, bit for bit, just before it needs it.
public final class TrainingModel<T: TrainScalar>: @unchecked Sendable {
    public let shape: ModelShape
    public let base: ParameterStore<T>
    public let lora: ParameterStore<T>?
    public let loraSettings: LoRASettings?
    public let tiedOutput: Bool
    /// Which parameters get gradients: the adapters, or every base tensor.
    public var trainable: ParameterStore<T> { lora ?? base }
    /// Whether the frozen products run in bfloat16 on AMX tiles.
    public let usesBF16: Bool
    /// Whether the frozen matrices are read from the GGUF's blocks (no float copy).
    public let usesQuantized: Bool
    /// Whether each block's activations are recomputed in the backward (only block inputs kept).
    public let checkpointing: Bool
    /// The output head as a frozen matrix (bfloat16 tiles or the GGUF's blocks), when not dense.
    var outputPacked: (any FrozenMatrix)?
    /// The token embedding read from the GGUF's blocks, when it is not a dense copy.
    let embeddingRows: QuantMatrix?

    struct LayerWeights {
        var attnNorm, ffnNorm: UnsafeMutablePointer<T>
        var dAttnNorm, dFfnNorm: UnsafeMutablePointer<T>?
        var w: [Projection: UnsafeMutablePointer<T>]
        var dw: [Projection: UnsafeMutablePointer<T>]
        var bias: [Projection: UnsafeMutablePointer<T>]
        var dBias: [Projection: UnsafeMutablePointer<T>]
        var a: [Projection: UnsafeMutablePointer<T>]
        var b: [Projection: UnsafeMutablePointer<T>]
        var dA: [Projection: UnsafeMutablePointer<T>]
        var dB: [Projection: UnsafeMutablePointer<T>]
        /// Frozen projections held as bfloat16 tiles or quantized blocks instead of `w` (LoRA).
        var packed: [Projection: any FrozenMatrix]
        /// Gemma 3's norms: q and k per head, the attention's and the feed-forward's outputs.
        var qNorm, kNorm, postAttn, postFfn: UnsafeMutablePointer<T>?
        var dQNorm, dKNorm, dPostAttn, dPostFfn: UnsafeMutablePointer<T>?
    }
    let layerWeights: [LayerWeights]
    let embedding, output: UnsafeMutablePointer<T>?
    let outputNorm: UnsafeMutablePointer<T>
    let dEmbedding, dOutput, dOutputNorm: UnsafeMutablePointer<T>?

    /// The base tensors' names and shapes for a model (biases for the projections in `biases`;
    /// without the projection matrices when `matrices` is false).
    /// Without the embedding and output head when `embeddings` is false.
    public static func baseShapes(
        _ s: ModelShape, tied: Bool, biases: Set<Projection>, matrices: Bool = true,
        embeddings: Bool = true
    ) -> [(name: String, rows: Int, cols: Int)] {
        var out: [(String, Int, Int)] = []
        if embeddings { out.append(("token_embd.weight", s.vocabSize, s.dim)) }
        if embeddings && !tied { out.append(("output.weight", s.vocabSize, s.dim)) }
        out.append(("output_norm.weight", 1, s.dim))
        for l in 0..<s.layers {
            out.append(("blk.\(l).attn_norm.weight", 1, s.dim))
            out.append(("blk.\(l).ffn_norm.weight", 1, s.dim))
            if s.qkNorms {
                for name in ["attn_q_norm", "attn_k_norm"] { out.append(("blk.\(l).\(name).weight", 1, s.headDim)) }
            }
            if s.sandwichNorms {
                for name in ["post_attention_norm", "post_ffw_norm"] {
                    out.append(("blk.\(l).\(name).weight", 1, s.dim))
                }
            }
            for p in Projection.allCases {
                let (o, i) = p.shape(s)
                if matrices { out.append((p.tensorName(layer: l), o, i)) }
                if biases.contains(p) { out.append(("blk.\(l).\(p.ggufName).bias", 1, o)) }
            }
        }
        return out
    }

    /// The adapter tensors' names and shapes, as llama.cpp's LoRA GGUF names them.
    public static func loraShapes(_ s: ModelShape, _ settings: LoRASettings) -> [(name: String, rows: Int, cols: Int)] {
        var out: [(String, Int, Int)] = []
        for l in 0..<s.layers {
            for p in settings.targets {
                let (o, i) = p.shape(s)
                out.append((p.tensorName(layer: l) + ".lora_a", settings.rank, i))
                out.append((p.tensorName(layer: l) + ".lora_b", o, settings.rank))
            }
        }
        return out
    }

    /// A model over `base` (its tensors named as `baseShapes` names them); with `lora`, adapters
    /// (A random as PEFT initialises it, B zero) and gradients for them only.
    /// `packed`: frozen matrices (by tensor name) absent from `base`: projections, and the output
    /// head under its tensor's name (`output.weight`, or `token_embd.weight` when tied); a
    /// `QuantMatrix` named `token_embd.weight` also serves the embedding's lookups (LoRA only,
    /// `T` = Float).
    public init(
        shape: ModelShape, base: ParameterStore<T>, lora settings: LoRASettings?, seed: UInt64 = 0,
        packed: [String: any FrozenMatrix] = [:], checkpointing: Bool = false
    ) {
        precondition(
            packed.isEmpty || (T.self == Float.self && settings != nil), "frozen matrices are for LoRA in float32")
        self.shape = shape
        self.usesBF16 = packed.values.contains { $0 is BF16Matrix }
        self.usesQuantized = packed.values.contains { $0 is QuantMatrix }
        self.checkpointing = checkpointing
        self.base = base
        tiedOutput = base.entry("output.weight") == nil && packed["output.weight"] == nil
        embeddingRows = packed["token_embd.weight"] as? QuantMatrix
        outputPacked = packed[tiedOutput ? "token_embd.weight" : "output.weight"]
        loraSettings = settings
        if let settings {
            let store = ParameterStore<T>(Self.loraShapes(shape, settings), gradients: true)
            var rng = SplitMix64(seed: seed)
            for e in store.entries where e.name.hasSuffix(".lora_a") {
                // PEFT's default: kaiming_uniform(a = √5), i.e. U(−1/√in, 1/√in).
                let bound = 1 / Double(e.cols).squareRoot()
                let p = store.values.p + e.offset
                for i in 0..<e.count { p[i] = T(rng.uniform() * 2 * bound - bound) }
            }
            lora = store
        } else {
            lora = nil
        }
        let trainBase = settings == nil
        // Without LoRA and without base gradients the model is forward-only (evaluation).
        let loraStore = lora
        func g(_ name: String) -> UnsafeMutablePointer<T>? { trainBase ? base.grad(name) : nil }
        embedding = base.entry("token_embd.weight") != nil ? base.value("token_embd.weight") : nil
        dEmbedding = embedding != nil ? g("token_embd.weight") : nil
        output = tiedOutput ? embedding : base.entry("output.weight") != nil ? base.value("output.weight") : nil
        dOutput = tiedOutput ? dEmbedding : g("output.weight")
        outputNorm = base.value("output_norm.weight")
        dOutputNorm = g("output_norm.weight")
        layerWeights = (0..<shape.layers).map { l in
            var lw = LayerWeights(
                attnNorm: base.value("blk.\(l).attn_norm.weight"), ffnNorm: base.value("blk.\(l).ffn_norm.weight"),
                dAttnNorm: g("blk.\(l).attn_norm.weight"), dFfnNorm: g("blk.\(l).ffn_norm.weight"),
                w: [:], dw: [:], bias: [:], dBias: [:], a: [:], b: [:], dA: [:], dB: [:], packed: [:])
            if shape.qkNorms {
                let n = "blk.\(l)."
                lw.qNorm = base.value(n + "attn_q_norm.weight")
                lw.dQNorm = g(n + "attn_q_norm.weight")
                lw.kNorm = base.value(n + "attn_k_norm.weight")
                lw.dKNorm = g(n + "attn_k_norm.weight")
            }
            if shape.sandwichNorms {
                let n = "blk.\(l)."
                lw.postAttn = base.value(n + "post_attention_norm.weight")
                lw.dPostAttn = g(n + "post_attention_norm.weight")
                lw.postFfn = base.value(n + "post_ffw_norm.weight")
                lw.dPostFfn = g(n + "post_ffw_norm.weight")
            }
            for p in Projection.allCases {
                if let m = packed[p.tensorName(layer: l)] {
                    lw.packed[p] = m
                } else {
                    lw.w[p] = base.value(p.tensorName(layer: l))
                    lw.dw[p] = g(p.tensorName(layer: l))
                }
                let biasName = "blk.\(l).\(p.ggufName).bias"
                if base.entry(biasName) != nil {
                    lw.bias[p] = base.value(biasName)
                    lw.dBias[p] = g(biasName)
                }
            }
            if let store = loraStore, let settings {
                for p in settings.targets {
                    let n = p.tensorName(layer: l)
                    lw.a[p] = store.value(n + ".lora_a")
                    lw.b[p] = store.value(n + ".lora_b")
                    lw.dA[p] = store.grad(n + ".lora_a")
                    lw.dB[p] = store.grad(n + ".lora_b")
                }
            }
            return lw
        }
    }

    @inline(__always) static func float(_ p: UnsafePointer<T>) -> UnsafePointer<Float> {
        UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
    }
    @inline(__always) static func float(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
    }

    // MARK: saved activations

    /// What the forward pass keeps for the backward, sized for the batch it last ran. Per-layer
    /// buffers have one slot a layer, or one slot in all with checkpointing (filled again by
    /// the backward's recompute of each block).
    final class Activations {
        var rows = 0
        var residual: [Buffer<T>] = []  // layers + 1, rows × dim: each block's input, always kept
        /// The normed inputs and the SwiGLU output are recomputed in the backward (one buffer each,
        /// not one a layer): that saves (2 · dim + hidden) scalars a token and layer.
        var xn: Buffer<T>!, h: Buffer<T>!
        var rstd1: [Buffer<T>] = []
        var q: [Buffer<T>] = [], k: [Buffer<T>] = [], v: [Buffer<T>] = []
        var probs: [Buffer<T>] = []
        var att: [Buffer<T>] = [], x2: [Buffer<T>] = []
        var rstd2: [Buffer<T>] = []
        var g: [Buffer<T>] = [], u: [Buffer<T>] = []
        /// Per slot and adapted projection: x · Aᵀ (rows × rank).
        var xa: [[Projection: Buffer<T>]] = []
        /// Gemma 3: q and k before their norms, the attention's and the feed-forward's outputs
        /// before theirs, and the norms' reciprocal RMS (per slot).
        var qRaw: [Buffer<T>] = [], kRaw: [Buffer<T>] = [], rstdQ: [Buffer<T>] = [], rstdK: [Buffer<T>] = []
        var attnOut: [Buffer<T>] = [], ffnOut: [Buffer<T>] = [], rstdPA: [Buffer<T>] = [], rstdPF: [Buffer<T>] = []
        var xf: Buffer<T>!, rstdF: Buffer<T>!
        var headX: Buffer<T>!, lse: Buffer<T>!, logp: Buffer<T>!
        var dropoutKey: UInt64 = 0
    }
    var acts = Activations()
    var batch = PackedBatch()
    var cosines: [T] = [], sines: [T] = []
    /// The local (sliding-window) layers' rope tables, when their base differs.
    var localCosines: [T] = [], localSines: [T] = []
    /// Layer `l`'s rope tables.
    func ropeTables(_ l: Int) -> ([T], [T]) {
        shape.isLocal(l) && !localCosines.isEmpty ? (localCosines, localSines) : (cosines, sines)
    }
    /// The attention's scale when it is not 1/√headDim (nil: the op's own, bit for bit as before).
    var attentionScale: T? {
        shape.attentionScale == 1 / Double(shape.headDim).squareRoot() ? nil : T(shape.attentionScale)
    }
    var logitScratch: Buffer<T>?
    var scratch: Buffer<T>?

    /// The slot of layer `l`'s saved activations.
    @inline(__always) func slot(_ l: Int) -> Int { checkpointing ? 0 : l }

    func ensureActivations(rows: Int, probCount: Int) {
        let s = shape
        let a = acts
        let slots = checkpointing ? 1 : s.layers
        if a.rows < rows || a.residual.isEmpty {
            let n = max(rows, a.rows)
            a.rows = n
            a.residual = (0...s.layers).map { _ in Buffer(n * s.dim) }
            func per(_ w: Int) -> [Buffer<T>] { (0..<slots).map { _ in Buffer(n * w) } }
            a.xn = Buffer(n * s.dim)
            a.h = Buffer(n * s.hiddenDim)
            a.rstd1 = per(1)
            a.q = per(s.qDim)
            a.k = per(s.kvDim)
            a.v = per(s.kvDim)
            a.att = per(s.qDim)
            a.x2 = per(s.dim)
            a.rstd2 = per(1)
            if s.qkNorms {
                a.qRaw = per(s.qDim)
                a.kRaw = per(s.kvDim)
                a.rstdQ = per(s.heads)
                a.rstdK = per(s.kvHeads)
            }
            if s.sandwichNorms {
                a.attnOut = per(s.dim)
                a.ffnOut = per(s.dim)
                a.rstdPA = per(1)
                a.rstdPF = per(1)
            }
            a.g = per(s.hiddenDim)
            a.u = per(s.hiddenDim)
            a.xa = (0..<slots).map { _ in
                var d: [Projection: Buffer<T>] = [:]
                for p in loraSettings?.targets ?? [] { d[p] = Buffer(n * loraSettings!.rank) }
                return d
            }
            a.xf = Buffer(n * s.dim)
            a.rstdF = Buffer(n)
            a.headX = Buffer(n * s.dim)
            a.lse = Buffer(n)
            a.logp = Buffer(n)
            a.probs = []
        }
        if a.probs.isEmpty || a.probs[0].count < probCount {
            a.probs = (0..<slots).map { _ in Buffer(probCount) }
        }
    }

    /// Scalars of memory the activations and the backward's buffers take for a batch of `rows`
    /// tokens in sequences of at most `longest` (the estimate `prs train` checks before it starts).
    public static func activationScalars(
        _ s: ModelShape, rows: Int, longest: Int, lora: LoRASettings?, checkpointing: Bool
    ) -> Int {
        let slots = checkpointing ? 1 : s.layers
        let probs = s.heads * rows * min(rows, longest)  // Σ length² ≤ rows · longest
        let sandwich =
            (s.qkNorms ? rows * (s.qDim + s.kvDim + s.heads + s.kvHeads) : 0)
            + (s.sandwichNorms ? rows * (2 * s.dim + 2) : 0)
        let perSlot =
            rows
            * (2 + s.dim + 2 * s.qDim + 2 * s.kvDim + 2 * s.hiddenDim + (lora.map { $0.rank * $0.targets.count } ?? 0))
            + probs + sandwich
        let widest = max(s.dim, s.hiddenDim, s.qDim)
        let kept = (s.layers + 1) * rows * s.dim + rows * (s.dim + s.hiddenDim) + rows * (3 * s.dim + 3)
        let backward =
            rows * (2 * s.dim + 2 * s.qDim + 2 * s.kvDim + 3 * s.hiddenDim + max(1, lora?.rank ?? 1) + widest)
            + (s.sandwichNorms ? rows * s.dim : 0) + (s.qkNorms ? rows * (s.qDim + s.kvDim) : 0) + longest * longest
            + rows * widest
        return slots * perSlot + kept + backward
    }

    // MARK: forward

    /// Runs `batch` forward and returns the log-probability of each loss row's target.
    /// `dropoutKey` seeds the LoRA dropout masks (the backward regenerates them).
    public func forward(_ batch: PackedBatch, dropoutKey: UInt64 = 0) -> [T] {
        let s = shape
        let rows = batch.tokens.count
        self.batch = batch
        ensureActivations(rows: rows, probCount: Ops.attentionProbabilityCount(batch.segments, heads: s.heads))
        let a = acts
        a.dropoutKey = dropoutKey
        (cosines, sines) = Ops.ropeTables(batch.positions, ropeDim: s.ropeDim, base: s.ropeBase, scaling: s.ropeScaling)
        if s.slidingWindow != nil && s.localRopeBase != s.ropeBase {
            (localCosines, localSines) = Ops.ropeTables(batch.positions, ropeDim: s.ropeDim, base: s.localRopeBase)
        }
        if let embedding {
            Ops.embeddingForward(batch.tokens, embedding, s.dim, a.residual[0].p)
        } else if let rowsOf = embeddingRows {
            for (t, id) in batch.tokens.enumerated() {
                rowsOf.row(Int(id), into: Self.float(a.residual[0].p + t * s.dim))
            }
        }
        if let scale = s.embeddingScale {
            let x = a.residual[0].p
            let f = T(scale)
            for j in 0..<(rows * s.dim) { x[j] *= f }
        }
        for l in 0..<s.layers { blockForward(l, rows, next: a.residual[l + 1].p) }
        Ops.rmsNormForward(a.residual[s.layers].p, outputNorm, rows, s.dim, T(s.normEps), a.xf.p, a.rstdF.p)
        let n = batch.lossRows.count
        for (i, r) in batch.lossRows.enumerated() {
            (a.headX.p + i * s.dim).update(from: a.xf.p + r * s.dim, count: s.dim)
        }
        let logits = logitBuffer()
        if let m = outputPacked {
            Ops.headForward(
                a.headX.p, n, s.dim, s.vocabSize, batch.targets, logits.p, a.logp.p, a.lse.p, chunk: headRows
            ) { xs, rows, out in
                m.multiply(Self.float(xs), rows, Self.float(out), accumulate: false)
            }
        } else {
            Ops.headForward(a.headX.p, n, s.dim, output!, s.vocabSize, batch.targets, logits.p, a.logp.p, a.lse.p)
        }
        return Array(UnsafeBufferPointer(start: a.logp.p, count: n))
    }

    /// Block `l` from its input `residual[l]`, its activations into slot `slot(l)`; its output
    /// into `next` (nil: not written, when the backward recomputes the block).
    func blockForward(_ l: Int, _ rows: Int, next: UnsafeMutablePointer<T>?) {
        let s = shape
        let a = acts
        let w = layerWeights[l]
        let i = slot(l)
        let eps = T(s.normEps)
        let tmp = scratchBuffer(rows * max(s.dim, s.hiddenDim, s.qDim))
        let x = a.residual[l].p
        let sandwich = s.sandwichNorms
        Ops.rmsNormForward(x, w.attnNorm, rows, s.dim, eps, a.xn.p, a.rstd1[i].p)
        if s.qkNorms {
            // Gemma 3 and Qwen3: q and k normed per head (one headDim-wide weight each) before rope.
            project(.q, l, a.xn.p, rows, a.qRaw[i].p)
            project(.k, l, a.xn.p, rows, a.kRaw[i].p)
            Ops.rmsNormForward(a.qRaw[i].p, w.qNorm!, rows * s.heads, s.headDim, eps, a.q[i].p, a.rstdQ[i].p)
            Ops.rmsNormForward(a.kRaw[i].p, w.kNorm!, rows * s.kvHeads, s.headDim, eps, a.k[i].p, a.rstdK[i].p)
        } else {
            project(.q, l, a.xn.p, rows, a.q[i].p)
            project(.k, l, a.xn.p, rows, a.k[i].p)
        }
        project(.v, l, a.xn.p, rows, a.v[i].p)
        let (cs, sn) = ropeTables(l)
        Ops.rope(a.q[i].p, rows, heads: s.heads, headDim: s.headDim, ropeDim: s.ropeDim, cs, sn, halves: s.ropeHalves)
        Ops.rope(a.k[i].p, rows, heads: s.kvHeads, headDim: s.headDim, ropeDim: s.ropeDim, cs, sn, halves: s.ropeHalves)
        Ops.attentionForward(
            a.q[i].p, a.k[i].p, a.v[i].p, batch.segments, heads: s.heads, kvHeads: s.kvHeads, headDim: s.headDim,
            scale: attentionScale, window: s.isLocal(l) ? s.slidingWindow : nil, a.probs[i].p, a.att[i].p)
        if sandwich {
            project(.o, l, a.att[i].p, rows, a.attnOut[i].p)
            Ops.rmsNormForward(a.attnOut[i].p, w.postAttn!, rows, s.dim, eps, tmp.p, a.rstdPA[i].p)
        } else {
            project(.o, l, a.att[i].p, rows, tmp.p)
        }
        let x2 = a.x2[i].p
        for j in 0..<(rows * s.dim) { x2[j] = x[j] + tmp.p[j] }
        Ops.rmsNormForward(x2, w.ffnNorm, rows, s.dim, eps, a.xn.p, a.rstd2[i].p)
        project(.gate, l, a.xn.p, rows, a.g[i].p)
        project(.up, l, a.xn.p, rows, a.u[i].p)
        activation(a.g[i].p, a.u[i].p, rows * s.hiddenDim, a.h.p)
        if sandwich {
            // The feed-forward's output is needed (for its norm's backward) even when recomputing.
            project(.down, l, a.h.p, rows, a.ffnOut[i].p)
            Ops.rmsNormForward(a.ffnOut[i].p, w.postFfn!, rows, s.dim, eps, tmp.p, a.rstdPF[i].p)
            if let next { for j in 0..<(rows * s.dim) { next[j] = x2[j] + tmp.p[j] } }
            return
        }
        guard let next else {
            // Recomputed for the backward: of the down projection only its adapter's x · Aᵀ is saved.
            if let ad = w.a[.down], let settings = loraSettings {
                let input = dropped(a.h.p, rows, s.hiddenDim, .down, l)
                T.gemm(
                    false, true, rows, settings.rank, s.hiddenDim, 1, input, s.hiddenDim, ad, s.hiddenDim, 0,
                    a.xa[i][.down]!.p, settings.rank)
            }
            return
        }
        project(.down, l, a.h.p, rows, tmp.p)
        for j in 0..<(rows * s.dim) { next[j] = x2[j] + tmp.p[j] }
    }

    /// The feed-forward's gated activation: SwiGLU, or GeGLU (Gemma).
    func activation(_ g: UnsafePointer<T>, _ u: UnsafePointer<T>, _ n: Int, _ h: UnsafeMutablePointer<T>) {
        if shape.geglu { Ops.gegluForward(g, u, n, h) } else { Ops.swigluForward(g, u, n, h) }
    }

    /// Rows of the output head evaluated together: more when the head is expanded from quantized
    /// blocks (each pass over it expands the whole matrix), within about 8 MB of logits.
    var headRows: Int {
        outputPacked is QuantMatrix ? max(Ops.headChunk, min(256, (8 << 20) / max(1, shape.vocabSize))) : Ops.headChunk
    }

    /// y = x · Wᵀ (+ bias) (+ s · drop(x) · Aᵀ · Bᵀ) for projection `p` of layer `l`.
    func project(_ p: Projection, _ l: Int, _ x: UnsafePointer<T>, _ rows: Int, _ y: UnsafeMutablePointer<T>) {
        let (outDim, inDim) = p.shape(shape)
        let w = layerWeights[l]
        if let m = w.packed[p] {
            m.multiply(Self.float(x), rows, Self.float(y), accumulate: false)
        } else {
            Ops.linearForward(x, rows, inDim, w.w[p]!, outDim, y)
        }
        if let bias = w.bias[p] {
            for r in 0..<rows {
                let yr = y + r * outDim
                for j in 0..<outDim { yr[j] += bias[j] }
            }
        }
        if let a = w.a[p], let b = w.b[p], let settings = loraSettings {
            let input = dropped(x, rows, inDim, p, l)
            Ops.loraForward(
                input, rows, inDim, a, b, settings.rank, outDim, T(settings.scale), acts.xa[slot(l)][p]!.p, y)
        }
    }

    /// The LoRA input after dropout (x itself without dropout); masks come from a counter-based
    /// hash of the batch's key, the layer, the projection and the element, so the backward
    /// regenerates them.
    func dropped(_ x: UnsafePointer<T>, _ rows: Int, _ inDim: Int, _ p: Projection, _ l: Int) -> UnsafePointer<T> {
        guard let settings = loraSettings, settings.dropout > 0 else { return x }
        let buf = dropoutBuffer(rows * inDim)
        for i in 0..<(rows * inDim) { buf.p[i] = x[i] * dropoutFactor(p, l, i) }
        return UnsafePointer(buf.p)
    }

    /// Element `i`'s dropout factor for projection `p` of layer `l` in this batch: 0, or 1/keep.
    @inline(__always) func dropoutFactor(_ p: Projection, _ l: Int, _ i: Int) -> T {
        let keep = 1 - loraSettings!.dropout
        let key =
            acts.dropoutKey &+ UInt64(l) &* 0x9E37_79B9 &+ UInt64(Projection.allCases.firstIndex(of: p)!) &* 0x85EB_CA6B
        return SplitMix64.unit(key, UInt64(i)) < keep ? T(1 / keep) : 0
    }

    var dropoutScratch: Buffer<T>?
    func dropoutBuffer(_ n: Int) -> Buffer<T> {
        if let b = dropoutScratch, b.count >= n { return b }
        let b = Buffer<T>(n)
        dropoutScratch = b
        return b
    }
    func scratchBuffer(_ n: Int) -> Buffer<T> {
        if let b = scratch, b.count >= n { return b }
        let b = Buffer<T>(n)
        scratch = b
        return b
    }
    func logitBuffer() -> Buffer<T> {
        if let b = logitScratch { return b }
        let b = Buffer<T>(headRows * shape.vocabSize)
        logitScratch = b
        return b
    }

    // MARK: backward

    final class Gradients {
        var rows = 0
        var dx, dxn, dq, dk, dv, datt, dg, du, dh, dxa, dS, tmp: Buffer<T>!
        /// Gemma 3: the gradients of q and k before their norms, and of a sublayer's output before its norm.
        var dqRaw, dkRaw, dOut: Buffer<T>!
    }
    var grads = Gradients()

    /// Accumulates into the trainable parameters' gradients the gradient of a loss whose
    /// derivative with respect to the last forward's log-probabilities is `dLogp`.
    public func backward(_ dLogp: [T]) {
        let s = shape
        let rows = batch.tokens.count
        let a = acts
        precondition(dLogp.count == batch.lossRows.count)
        let gr = grads
        if gr.rows < rows || gr.dx == nil {
            gr.rows = rows
            gr.dx = Buffer(rows * s.dim)
            gr.dxn = Buffer(rows * s.dim)
            gr.dq = Buffer(rows * s.qDim)
            gr.dk = Buffer(rows * s.kvDim)
            gr.dv = Buffer(rows * s.kvDim)
            gr.datt = Buffer(rows * s.qDim)
            gr.dg = Buffer(rows * s.hiddenDim)
            gr.du = Buffer(rows * s.hiddenDim)
            gr.dh = Buffer(rows * s.hiddenDim)
            gr.dxa = Buffer(rows * max(1, loraSettings?.rank ?? 1))
            gr.tmp = Buffer(rows * max(s.dim, s.hiddenDim, s.qDim))
            if s.qkNorms {
                gr.dqRaw = Buffer(rows * s.qDim)
                gr.dkRaw = Buffer(rows * s.kvDim)
            }
            if s.sandwichNorms { gr.dOut = Buffer(rows * s.dim) }
        }
        let maxL = batch.segments.map(\.length).max() ?? 1
        if gr.dS == nil || gr.dS.count < maxL * maxL { gr.dS = Buffer(maxL * maxL) }
        let n = batch.lossRows.count
        // Head: the gradient of the selected rows, scattered back into the final norm's output.
        let dHead = scratchBuffer(max(1, n) * s.dim)
        dHead.p.update(repeating: 0, count: n * s.dim)
        dLogp.withUnsafeBufferPointer { g in
            if let m = outputPacked {
                Ops.headBackward(
                    a.headX.p, n, s.dim, s.vocabSize, batch.targets, a.lse.p, g.baseAddress!, logitBuffer().p, dHead.p,
                    nil,
                    chunk: headRows,
                    product: { xs, rows, out in m.multiply(Self.float(xs), rows, Self.float(out), accumulate: false) },
                    productT: { dl, rows, out in
                        m.multiplyTransposed(Self.float(dl), rows, Self.float(out), accumulate: true)
                    })
            } else {
                Ops.headBackward(
                    a.headX.p, n, s.dim, output!, s.vocabSize, batch.targets, a.lse.p, g.baseAddress!, logitBuffer().p,
                    dHead.p, dOutput)
            }
        }
        let dxf = gr.dxn!
        dxf.p.update(repeating: 0, count: rows * s.dim)
        for (i, r) in batch.lossRows.enumerated() {
            let d = dxf.p + r * s.dim
            let src = dHead.p + i * s.dim
            for j in 0..<s.dim { d[j] += src[j] }
        }
        let dx = gr.dx!
        dx.p.update(repeating: 0, count: rows * s.dim)
        Ops.rmsNormBackward(dxf.p, a.residual[s.layers].p, outputNorm, a.rstdF.p, rows, s.dim, dx.p, dOutputNorm)
        for l in stride(from: s.layers - 1, through: 0, by: -1) {
            let w = layerWeights[l]
            let i = slot(l)
            if checkpointing { blockForward(l, rows, next: nil) }  // the block's activations, bit for bit
            // Feed-forward: x_{l+1} = x2 + down(act(gate(xn2), up(xn2))), Gemma's with the output normed.
            gr.dh.p.update(repeating: 0, count: rows * s.hiddenDim)
            let eps = T(s.normEps)
            let sandwich = s.sandwichNorms
            activation(a.g[i].p, a.u[i].p, rows * s.hiddenDim, a.h.p)  // recomputed, bit for bit
            if sandwich {
                gr.dOut.p.update(repeating: 0, count: rows * s.dim)
                Ops.rmsNormBackward(dx.p, a.ffnOut[i].p, w.postFfn!, a.rstdPF[i].p, rows, s.dim, gr.dOut.p, w.dPostFfn)
                projectBackward(.down, l, gr.dOut.p, a.h.p, rows, gr.dh.p)
            } else {
                projectBackward(.down, l, dx.p, a.h.p, rows, gr.dh.p)
            }
            if s.geglu {
                Ops.gegluBackward(gr.dh.p, a.g[i].p, a.u[i].p, rows * s.hiddenDim, gr.dg.p, gr.du.p)
            } else {
                Ops.swigluBackward(gr.dh.p, a.g[i].p, a.u[i].p, rows * s.hiddenDim, gr.dg.p, gr.du.p)
            }
            gr.dxn.p.update(repeating: 0, count: rows * s.dim)
            Ops.rmsNormForward(a.x2[i].p, w.ffnNorm, rows, s.dim, eps, a.xn.p, a.rstd2[i].p)
            projectBackward(.gate, l, gr.dg.p, a.xn.p, rows, gr.dxn.p)
            projectBackward(.up, l, gr.du.p, a.xn.p, rows, gr.dxn.p)
            Ops.rmsNormBackward(gr.dxn.p, a.x2[i].p, w.ffnNorm, a.rstd2[i].p, rows, s.dim, dx.p, w.dFfnNorm)
            // Attention: x2 = x + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1))), Gemma's with q, k
            // normed per head and the output normed.
            gr.datt.p.update(repeating: 0, count: rows * s.qDim)
            if sandwich {
                gr.dOut.p.update(repeating: 0, count: rows * s.dim)
                Ops.rmsNormBackward(
                    dx.p, a.attnOut[i].p, w.postAttn!, a.rstdPA[i].p, rows, s.dim, gr.dOut.p, w.dPostAttn)
                projectBackward(.o, l, gr.dOut.p, a.att[i].p, rows, gr.datt.p)
            } else {
                projectBackward(.o, l, dx.p, a.att[i].p, rows, gr.datt.p)
            }
            gr.dq.p.update(repeating: 0, count: rows * s.qDim)
            gr.dk.p.update(repeating: 0, count: rows * s.kvDim)
            gr.dv.p.update(repeating: 0, count: rows * s.kvDim)
            Ops.attentionBackward(
                gr.datt.p, a.q[i].p, a.k[i].p, a.v[i].p, a.probs[i].p, batch.segments, heads: s.heads,
                kvHeads: s.kvHeads, headDim: s.headDim, scale: attentionScale, gr.dq.p, gr.dk.p, gr.dv.p, gr.dS.p)
            let (cs, sn) = ropeTables(l)
            Ops.rope(
                gr.dq.p, rows, heads: s.heads, headDim: s.headDim, ropeDim: s.ropeDim, cs, sn, inverse: true,
                halves: s.ropeHalves)
            Ops.rope(
                gr.dk.p, rows, heads: s.kvHeads, headDim: s.headDim, ropeDim: s.ropeDim, cs, sn, inverse: true,
                halves: s.ropeHalves)
            var dq = gr.dq.p
            var dk = gr.dk.p
            if s.qkNorms {
                gr.dqRaw.p.update(repeating: 0, count: rows * s.qDim)
                gr.dkRaw.p.update(repeating: 0, count: rows * s.kvDim)
                Ops.rmsNormBackward(
                    gr.dq.p, a.qRaw[i].p, w.qNorm!, a.rstdQ[i].p, rows * s.heads, s.headDim, gr.dqRaw.p, w.dQNorm)
                Ops.rmsNormBackward(
                    gr.dk.p, a.kRaw[i].p, w.kNorm!, a.rstdK[i].p, rows * s.kvHeads, s.headDim, gr.dkRaw.p, w.dKNorm)
                dq = gr.dqRaw.p
                dk = gr.dkRaw.p
            }
            gr.dxn.p.update(repeating: 0, count: rows * s.dim)
            Ops.rmsNormForward(a.residual[l].p, w.attnNorm, rows, s.dim, eps, a.xn.p, a.rstd1[i].p)
            projectBackward(.q, l, dq, a.xn.p, rows, gr.dxn.p)
            projectBackward(.k, l, dk, a.xn.p, rows, gr.dxn.p)
            projectBackward(.v, l, gr.dv.p, a.xn.p, rows, gr.dxn.p)
            Ops.rmsNormBackward(gr.dxn.p, a.residual[l].p, w.attnNorm, a.rstd1[i].p, rows, s.dim, dx.p, w.dAttnNorm)
        }
        if dEmbedding != nil, let scale = s.embeddingScale {
            let f = T(scale)
            for j in 0..<(rows * s.dim) { dx.p[j] *= f }
        }
        if let dEmbedding { Ops.embeddingBackward(batch.tokens, dx.p, s.dim, dEmbedding) }
    }

    /// The backward of `project`: dx += dy · W (+ the adapter's part), and the trainable
    /// gradients (W and bias when fine-tuning fully, A and B with LoRA).
    func projectBackward(
        _ p: Projection, _ l: Int, _ dy: UnsafePointer<T>, _ x: UnsafePointer<T>, _ rows: Int,
        _ dx: UnsafeMutablePointer<T>
    ) {
        let (outDim, inDim) = p.shape(shape)
        let w = layerWeights[l]
        if let m = w.packed[p] {
            m.multiplyTransposed(Self.float(dy), rows, Self.float(dx), accumulate: true)
        } else {
            Ops.linearBackward(dy, x, rows, inDim, w.w[p]!, outDim, dx, w.dw[p])
        }
        if let db = w.dBias[p] {
            for r in 0..<rows {
                let g = dy + r * outDim
                for j in 0..<outDim { db[j] += g[j] }
            }
        }
        if let a = w.a[p], let b = w.b[p], let settings = loraSettings {
            let input = dropped(x, rows, inDim, p, l)
            if settings.dropout > 0 {
                // dx += (dxa · A) ⊙ mask / keep: the same mask as the forward.
                let tmp = grads.tmp!
                tmp.p.update(repeating: 0, count: rows * inDim)
                Ops.loraBackward(
                    dy, input, acts.xa[slot(l)][p]!.p, rows, inDim, a, b, settings.rank, outDim, T(settings.scale),
                    w.dA[p]!, w.dB[p]!, grads.dxa.p, tmp.p)
                for i in 0..<(rows * inDim) { dx[i] += tmp.p[i] * dropoutFactor(p, l, i) }
            } else {
                Ops.loraBackward(
                    dy, input, acts.xa[slot(l)][p]!.p, rows, inDim, a, b, settings.rank, outDim, T(settings.scale),
                    w.dA[p]!, w.dB[p]!, grads.dxa.p, dx)
            }
        }
    }
}
