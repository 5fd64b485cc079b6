import GGUF

/// Hyperparameters of a decoder-only transformer of the llama family, read from GGUF metadata
/// (`<arch>.*` keys), never assumed for one model; what an architecture's files leave out comes
/// from its own file (Gemma.swift), as llama.cpp fills it in.
public struct LlamaConfig: Sendable, Hashable {
    public var architecture: String
    public var layers: Int
    public var dim: Int
    public var hiddenDim: Int
    public var heads: Int
    public var kvHeads: Int
    /// Width of one attention head (`attention.key_length`, else dim / heads).
    public var headDim: Int
    public var ropeDim: Int
    public var ropeBase: Float
    /// Rope scaling of the global layers (`rope.scaling.*`, `rope_freqs.weight`).
    public var ropeScaling = RopeScaling()
    public var normEps: Float
    public var contextLength: Int
    public var vocabSize: Int

    /// How rotary embeddings pair a head's dimensions: adjacent (2i, 2i+1), as GGUF llama weights are
    /// permuted for, or split halves (i, i + ropeDim/2), ggml's NEOX mode.
    public enum RopePairs: Sendable, Hashable { case adjacent, halves }
    public var ropePairs: RopePairs = .adjacent
    /// The feed-forward gate's activation: SiLU (SwiGLU) or GELU with the tanh approximation (GeGLU).
    public enum Activation: Sendable, Hashable { case silu, geluTanh }
    public var activation: Activation = .silu
    /// Multiplies the token embedding (Gemma: √dim); nil: none.
    public var embeddingScale: Float? = nil
    /// The scale of q·k.
    public var attentionScale: Float
    /// Whether the scale multiplies the query before q·k (Gemma, as llama.cpp builds it) rather
    /// than the product; the two round differently with the query kept in F16 precision.
    public var scalesQuery = false
    /// Sliding-window attention: a token on a local layer attends to the last `slidingWindow`
    /// positions, its own included; nil: every layer is global.
    public var slidingWindow: Int? = nil
    /// Which layers are local (sliding-window), by index; empty when none is.
    public var localLayers: [Bool] = []
    /// The rope base of the local layers.
    public var localRopeBase: Float
    /// RMSNorm of the attention and feed-forward outputs before each residual (Gemma 2 and 3).
    public var postNorms: Bool = false
    /// Per-head RMSNorm of q and k before rope (Gemma 3, Qwen3).
    public var qkNorms: Bool = false
    /// Soft-capping of attention scores, cap · tanh(s / cap), before the softmax (Gemma 2); 0: none.
    public var attentionSoftcap: Float = 0
    /// Soft-capping of the output logits (Gemma 2; Gemma 3 files may set it); 0: none.
    public var finalLogitSoftcap: Float = 0
    /// Gemma 3's four extra norms (q, k, post-attention, post-FFN).
    public var sandwichNorms: Bool { postNorms && qkNorms }

    /// Width of the query and attention output (heads × headDim; may differ from dim).
    public var qDim: Int { heads * headDim }
    public func isLocal(_ layer: Int) -> Bool {
        slidingWindow != nil && layer < localLayers.count && localLayers[layer]
    }

