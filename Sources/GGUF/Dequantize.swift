/// Block dequantization of ggml tensor types to F32 (ggml's reference layouts).
public enum Dequantize {
    /// The first `count` values of `bytes`, a tensor of `type`, as F32.
    public static func toFloat(_ bytes: UnsafeRawBufferPointer, type: TensorType, count: Int) -> [Float] {
        precondition(count % type.blockSize == 0 && bytes.count >= count / type.blockSize * type.blockBytes)
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            let blocks = count / type.blockSize
            for b in 0..<blocks {
                let src = UnsafeRawBufferPointer(rebasing: bytes[(b * type.blockBytes)..<((b + 1) * type.blockBytes)])
                let dst = UnsafeMutableBufferPointer(rebasing: out[(b * type.blockSize)..<((b + 1) * type.blockSize)])
                block(src, type: type, into: dst)
            }
            initialized = count
        }
    }

    @inline(__always) static func u16(_ p: UnsafeRawBufferPointer, _ o: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self))
    }

    @inline(__always) static func f16(_ p: UnsafeRawBufferPointer, _ o: Int) -> Float { Half.toFloat(u16(p, o)) }

    /// One block of `type` into `y` (`type.blockSize` values).
    public static func block(_ x: UnsafeRawBufferPointer, type: TensorType, into y: UnsafeMutableBufferPointer<Float>) {
        switch type {
        case .f32:
            y[0] = Float(bitPattern: UInt32(littleEndian: x.loadUnaligned(as: UInt32.self)))
        case .f16:
            y[0] = f16(x, 0)
        case .bf16:
            y[0] = Half.bf16ToFloat(u16(x, 0))
        case .q4_0:
            // d, then 16 bytes: element j in the low nibble of byte j, element j+16 in the high nibble.
            let d = f16(x, 0)
            for j in 0..<16 {
                let q = x[2 + j]
                y[j] = Float(Int(q & 0xF) - 8) * d
                y[j + 16] = Float(Int(q >> 4) - 8) * d
            }
        case .q4_1:
            let d = f16(x, 0)
            let m = f16(x, 2)
            for j in 0..<16 {
                let q = x[4 + j]
                y[j] = Float(q & 0xF) * d + m
                y[j + 16] = Float(q >> 4) * d + m
            }
        case .q5_0:
            // d, 32 fifth bits (bit j for element j), then the low nibbles as Q4_0 lays them out.
            let d = f16(x, 0)
            let qh = UInt32(littleEndian: x.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            for j in 0..<16 {
                let q = x[6 + j]
                let h0 = Int((qh >> UInt32(j)) & 1) << 4
                let h1 = Int((qh >> UInt32(j + 16)) & 1) << 4
                y[j] = Float((Int(q & 0xF) | h0) - 16) * d
                y[j + 16] = Float((Int(q >> 4) | h1) - 16) * d
            }
        case .q8_0:
            let d = f16(x, 0)
            for j in 0..<32 { y[j] = Float(Int8(bitPattern: x[2 + j])) * d }
        case .q4_K:
            let d = f16(x, 0)
            let dmin = f16(x, 2)
            var q = 16
            var out = 0
            for j in stride(from: 0, to: 256, by: 64) {
                let (s1, m1) = scaleMinK4(j / 32, x, 4)
                let (s2, m2) = scaleMinK4(j / 32 + 1, x, 4)
                let d1 = d * Float(s1)
                let dm1 = dmin * Float(m1)
                let d2 = d * Float(s2)
                let dm2 = dmin * Float(m2)
                for l in 0..<32 { y[out + l] = d1 * Float(x[q + l] & 0xF) - dm1 }
                for l in 0..<32 { y[out + 32 + l] = d2 * Float(x[q + l] >> 4) - dm2 }
                q += 32
                out += 64
            }
        case .q5_K:
            let d = f16(x, 0)
            let dmin = f16(x, 2)
            let qh = 16
            let ql0 = 48
            var ql = ql0
            var out = 0
            var u1: UInt8 = 1
            var u2: UInt8 = 2
            for j in stride(from: 0, to: 256, by: 64) {
                let (s1, m1) = scaleMinK4(j / 32, x, 4)
                let (s2, m2) = scaleMinK4(j / 32 + 1, x, 4)
                let d1 = d * Float(s1)
                let dm1 = dmin * Float(m1)
                let d2 = d * Float(s2)
                let dm2 = dmin * Float(m2)
                for l in 0..<32 {
                    let hi: UInt8 = x[qh + l] & u1 != 0 ? 16 : 0
                    y[out + l] = d1 * Float((x[ql + l] & 0xF) + hi) - dm1
                }
                for l in 0..<32 {
                    let hi: UInt8 = x[qh + l] & u2 != 0 ? 16 : 0
                    y[out + 32 + l] = d2 * Float((x[ql + l] >> 4) + hi) - dm2
                }
                ql += 32
                out += 64
                u1 <<= 2
                u2 <<= 2
            }
        case .q6_K:
            let d = f16(x, 208)
            var ql = 0
            var qh = 128
            var sc = 192
            var out = 0
            for _ in 0..<2 {
                for l in 0..<32 {
                    let s = l / 16
                    let h = x[qh + l]
                    let q1 = Int((x[ql + l] & 0xF) | ((h & 3) << 4)) - 32
                    let q2 = Int((x[ql + l + 32] & 0xF) | (((h >> 2) & 3) << 4)) - 32
                    let q3 = Int((x[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32
                    let q4 = Int((x[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32
                    y[out + l] = d * Float(Int8(bitPattern: x[sc + s])) * Float(q1)
                    y[out + l + 32] = d * Float(Int8(bitPattern: x[sc + s + 2])) * Float(q2)
                    y[out + l + 64] = d * Float(Int8(bitPattern: x[sc + s + 4])) * Float(q3)
                    y[out + l + 96] = d * Float(Int8(bitPattern: x[sc + s + 6])) * Float(q4)
                }
                out += 128
                ql += 64
                qh += 32
                sc += 8
            }
        }
    }

    /// The 6-bit scale and min of sub-block `j` from the 12 packed bytes at `at` (K-quants).
    @inline(__always)
    static func scaleMinK4(_ j: Int, _ x: UnsafeRawBufferPointer, _ at: Int) -> (UInt8, UInt8) {
        if j < 4 {
            return (x[at + j] & 63, x[at + j + 4] & 63)
        }
        let s = (x[at + j + 4] & 0xF) | ((x[at + j - 4] >> 6) << 4)
        let m = (x[at + j + 4] >> 4) | ((x[at + j] >> 6) << 4)
        return (s, m)
    }
}
