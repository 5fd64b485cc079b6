import GGUF

/// Gemma 3 (`gemma3`): what differs from llama, and the values its files leave out, which
/// llama.cpp supplies for the architecture: every sixth layer global and the other five local
/// (sliding window), local layers with rope base 10,000, the query scaled by 1/√head width
/// (1/√(dim/heads) for the 62-layer 27B), the embedding by √dim; NEOX rope; GeGLU; per-head
/// RMSNorm of q and k; post-attention and post-FFN norms; the norm weights used as stored
/// (the converter has already added Gemma's 1).
extension LlamaConfig {
    /// The local:global pattern: layer i is global when i % 6 == 5.
    static let gemma3Pattern = 6

    mutating func applyGemma3(int: (String, Int?) throws -> Int, float: (String, Float) throws -> Float) throws {
        ropePairs = .halves
        activation = .geluTanh
        embeddingScale = Float(dim).squareRoot()
        sandwichNorms = true
        scalesQuery = true
        attentionScale = layers == 62 ? 1 / Float(dim / heads).squareRoot() : 1 / Float(headDim).squareRoot()
        let window = try int("attention.sliding_window", 0)
        if window > 0 {
            slidingWindow = window
            localLayers = (0..<layers).map { $0 % Self.gemma3Pattern < Self.gemma3Pattern - 1 }
            localRopeBase = 10_000
        }
    }
}

extension LlamaModel {
    /// Gemma 3's per-layer tensors beyond llama's: q and k norms (one head wide), post-attention and post-FFN norms.
    static func sandwichNorms(_ file: GGUFFile, layer i: Int, _ c: LlamaConfig,
                              _ vector: (String, Int) throws -> [Float]) throws -> Layer.Sandwich {
        let p = "blk.\(i)."
        return Layer.Sandwich(qNorm: try vector(p + "attn_q_norm.weight", c.headDim),
                              kNorm: try vector(p + "attn_k_norm.weight", c.headDim),
                              postAttention: c.sandwichNorms ? try vector(p + "post_attention_norm.weight", c.dim) : nil,
                              postFFN: c.sandwichNorms ? try vector(p + "post_ffw_norm.weight", c.dim) : nil)
    }
}