    public static let supported = ["llama", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"]

    /// The `ARCH.*` metadata keys prs reads (or that change nothing in the forward pass). Any
    /// other is refused at load, naming it: a key llama.cpp uses that prs ignored would run the
    /// model subtly wrong (a soft-cap, a norm of another kind, experts, a scaling it lacks).
    static let knownKeys: Set<String> = [
        "context_length", "embedding_length", "block_count", "feed_forward_length", "vocab_size",
        "attention.head_count", "attention.head_count_kv", "attention.layer_norm_rms_epsilon",
        "attention.key_length", "attention.value_length", "rope.dimension_count", "rope.freq_base",
        "rope.scaling.type", "rope.scaling.factor", "rope.scale_linear", "rope.scaling.original_context_length",
        "rope.scaling.attn_factor", "rope.scaling.finetuned",
    ]
    static let knownKeysByArchitecture: [String: Set<String>] = [
        "gemma2": ["attention.sliding_window", "attn_logit_softcapping", "final_logit_softcapping"],
        "gemma3": ["attention.sliding_window", "final_logit_softcapping"],
        // llama.cpp reads Phi-3's window and then turns sliding-window attention off for the
        // architecture (every layer global); prs does the same, so the key changes nothing.
        "phi3": ["attention.sliding_window"],
    ]

    public init(gguf c: GGUFContent) throws {
        guard let arch = c["general.architecture"]?.string else { throw ModelError("general.architecture is missing") }
        guard Self.supported.contains(arch) else {
            throw ModelError(
                "architecture \"\(arch)\" is not supported (prs runs \(Self.supported.joined(separator: ", ")))")
        }
        let known = Self.knownKeys.union(Self.knownKeysByArchitecture[arch] ?? [])
        for m in c.metadata where m.key.hasPrefix(arch + ".") {
            let key = String(m.key.dropFirst(arch.count + 1))
            if known.contains(key) { continue }
            // Mixture-of-experts counts of zero say "dense" and change nothing.
            if key == "expert_count" || key == "expert_used_count", m.value.integer == 0 { continue }
            throw ModelError(
                "\(m.key) is set, and prs does not implement what it changes in \(arch)'s forward pass; refusing the "
                    + "file rather than ignoring it"
            )
        }
        func int(_ key: String, default d: Int? = nil) throws -> Int {
            guard let v = c["\(arch).\(key)"] else {
                if let d { return d }
                throw ModelError("\(arch).\(key) is missing")
            }
            guard let i = v.integer else {
                throw ModelError("\(arch).\(key) must be an integer, found \(v.typeDescription)")
            }
            return i
        }
        func float(_ key: String, default d: Float) throws -> Float {
            guard let v = c["\(arch).\(key)"] else { return d }
            guard let f = v.float else {
                throw ModelError("\(arch).\(key) must be a float, found \(v.typeDescription)")
            }
            return Float(f)
        }
        architecture = arch
        layers = try int("block_count")
        dim = try int("embedding_length")
        hiddenDim = try int("feed_forward_length")
        heads = try int("attention.head_count")
        kvHeads = try int("attention.head_count_kv", default: heads)
        guard layers > 0, dim > 0, hiddenDim > 0 else {
            throw ModelError("\(arch): block_count, embedding_length and feed_forward_length must be positive")
        }
        guard heads > 0 else { throw ModelError("\(arch).attention.head_count is \(heads); it must be positive") }
        guard kvHeads > 0, heads % kvHeads == 0 else {
            throw ModelError(
                "\(arch).attention.head_count_kv is \(kvHeads); it must be positive and divide head_count \(heads)")
        }
        if c["\(arch).attention.key_length"] != nil {
            headDim = try int("attention.key_length")
            let valueLength = try int("attention.value_length", default: headDim)
            guard headDim > 0, valueLength == headDim else {
                throw ModelError(
                    "\(arch).attention.key_length \(headDim) and value_length \(valueLength) must be equal and positive"
                )
            }
        } else {
            guard dim % heads == 0 else {
                throw ModelError("\(arch).embedding_length \(dim) is not a multiple of head_count \(heads)")
            }
            headDim = dim / heads
        }
        guard headDim <= 256 else { throw ModelError("\(arch): head size \(headDim) is over the 256 prs supports") }
        ropeDim = try int("rope.dimension_count", default: headDim)
        guard ropeDim > 0, ropeDim <= headDim, ropeDim % 2 == 0 else {
            throw ModelError(
                "\(arch).rope.dimension_count \(ropeDim) must be even and at most the head size \(headDim)")
        }
        ropeBase = try float("rope.freq_base", default: 10000)
        normEps = try float("attention.layer_norm_rms_epsilon", default: 1e-5)
        contextLength = try int("context_length", default: 4096)
        ropeScaling = try RopeScaling.read(c, arch: arch, contextLength: contextLength)
        guard case .strings(let tokens)? = c["tokenizer.ggml.tokens"]?.array else {
            throw ModelError("tokenizer.ggml.tokens is missing")
        }
        vocabSize = tokens.count
        attentionScale = 1 / Float(headDim).squareRoot()
        localRopeBase = ropeBase
        if arch == "gemma3" { try applyGemma3(int: int, float: float) }
        if arch == "gemma2" { try applyGemma2(int: int, float: float) }
        // Qwen2 and Qwen3 rotate pairs split in halves (llama.cpp's NEOX rope type; their
        // converter leaves q/k rows unpermuted); Qwen3 norms q and k per head before rope.
        if arch == "qwen2" || arch == "qwen3" { ropePairs = .halves }
        if arch == "qwen3" { qkNorms = true }
        // Phi-3: NEOX pairs, the query scaled by 1/√head before q·k (as llama.cpp builds it); its
        // fused q/k/v and gate/up tensors and rope factor tensors are read by LlamaModel.
        if arch == "phi3" {
            ropePairs = .halves
            scalesQuery = true
        }
    }
}

/// A model that cannot be loaded or run, with what is wrong.
public struct ModelError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
