import CKernels
import Foundation
import GGUF
import LMEngine
import Testing

/// The K-quant kernels of CKernels (Q4_K and Q6_K weight rows dotted with Q8_K activations)
/// against GGUF's reference dequantization of the same rows, dotted in double with the values
/// the Q8_K blocks stand for (d × qs).
@Suite struct KQuantKernelTests {
    static let n = 512

    /// `rows` rows of `n` weights of `type`: random bytes, with the f16 super-block scales
    /// replaced by finite ones of either sign (Q4_K's dmin positive, as quantizers write it).
    static func randomRows(_ type: TensorType, rows: Int, n: Int, rng: inout SplitMix64) -> [UInt8] {
        let blocks = rows * n / type.blockSize
        var bytes = (0..<(blocks * type.blockBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        func put(_ v: Float, at o: Int) {
            let h = Half.fromFloat(v)
            bytes[o] = UInt8(h & 0xFF)
            bytes[o + 1] = UInt8(h >> 8)
        }
        for b in 0..<blocks {
            let at = b * type.blockBytes
            let d = Float.random(in: 0.0001...0.02, using: &rng) * (Bool.random(using: &rng) ? 1 : -1)
            switch type {
            case .q4_K:
                put(d, at: at)
                put(Float.random(in: 0.0001...0.02, using: &rng), at: at + 2)
            case .q6_K:
                put(d, at: at + 208)
            default:
                break
            }
        }
        return bytes
    }

    /// The first `count` weights of `bytes` through `Dequantize.block`, one super-block at a time.
    static func dequantize(_ bytes: [UInt8], _ type: TensorType, count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { dst in
                for b in 0..<(count / type.blockSize) {
                    let src = UnsafeRawBufferPointer(rebasing: raw[(b * type.blockBytes)..<((b + 1) * type.blockBytes)])
                    let y = UnsafeMutableBufferPointer(rebasing: dst[(b * type.blockSize)..<((b + 1) * type.blockSize)])
                    Dequantize.block(src, type: type, into: y)
                }
            }
        }
        return out
    }

    static func quantize(_ x: [Float]) -> [lm_block_q8_k] {
        var q = [lm_block_q8_k](repeating: lm_block_q8_k(), count: x.count / 256)
        lm_quantize_q8_k(x, &q, Int32(x.count))
        return q
    }

    static func qs(_ block: lm_block_q8_k) -> [Int8] {
        withUnsafeBytes(of: block.qs) { raw in raw.map { Int8(bitPattern: $0) } }
    }

    static func bsums(_ block: lm_block_q8_k) -> [Int16] {
        withUnsafeBytes(of: block.bsums) { raw in
            (0..<16).map { raw.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self) }
        }
    }

    /// The values the Q8_K blocks stand for.
    static func values(_ q: [lm_block_q8_k]) -> [Double] {
        q.flatMap { block -> [Double] in qs(block).map { Double($0) * Double(block.d) } }
    }

    static func dot(_ type: TensorType, n: Int, _ row: [UInt8], _ x: [lm_block_q8_k]) -> Float {
        switch type {
        case .q4_K: lm_dot_q4_k_q8_k(Int32(n), row, x)
        case .q6_K: lm_dot_q6_k_q8_k(Int32(n), row, x)
        default: .nan
        }
    }

    /// The double-precision dot of `weights` with the Q8_K values, and the sum of the terms' magnitudes.
    static func reference(_ weights: ArraySlice<Float>, _ x: [lm_block_q8_k]) -> (dot: Double, magnitude: Double) {
        let a = values(x)
        var dot = 0.0
        var magnitude = 0.0
        for (w, v) in zip(weights, a) {
            let t = Double(w) * v
            dot += t
            magnitude += abs(t)
        }
        return (dot, magnitude)
    }

