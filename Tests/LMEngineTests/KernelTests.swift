import CKernels
import Foundation
import LMEngine
import Testing

/// The C kernels' promises that batch invariance rests on, checked on random data.
@Suite struct KernelTests {
    /// Grouped-query attention over a paged cache gives, bit for bit, what each head gives alone.
    @Test(arguments: [(1, 0), (7, 0), (8, 0), (9, 0), (16, 0), (37, 0), (130, 0), (130, 3), (37, 36), (130, 64)])
    func groupedAttentionEqualsPerHead(positions: Int, firstPosition: Int) {
        let first = Int32(firstPosition)
        var rng = SplitMix64(seed: UInt64(positions))
        func uniform() -> Float { Float(Double(rng.next() >> 11) / Double(1 << 53)) * 2 - 1 }
        let group = 3
        let hd = 64
        let kvHeads = 2
        let stride = kvHeads * hd
        let block = 16
        let blocks = (positions + block - 1) / block
        // Blocks in a scrambled order, as a paged cache hands them out.
        let table: [Int32] = (0..<blocks).map { Int32((blocks - 1 - $0) * 2 + 1) }
        let rows = (2 * blocks + 2) * block
        let k = (0..<(rows * stride)).map { _ in lm_f32_to_f16(uniform()) }
        let v = (0..<(rows * stride)).map { _ in lm_f32_to_f16(uniform()) }
        let q = (0..<(group * hd)).map { _ in uniform() * 3 }
        let kvh = 1
        // Without soft-capping, and with Gemma 2's (a cap small enough to bite on these scores).
        for softcap: Float in [0, 0.5] {
            var grouped = [Float](repeating: 0, count: group * hd)
            var scores = [Float](repeating: 0, count: group * positions)
            lm_attention_group64(
                q, Int32(group), Array(k[(kvh * hd)...]), Array(v[(kvh * hd)...]), stride, table, Int32(block),
                first, Int32(positions), 0.125, softcap, &scores, &grouped)
            for g in 0..<group {
                var alone = [Float](repeating: 0, count: hd)
                var s = [Float](repeating: 0, count: positions)
                lm_attention_paged(
                    Array(q[(g * hd)..<((g + 1) * hd)]), Array(k[(kvh * hd)...]), Array(v[(kvh * hd)...]), stride,
                    table,
                    Int32(block), first, Int32(positions), Int32(hd), 0.125, softcap, &s, &alone)
                #expect(
                    alone == Array(grouped[(g * hd)..<((g + 1) * hd)]), "head \(g) of the group, soft-cap \(softcap)")
            }
        }
    }

    /// log Σ exp over a vocabulary-sized vector agrees with a double-precision reference.
    @Test func logSumExpIsAccurate() {
        var rng = SplitMix64(seed: 9)
        for scale in [1.0, 10.0, 60.0] {
            let x = (0..<49_157).map { _ in Float((Double(rng.next() >> 11) / Double(1 << 53) * 2 - 1) * scale) }
            let m = Double(x.max()!)
            let reference = m + log(x.reduce(0.0) { $0 + exp(Double($1) - m) })
            let ours = Double(lm_log_sum_exp(x, Int32(x.count)))
            #expect(
                abs(ours - reference) <= 1e-5 * max(1, abs(reference)), "scale \(scale): \(ours) against \(reference)")
        }
        #expect(lm_log_sum_exp([-Float.infinity, 0], 2) == 0)
    }
}
