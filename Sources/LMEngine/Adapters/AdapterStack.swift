import CKernels

/// The adapters a sequence runs with (applied together, each with its own scale), resolved
/// per layer and projection for the forward pass. Its `root` starts the sequence's prefix-cache
/// keys, so blocks computed with one stack are never served to a sequence with another; it
/// comes from the adapters' file contents and scales, not their names.
public final class AdapterStack: Sendable {
    public let adapters: [LoRAAdapter]
    /// Prefix-cache key of the empty prefix (0 for the base model alone).
    public let root: UInt64
    /// [layer][projection: q, k, v, o, gate, up, down] → the adapters' pairs with their scales.
    let byLayer: [[[(pair: LoRAAdapter.Pair, scale: Float)]]]

    static let projectionNames = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]

    public init(_ adapters: [LoRAAdapter], layers: Int) {
        self.adapters = adapters
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in adapters.map(\.identity).joined(separator: "+").utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01B3 }
        root = adapters.isEmpty ? 0 : (h == 0 ? 1 : h)
        byLayer = (0..<layers).map { l in
            Self.projectionNames.map { name in
                adapters.compactMap { a in a.tensors["blk.\(l).\(name).weight"].map { ($0, a.scale(of: $0)) } }
            }
        }
    }

    /// y += Σ scale · B·(A·x) for projection `p` of layer `l`, one token (scratch: rank floats).
    func apply(
        layer l: Int, projection p: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
        scratch: UnsafeMutablePointer<Float>
    ) {
        for (pair, scale) in byLayer[l][p] {
            pair.a.withUnsafeBufferPointer { a in
                pair.bt.withUnsafeBufferPointer { bt in
                    lm_lora_apply(
                        Int32(pair.inDim), Int32(pair.rank), Int32(pair.outDim), a.baseAddress!, bt.baseAddress!, scale,
                        x, y, scratch)
                }
            }
        }
    }

    func has(layer l: Int, projection p: Int) -> Bool { !byLayer[l][p].isEmpty }
}