    @Test(arguments: [TensorType.q4_K, .q6_K])
    func dotMatchesTheDequantizedWeights(type: TensorType) {
        var rng = SplitMix64(seed: type == .q4_K ? 0x4B_0004 : 0x6B_0006)
        let n = Self.n
        let rows = 16
        let rowBytes = n / type.blockSize * type.blockBytes
        let w = Self.randomRows(type, rows: rows, n: n, rng: &rng)
        let dense = Self.dequantize(w, type, count: rows * n)
        for r in 0..<rows {
            let scale = Float.random(in: 0.01...10, using: &rng)
            let x = (0..<n).map { _ in Float.random(in: -1...1, using: &rng) * scale }
            let q = Self.quantize(x)
            let ref = Self.reference(dense[(r * n)..<((r + 1) * n)], q)
            let got = Double(Self.dot(type, n: n, Array(w[(r * rowBytes)..<((r + 1) * rowBytes)]), q))
            #expect(
                abs(got - ref.dot) <= 1e-4 * abs(ref.dot) + 1e-6 * ref.magnitude,
                "\(type) row \(r): \(got) vs \(ref.dot)")
        }
    }

    /// The four-token tiles give, bit for bit, the one-token dot of each token.
    @Test(arguments: [TensorType.q4_K, .q6_K])
    func tilesEqualTheOneTokenDot(type: TensorType) {
        var rng = SplitMix64(seed: 0x711E)
        let n = Self.n
        let rows = 3
        let rowBytes = n / type.blockSize * type.blockBytes
        let w = Self.randomRows(type, rows: rows, n: n, rng: &rng)
        let tokens = (0..<4).map { _ in Self.quantize((0..<n).map { _ in Float.random(in: -3...3, using: &rng) }) }
        for r in 0..<rows {
            let row = Array(w[(r * rowBytes)..<((r + 1) * rowBytes)])
            let single = tokens.map { Self.dot(type, n: n, row, $0) }
            for nt in 1...4 {
                var out = [Float](repeating: .nan, count: 4)
                tokens[0].withUnsafeBufferPointer { a in
                    tokens[1].withUnsafeBufferPointer { b in
                        tokens[2].withUnsafeBufferPointer { c in
                            tokens[3].withUnsafeBufferPointer { d in
                                var xs: [UnsafePointer<lm_block_q8_k>?] = [
                                    a.baseAddress, b.baseAddress, c.baseAddress, d.baseAddress,
                                ]
                                if type == .q4_K {
                                    lm_dot_q4_k_q8_k_tile(Int32(n), row, &xs, Int32(nt), &out)
                                } else {
                                    lm_dot_q6_k_q8_k_tile(Int32(n), row, &xs, Int32(nt), &out)
                                }
                            }
                        }
                    }
                }
                #expect(
                    out.prefix(nt).map(\.bitPattern) == single.prefix(nt).map(\.bitPattern),
                    "\(type) row \(r), \(nt) tokens")
            }
        }
    }

    /// The largest products the formats allow (Q4_K: scales, mins and quants all at their maximum;
    /// Q6_K: quants 63 with scales -128 and 127) against activations of ±127: no 16-bit saturation.
    @Test(arguments: [TensorType.q4_K, .q6_K])
    func extremeBlocksDoNotSaturate(type: TensorType) {
        let n = 512
        var w = [UInt8](repeating: 0xFF, count: n / 256 * type.blockBytes)
        for b in 0..<(n / 256) {
            let at = b * type.blockBytes
            let one = Half.fromFloat(1)
            switch type {
            case .q4_K:
                for o in [at, at + 2] {
                    w[o] = UInt8(one & 0xFF)
                    w[o + 1] = UInt8(one >> 8)
                }
            default:
                for i in 0..<16 { w[at + 192 + i] = b == 0 ? 0x80 : 0x7F }
                w[at + 208] = UInt8(one & 0xFF)
                w[at + 209] = UInt8(one >> 8)
            }
        }
        let dense = Self.dequantize(w, type, count: n)
        for x in [[Float](repeating: -1, count: n), (0..<n).map { Float($0 % 3 == 0 ? 1 : -1) }] {
            let q = Self.quantize(x)
            let ref = Self.reference(dense[...], q)
            let got = Double(Self.dot(type, n: n, w, q))
            #expect(abs(got - ref.dot) <= 1e-4 * abs(ref.dot) + 1e-6 * ref.magnitude, "\(type): \(got) vs \(ref.dot)")
        }
    }

    /// ggml's quantize_row_q8_K: the element of largest magnitude (the first on ties) maps to
    /// -127, so d has the opposite sign of that element; rounding is half to even, at most 127;
    /// bsums are sums of 16; a block of zeros is all zeros.
    @Test func q8KQuantizationFollowsGgmlsRule() {
        var rng = SplitMix64(seed: 0x0808)
        var x = [Float](repeating: 0, count: 1024)
        for i in 256..<1024 { x[i] = Float.random(in: -1...1, using: &rng) }
        x[300] = -2.5  // block 1: the largest magnitude is negative
        x[600] = 3  // block 2: positive
        x[773] = -2  // block 3: a tie, the first (negative) one counts and x[777] goes to +127
        x[777] = 2
        let q = Self.quantize(x)
        #expect(q.count == 4)
        #expect(q[0].d == 0)
        let zeroBlock = Self.qs(q[0]).allSatisfy { $0 == 0 } && Self.bsums(q[0]).allSatisfy { $0 == 0 }
        #expect(zeroBlock)
        for (b, at) in [(1, 300), (2, 600), (3, 773)] {
            let qs = Self.qs(q[b])
            let sums = Self.bsums(q[b])
            let iscale = Float(-127) / x[at]
            #expect(q[b].d == 1 / iscale)
            #expect((q[b].d > 0) == (x[at] < 0))
            #expect(qs[at - 256 * b] == -127)
            if b == 3 { #expect(qs[777 - 768] == 127) }
            var mismatches = 0
            for j in 0..<256 {
                let expected = Int(min(127, (iscale * x[256 * b + j]).rounded(.toNearestOrEven)))
                if Int(qs[j]) != expected { mismatches += 1 }
            }
            #expect(mismatches == 0, "block \(b)")
            for g in 0..<16 {
                let sum = qs[(16 * g)..<(16 * g + 16)].reduce(0) { $0 + Int($1) }
                #expect(Int(sums[g]) == sum, "block \(b) sum \(g)")
            }
        }
    }
}
