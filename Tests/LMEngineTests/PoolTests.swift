import CKernels
import Foundation
import LMEngine
import Testing

/// The pool folds the input's norm, gated activation and quantization into a product's job, and
/// shares rows in chunks that shrink towards the end. Neither may change a number: the results
/// must equal, bit for bit, the steps done one after the other on one thread (the engine's
/// earlier order: the norm and SiLU written out here as the Swift code had them).
@Suite struct PoolTests {
    static let n = 512, rows = 301  // odd, so the last chunk of a job is one row on every thread count

    /// Random Q4_1 rows (valid f16 scales and minimums) and random floats.
    struct Data {
        var w: [UInt8]
        var residual: [Float], add: [Float], up: [Float], norm: [Float], gate: [Float]
        init(batch: Int, seed: UInt64) {
            var rng = SplitMix64(seed: seed)
            let rowBytes = PoolTests.n / 32 * 20
            w = (0..<(PoolTests.rows * rowBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            for b in 0..<(PoolTests.rows * PoolTests.n / 32) {
                let scale = UInt16(0x2000 + Int(rng.next() % 0x1800))
                w[b * 20] = UInt8(scale & 0xFF)
                w[b * 20 + 1] = UInt8(scale >> 8)
                w[b * 20 + 2] = UInt8(scale & 0xFF)
                w[b * 20 + 3] = UInt8(0x80 | (scale >> 8))
            }
            func floats(_ count: Int, _ scale: Float) -> [Float] {
                (0..<count).map { _ in
                    let u = Float(Double(rng.next() >> 11) / Double(1 << 53))
                    return (u * 2 - 1) * scale
                }
            }
            residual = floats(batch * PoolTests.n, 3)
            add = floats(batch * PoolTests.n, 1)
            up = floats(batch * PoolTests.n, 2)
            gate = floats(batch * PoolTests.n, 6)
            norm = floats(PoolTests.n, 1.5)
        }
    }

    /// The serial steps: the prelude in plain Swift, then quantization and every row on one thread.
    func serial(_ op: Int32, _ d: Data, batch: Int) -> (residual: [Float], input: [Float], out: [Float]) {
        let n = Self.n
        var residual = d.residual
        var input = d.gate
        for b in 0..<batch {
            switch Int(op) {
            case LM_PRE_RMS_NORM:
                for i in 0..<n { residual[b * n + i] += d.add[b * n + i] }
                var ss: Double = 0
                for i in 0..<n { ss += Double(residual[b * n + i] * residual[b * n + i]) }
                let scale = 1 / (Float(ss / Double(n)) + 1e-5).squareRoot()
                for i in 0..<n { input[b * n + i] = residual[b * n + i] * scale * d.norm[i] }
            case LM_PRE_SILU:
                for i in 0..<n {
                    let g = input[b * n + i]
                    input[b * n + i] = g / (1 + expf(-g)) * d.up[b * n + i]
                }
            case LM_PRE_GEGLU:
                let g = Array(input[(b * n)..<((b + 1) * n)])
                input.withUnsafeMutableBufferPointer {
                    lm_geglu(g, Array(d.up[(b * n)...]), $0.baseAddress! + b * n, Int32(n))
                }
            default: break
            }
        }
        var acts = [lm_act_q8](repeating: lm_act_q8(), count: batch * n / 32)
        acts.withUnsafeMutableBufferPointer { ap in
            for b in 0..<batch { lm_quantize_acts(Array(input[(b * n)...]), ap.baseAddress! + b * n / 32, Int32(n)) }
        }
        var out = [Float](repeating: 0, count: batch * Self.rows)
        lm_matmul(
            0, Int32(n), d.w, n / 32 * 20, acts, n / 32 * MemoryLayout<lm_act_q8>.stride, Int32(batch), &out, Self.rows,
            0, Int32(Self.rows))
        return (residual, input, out)
    }

    /// The same through the pool: prelude chunks, then row chunks of two jobs over the same rows.
    func pooled(
        _ op: Int32, _ d: Data, batch: Int, threads: Int
    ) -> (residual: [Float], input: [Float], out: [Float], second: [Float]) {
        let n = Self.n
        var residual = d.residual
        var input = d.gate
        var out = [Float](repeating: 0, count: batch * Self.rows)
        var second = out
        var acts = [lm_act_q8](repeating: lm_act_q8(), count: batch * n / 32)
        let pool = lm_pool_create(Int32(threads))
        defer { lm_pool_destroy(pool) }
        residual.withUnsafeMutableBufferPointer { rp in
            input.withUnsafeMutableBufferPointer { ip in
                acts.withUnsafeMutableBufferPointer { ap in
                    out.withUnsafeMutableBufferPointer { op1 in
                        second.withUnsafeMutableBufferPointer { op2 in
                            d.w.withUnsafeBytes { wp in
                                d.add.withUnsafeBufferPointer { addp in
                                    d.up.withUnsafeBufferPointer { upp in
                                        d.norm.withUnsafeBufferPointer { np in
                                            var pre = lm_prelude(
                                                op: op, n: Int32(n), y: ip.baseAddress!, x: rp.baseAddress!,
                                                add: addp.baseAddress!,
                                                up: upp.baseAddress!, w: np.baseAddress!, eps: 1e-5,
                                                q8: ap.baseAddress!, q8k: nil)
                                            let stride = n / 32 * MemoryLayout<lm_act_q8>.stride
                                            let jobs = [op1.baseAddress!, op2.baseAddress!].map {
                                                lm_matmul_job(
                                                    kind: 0, n: Int32(n), w: wp.baseAddress!, row_bytes: n / 32 * 20,
                                                    x: ap.baseAddress!,
                                                    x_stride: stride, out: $0, out_stride: Self.rows,
                                                    rows: Int32(Self.rows), packed: 0)
                                            }
                                            lm_pool_matmul(pool, &pre, jobs, 2, Int32(batch))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (residual, input, out, second)
    }

    @Test(arguments: [Int32(LM_PRE_QUANTIZE), Int32(LM_PRE_RMS_NORM), Int32(LM_PRE_SILU), Int32(LM_PRE_GEGLU)])
    func preludeAndChunksChangeNoBit(op: Int32) {
        for batch in [1, 3, 8] {
            let d = Data(batch: batch, seed: UInt64(batch) * 31 + UInt64(op))
            let want = serial(op, d, batch: batch)
            #expect(want.out.allSatisfy(\.isFinite) && want.out.contains { $0 != 0 })
            for threads in [1, 2, 3] {
                let got = pooled(op, d, batch: batch, threads: threads)
                let at = "op \(op), batch \(batch), \(threads) threads"
                #expect(got.residual == want.residual, "residual stream, \(at)")
                #expect(got.input == want.input, "the products' input, \(at)")
                #expect(got.out == want.out, "first product, \(at)")
                #expect(got.second == want.out, "second product, \(at)")
            }
        }
    }

    /// Q8_K activations quantized in spans by the prelude equal the whole row quantized at once.
    @Test func spansOfQ8KEqualTheWholeRow() {
        var rng = SplitMix64(seed: 77)
        let n = 1536
        var y: [Float] = (0..<n).map { _ in
            let u = Float(Double(rng.next() >> 11) / Double(1 << 53))
            return (u * 2 - 1) * 4
        }
        var whole = [lm_block_q8_k](repeating: lm_block_q8_k(), count: n / 256)
        lm_quantize_q8_k(y, &whole, Int32(n))
        var spans = [lm_block_q8_k](repeating: lm_block_q8_k(), count: n / 256)
        y.withUnsafeMutableBufferPointer { yp in
            spans.withUnsafeMutableBytes { sp in
                var pre = lm_prelude(
                    op: Int32(LM_PRE_QUANTIZE), n: Int32(n), y: yp.baseAddress!, x: nil, add: nil, up: nil, w: nil,
                    eps: 0, q8: nil, q8k: sp.baseAddress!)
                for e0 in stride(from: 0, to: n, by: 512) { lm_prelude_run(&pre, 0, Int32(e0), Int32(e0 + 512)) }
            }
        }
        let bytes = { (b: [lm_block_q8_k]) in b.withUnsafeBytes { Array($0) } }
        #expect(bytes(spans) == bytes(whole))
    }
}
