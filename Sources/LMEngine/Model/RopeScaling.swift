import Foundation
import GGUF

/// Rope scaling as llama.cpp applies it (ggml's rope with YaRN). Pair i of a head at position p
/// turns by θ = p · base^(−2i/d) / fᵢ, where fᵢ are the per-pair factors of `rope_freqs.weight`
/// (Llama 3.x files: Llama 3's scaling folded into the file by the converter); then
/// θ_interp = s · θ with s = `freq_scale` = 1 / `rope.scaling.factor` (linear and yarn); for
/// yarn, θ mixes θ_interp and θ by a ramp over the pairs (from `rope.scaling.original_context_length`
/// and β_fast 32, β_slow 1), and cos θ and sin θ are multiplied by
/// `attn_factor` · (1 + 0.1 · ln(1/s)).
public struct RopeScaling: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, CaseIterable, Codable { case none, linear, yarn }
    public var kind: Kind = .none
    /// s: 1 / rope.scaling.factor (1 when unscaled).
    public var freqScale: Float = 1
    /// fᵢ, one per rotated pair (ropeDim / 2), from `rope_freqs.weight`; nil: all 1.
    public var factors: [Float]? = nil
    /// YaRN: 1 with yarn, else 0 (llama.cpp's default `yarn_ext_factor`).
    public var extFactor: Float = 0
    public var attnFactor: Float = 1
    public var betaFast: Float = 32
    public var betaSlow: Float = 1
    /// The context the model was trained at before scaling (YaRN's ramp; Phi-3's factor choice).
    public var originalContext: Int = 0
    /// Phi-3's `rope_factors_long.weight`: used instead of `factors` (its `rope_factors_short`)
    /// when a sequence may run past `originalContext`, as llama.cpp chooses by its context per sequence.
    public var longFactors: [Float]? = nil

    public init() {}

    public var isIdentity: Bool { freqScale == 1 && factors == nil && extFactor == 0 && attnFactor == 1 }

    /// The scaling for sequences of up to `positions` positions: Phi-3's long factors past the
    /// original context, its short ones up to it; otherwise unchanged.
    public func forContext(_ positions: Int) -> RopeScaling {
        guard let longFactors, positions > originalContext else { return self }
        var r = self
        r.factors = longFactors
        return r
    }

    /// The pairs where YaRN's ramp starts and ends (ggml_rope_yarn_corr_dims).
    public func correctionDims(ropeDim: Int, base: Float) -> (low: Float, high: Float) {
        func dim(_ rotations: Float) -> Float {
            Float(ropeDim) * logf(Float(originalContext) / (rotations * 2 * Float.pi)) / (2 * logf(base))
        }
        return (max(0, floorf(dim(betaFast))), min(Float(ropeDim - 1), ceilf(dim(betaSlow))))
    }

    /// cos and sin of pair `i` whose plain angle (p · base^(−2i/d)) is `theta`, scaled.
    @inline(__always)
    public func rotation(_ theta: Float, pair i: Int, corr: (low: Float, high: Float)) -> (cos: Float, sin: Float) {
        let extrapolated = factors.map { theta / $0[i] } ?? theta
        let interpolated = freqScale * extrapolated
        var angle = interpolated
        var magnitude = attnFactor
        if extFactor != 0 {
            let y = (Float(i) - corr.low) / max(0.001, corr.high - corr.low)
            let mix = (1 - min(1, max(0, y))) * extFactor
            angle = interpolated * (1 - mix) + extrapolated * mix
            magnitude *= 1 + 0.1 * logf(1 / freqScale)
        }
        return (cosf(angle) * magnitude, sinf(angle) * magnitude)
    }

    /// `rotation` in double precision (training's rope tables).
    public func rotation(_ theta: Double, pair i: Int, corr: (low: Float, high: Float)) -> (cos: Double, sin: Double) {
        let extrapolated = factors.map { theta / Double($0[i]) } ?? theta
        let s = Double(freqScale)
        let interpolated = s * extrapolated
        var angle = interpolated
        var magnitude = Double(attnFactor)
        if extFactor != 0 {
            let y = (Double(i) - Double(corr.low)) / max(0.001, Double(corr.high - corr.low))
            let mix = (1 - min(1, max(0, y))) * Double(extFactor)
            angle = interpolated * (1 - mix) + extrapolated * mix
            magnitude *= 1 + 0.1 * Foundation.log(1 / s)
        }
        return (Foundation.cos(angle) * magnitude, Foundation.sin(angle) * magnitude)
    }

    /// The scaling an architecture's metadata asks for (`ARCH.rope.scaling.*`, or the older
    /// `ARCH.rope.scale_linear`); a type prs does not implement is refused, naming the key.
    static func read(_ c: GGUFContent, arch: String, contextLength: Int) throws -> RopeScaling {
        var r = RopeScaling()
        let typeKey = "\(arch).rope.scaling.type"
        var kind: Kind = .none
        if let v = c[typeKey] {
            guard let s = v.string else { throw ModelError("\(typeKey) must be a string, found \(v.typeDescription)") }
            guard let k = Kind(rawValue: s) else {
                throw ModelError(
                    "\(typeKey) is \"\(s)\", which prs does not implement (it runs none, linear and yarn); refusing "
                        + "rather than running it unscaled"
                )
            }
            kind = k
        }
        var factor: Float = 1
        for key in ["\(arch).rope.scaling.factor", "\(arch).rope.scale_linear"] {
            guard let v = c[key] else { continue }
            guard let f = v.float, f > 0 else {
                throw ModelError("\(key) must be a positive number, found \(v.typeDescription)")
            }
            factor = Float(f)
            if kind == .none, key.hasSuffix("scale_linear") { kind = .linear }
        }
        if kind == .none, factor != 1, c[typeKey] == nil { kind = .linear }
        r.kind = kind
        if kind != .none { r.freqScale = 1 / factor }
        if let v = c["\(arch).rope.scaling.attn_factor"] {
            guard let f = v.float else { throw ModelError("\(arch).rope.scaling.attn_factor must be a number") }
            r.attnFactor = Float(f)
        }
        r.originalContext = c["\(arch).rope.scaling.original_context_length"]?.integer ?? contextLength
        if kind == .yarn {
            r.extFactor = 1
            for k in [
                "\(arch).rope.scaling.yarn_log_multiplier", "\(arch).rope.scaling.yarn_beta_fast",
                "\(arch).rope.scaling.yarn_beta_slow",
                "\(arch).rope.scaling.yarn_ext_factor", "\(arch).rope.scaling.yarn_attn_factor",
            ] where c[k] != nil {
                throw ModelError(
                    "\(k) is set; prs runs YaRN with llama.cpp's defaults only and refuses rather than ignore it")
            }
        }
        return r
    }
}
