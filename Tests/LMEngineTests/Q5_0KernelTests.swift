import CKernels
import Foundation
import GGUF
import LMEngine
import Testing

/// The Q5_0 product (Gemma 3's q, k, gate and up) against GGUF's reference dequantization of the
/// same rows dotted in double with the values the Q8_0 activations stand for.
@Suite struct Q5_0KernelTests {
    static let n = 256, blockBytes = 22

    static func rows(_ count: Int, rng: inout SplitMix64, fill: UInt8? = nil) -> [UInt8] {
        var w = (0..<(count * n / 32 * blockBytes)).map { _ in fill ?? UInt8(truncatingIfNeeded: rng.next()) }
        for b in 0..<(count * n / 32) {
            let d = fill == nil ? Float.random(in: 0.0001...0.02, using: &rng) * (Bool.random(using: &rng) ? 1 : -1) : 1
            let h = Half.fromFloat(d)
            w[b * blockBytes] = UInt8(h & 0xFF)
            w[b * blockBytes + 1] = UInt8(h >> 8)
        }
        return w
    }

    static func acts(_ x: [Float]) -> [lm_act_q8] {
        var a = [lm_act_q8](repeating: lm_act_q8(), count: x.count / 32)
        lm_quantize_acts(x, &a, Int32(x.count))
        return a
    }

    static func product(_ w: [UInt8], rows: Int, _ a: [lm_act_q8], batch: Int) -> [Float] {
        var out = [Float](repeating: .nan, count: batch * rows)
        w.withUnsafeBytes { wp in
            a.withUnsafeBytes { ap in
                lm_matmul(
                    7, Int32(n), wp.baseAddress!, n / 32 * blockBytes, ap.baseAddress!,
                    n / 32 * MemoryLayout<lm_act_q8>.stride,
                    Int32(batch), &out, rows, 0, Int32(rows))
            }
        }
        return out
    }

    /// (dot, Σ|terms|) in double of a dequantized row with a token's activation values.
    static func reference(_ w: [UInt8], row r: Int, _ a: [lm_act_q8], token t: Int) -> (Double, Double) {
        let dense = w.withUnsafeBytes {
            Dequantize.toFloat(
                UnsafeRawBufferPointer(rebasing: $0[(r * n / 32 * blockBytes)...]), type: .q5_0, count: n)
        }
        var dot = 0.0
        var mag = 0.0
        for i in 0..<n {
            let block = a[t * n / 32 + i / 32]
            let q = withUnsafeBytes(of: block.qs) { Int8(bitPattern: $0[i % 32]) }
            let term = Double(dense[i]) * Double(q) * Double(block.d)
            dot += term
            mag += abs(term)
        }
        return (dot, mag)
    }

    @Test func matchesTheDequantizedWeightsForEveryTileShape() {
        var rng = SplitMix64(seed: 0x50_0005)
        let rows = 7
        let w = Self.rows(rows, rng: &rng)
        for batch in 1...6 {
            let x = (0..<(batch * Self.n)).map { _ in Float.random(in: -2...2, using: &rng) }
            let a = Self.acts(x)
            let out = Self.product(w, rows: rows, a, batch: batch)
            for t in 0..<batch {
                for r in 0..<rows {
                    let (dot, mag) = Self.reference(w, row: r, a, token: t)
                    #expect(
                        abs(Double(out[t * rows + r]) - dot) <= 1e-5 * mag + 1e-7,
                        "batch \(batch) token \(t) row \(r): \(out[t * rows + r]) vs \(dot)")
                }
            }
        }
    }

    /// Quants at both ends (every bit set: +15; none: -16) against activations of ±127.
    @Test(arguments: [UInt8(0xFF), 0x00])
    func extremeBlocksDoNotSaturate(fill: UInt8) {
        var rng = SplitMix64(seed: 1)
        let w = Self.rows(1, rng: &rng, fill: fill)
        for x in [[Float](repeating: -1, count: Self.n), (0..<Self.n).map { Float($0 % 3 == 0 ? 1 : -1) }] {
            let a = Self.acts(x)
            let (dot, mag) = Self.reference(w, row: 0, a, token: 0)
            let got = Self.product(w, rows: 1, a, batch: 1)[0]
            #expect(abs(Double(got) - dot) <= 1e-6 * mag, "fill \(fill): \(got) vs \(dot)")
        }
    }
}
