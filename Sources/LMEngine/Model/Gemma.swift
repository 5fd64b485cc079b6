import GGUF

/// Gemma 2 (`gemma2`) and Gemma 3 (`gemma3`): what differs from llama, and the values their files
/// leave out, which llama.cpp supplies for the architecture.
///
/// Both: NEOX rope; GeGLU; the embedding scaled by √dim; the query by 1/√head width (1/√(dim/heads)
/// for the largest model: Gemma 2's 46-layer and Gemma 3's 62-layer 27B); post-attention and
/// post-FFN norms; the norm weights used as stored (the converter has already added Gemma's 1).
/// Gemma 2: every other layer local (sliding window, 4096 unless the file says), the first of
/// them local; attention scores and output logits soft-capped (50 and 30 unless the file says).
/// Gemma 3: every sixth layer global and the other five local, the local ones with rope base
/// 10,000; per-head RMSNorm of q and k; no attention soft-cap, and the logits' only when the file sets it.
extension LlamaConfig {
    /// Gemma 3's local:global pattern: layer i is global when i % 6 == 5.
    static let gemma3Pattern = 6
    /// Gemma 2's: layer i is global when i % 2 == 1.
    static let gemma2Pattern = 2

    private mutating func applyGemma(largest: Bool) {
        ropePairs = .halves
        activation = .geluTanh
        embeddingScale = Float(dim).squareRoot()
        postNorms = true
        scalesQuery = true
        attentionScale = largest ? 1 / Float(dim / heads).squareRoot() : 1 / Float(headDim).squareRoot()
    }

    private mutating func localLayers(window: Int, pattern: Int) {
        slidingWindow = window
        localLayers = (0..<layers).map { $0 % pattern < pattern - 1 }
    }

    mutating func applyGemma3(int: (String, Int?) throws -> Int, float: (String, Float) throws -> Float) throws {
        applyGemma(largest: layers == 62)
        qkNorms = true
        finalLogitSoftcap = try float("final_logit_softcapping", 0)
        let window = try int("attention.sliding_window", 0)
        if window > 0 {
            localLayers(window: window, pattern: Self.gemma3Pattern)
            localRopeBase = 10_000
        }
    }

    mutating func applyGemma2(int: (String, Int?) throws -> Int, float: (String, Float) throws -> Float) throws {
        applyGemma(largest: layers == 46)
        attentionSoftcap = try float("attn_logit_softcapping", 50)
        finalLogitSoftcap = try float("final_logit_softcapping", 30)
        let window = try int("attention.sliding_window", 4096)
        guard window > 0 else { throw ModelError("gemma2.attention.sliding_window is \(window); it must be positive") }
        guard attentionSoftcap >= 0, finalLogitSoftcap >= 0 else {
            throw ModelError(
                "gemma2: attn_logit_softcapping \(attentionSoftcap) and final_logit_softcapping \(finalLogitSoftcap) "
                    + "must not be negative"
            )
        }
        localLayers(window: window, pattern: Self.gemma2Pattern)
    }
}

extension LlamaModel {
    /// The per-layer norms beyond llama's: q and k (one head wide; Gemma 3, Qwen3), post-attention
    /// and post-FFN (Gemma 2 and 3).
    static func extraNorms(
        _ file: GGUFFile, layer i: Int, _ c: LlamaConfig,
        _ vector: (String, Int) throws -> [Float]
    ) throws -> Layer.Sandwich? {
        guard c.qkNorms || c.postNorms else { return nil }
        let p = "blk.\(i)."
        return Layer.Sandwich(
            qNorm: c.qkNorms ? try vector(p + "attn_q_norm.weight", c.headDim) : nil,
            kNorm: c.qkNorms ? try vector(p + "attn_k_norm.weight", c.headDim) : nil,
            postAttention: c.postNorms ? try vector(p + "post_attention_norm.weight", c.dim) : nil,
            postFFN: c.postNorms ? try vector(p + "post_ffw_norm.weight", c.dim) : nil)
    }
}
