import Foundation
import LMEngine
import LMTraining
import Testing

/// The bfloat16 products (AVX512-BF16 here; AMX tiles with PRS_ISA=amx on a machine that has
/// them) against float64 products of the same bfloat16-rounded inputs, and bfloat16 LoRA
/// training against float32 training on SmolLM2.
@Suite(.serialized) struct BF16Tests {
    static func bf16(_ x: Float) -> Double {
        var u = x.bitPattern
        u = (u &+ 0x7FFF &+ ((u >> 16) & 1)) & 0xFFFF_0000
        return Double(Float(bitPattern: u))
    }

    @Test(.enabled(if: BF16Matrix.available, "no bfloat16 instructions on this processor"))
    func productsEqualFloat64ProductsOfTheRoundedInputs() throws {
        var rng = SplitMix64(seed: 4)
        let n = 37
        let rows = 70
        let cols = 100  // edges on every side of the 8 × 32 and 32 × 16 blocks
        let w = (0..<(rows * cols)).map { _ in Float(rng.uniform() * 2 - 1) }
        let x = (0..<(n * cols)).map { _ in Float(rng.uniform() * 2 - 1) }
        let dy = (0..<(n * rows)).map { _ in Float(rng.uniform() * 2 - 1) }
        let results: [[Float]] = try [1, 2].map { threads in
            let m = w.withUnsafeBufferPointer { BF16Matrix($0.baseAddress!, rows: rows, cols: cols, threads: threads) }
            let (worst, out) = FrozenProducts.worstError(
                m, x: x, dy: dy, n: n, start: 1, input: Self.bf16, weight: { Self.bf16(w[$0]) })
            // float32 accumulation of ≤ 100 products of magnitude ≤ 1: error well under 1e-4.
            #expect(worst < 1e-4, "max |bf16 product − float64 reference| = \(worst) with \(threads) threads")
            return out
        }
        #expect(results[0] == results[1], "the thread split does not change a bit")
        _ = try #require(BF16Matrix.isa)
    }

    /// Tolerance: bfloat16 keeps 8 bits of mantissa (each rounded input is off by up to 2⁻⁹),
    /// compounded over 30 layers: all LoRA gradients together within 5e-2 relative L2 error of the
    /// float32 path's, each tensor within 0.25 (the smallest, the early q/k adapters' A, move
    /// most), and the loss within 1e-3 relative.
    @Test(.enabled(if: BF16Matrix.available, "no bfloat16 instructions on this processor"))
    func bfloat16LoRAGradientsStayCloseToFloat32() throws {
        let llama = try LlamaModel(path: Project.smolLM2)
        let examples = try Project.examples(llama)
        BLASThreads.set(2)
        let settings = LoRASettings(rank: 4, alpha: 8)
        var batch = PackedBatch()
        for e in examples { if case .sft(let s) = e.body { batch.append(s.tokens, scored: s.scored) } }
        func gradients(_ bf16: Bool) throws -> (Double, [String: [Float]]) {
            let m = try BaseWeights.model(llama, lora: settings, seed: 3, bf16: bf16, threads: 2)
            var rng = SplitMix64(seed: 17)
            let lora = m.lora!
            for e in lora.entries where e.name.hasSuffix(".lora_b") {
                lora.set(e.name, (0..<e.count).map { _ in Float((rng.uniform() * 2 - 1) * 0.02) })
            }
            let logp = m.forward(batch)
            let n = Float(logp.count)
            m.backward([Float](repeating: -1 / n, count: logp.count))
            var out: [String: [Float]] = [:]
            for e in lora.entries { out[e.name] = lora.gradient(e.name)! }
            return (-logp.reduce(0.0) { $0 + Double($1) } / Double(n), out)
        }
        let (l32, g32) = try gradients(false)
        let (l16, g16) = try gradients(true)
        #expect(abs(l32 - l16) <= 1e-3 * l32, "loss: float32 \(l32), bfloat16 \(l16)")
        var worst = 0.0
        var dAll = 0.0
        var sAll = 0.0
        for (name, a) in g32 {
            let b = g16[name]!
            var d = 0.0
            var s = 0.0
            for (x, y) in zip(a, b) {
                d += Double(x - y) * Double(x - y)
                s += Double(x) * Double(x)
            }
            dAll += d
            sAll += s
            let rel = (d / max(s, 1e-30)).squareRoot()
            worst = max(worst, rel)
            #expect(rel <= 0.25, "\(name): bfloat16 gradient off by \(rel) relative")
        }
        let overall = (dAll / sAll).squareRoot()
        #expect(overall <= 5e-2, "all LoRA gradients: bfloat16 off by \(overall) relative")
        print(
            "bfloat16 (\(BF16Matrix.isa ?? "-")) LoRA gradients against float32: \(overall) relative L2 overall, "
                + "worst tensor \(worst); loss \(l16) vs \(l32)"
        )
    }
}
