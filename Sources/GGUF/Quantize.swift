/// Block quantization of F32 values (ggml's reference quantizers), for writing GGUF files.
public enum Quantize {
    /// `values` encoded as `type`. Supported: F32, F16, Q8_0, Q4_1, Q5_0.
    public static func encode(_ values: [Float], as type: TensorType) throws -> [UInt8] {
        guard values.count % type.blockSize == 0 else {
            throw GGUFError("\(values.count) values are not a whole number of \(type) blocks of \(type.blockSize)")
        }
        var out: [UInt8] = []
        out.reserveCapacity(values.count / type.blockSize * type.blockBytes)
        func put16(_ v: UInt16) {
            out.append(UInt8(v & 0xFF))
            out.append(UInt8(v >> 8))
        }
        switch type {
        case .f32:
            for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        case .f16:
            for v in values { put16(Half.fromFloat(v)) }
        case .q8_0:
            for b in stride(from: 0, to: values.count, by: 32) {
                let x = values[b..<b + 32]
                let amax = x.reduce(0) { max($0, abs($1)) }
                let d = amax / 127
                let id: Float = d != 0 ? 1 / d : 0
                put16(Half.fromFloat(d))
                for v in x { out.append(UInt8(bitPattern: Int8((v * id).rounded(.toNearestOrAwayFromZero)))) }
            }
        case .q4_1:
            for b in stride(from: 0, to: values.count, by: 32) {
                let x = Array(values[b..<b + 32])
                let lo = x.min()!
                let hi = x.max()!
                let d = (hi - lo) / 15
                let id: Float = d != 0 ? 1 / d : 0
                put16(Half.fromFloat(d))
                put16(Half.fromFloat(lo))
                for j in 0..<16 {
                    let q0 = UInt8(min(15, Int8((x[j] - lo) * id + 0.5)))
                    let q1 = UInt8(min(15, Int8((x[j + 16] - lo) * id + 0.5)))
                    out.append(q0 | (q1 << 4))
                }
            }
        case .q5_0:
            // ggml's reference: the value of largest magnitude maps to -16, d = max / -16.
            for b in stride(from: 0, to: values.count, by: 32) {
                let x = Array(values[b..<b + 32])
                var amax: Float = 0
                var mx: Float = 0
                for v in x where abs(v) > amax {
                    amax = abs(v)
                    mx = v
                }
                let d = mx / -16
                let id: Float = d != 0 ? 1 / d : 0
                put16(Half.fromFloat(d))
                var qh: UInt32 = 0
                var qs = [UInt8](repeating: 0, count: 16)
                for j in 0..<16 {
                    let q0 = UInt8(min(31, Int8(x[j] * id + 16.5)))
                    let q1 = UInt8(min(31, Int8(x[j + 16] * id + 16.5)))
                    qs[j] = (q0 & 0xF) | ((q1 & 0xF) << 4)
                    qh |= UInt32(q0 >> 4) << UInt32(j) | UInt32(q1 >> 4) << UInt32(j + 16)
                }
                withUnsafeBytes(of: qh.littleEndian) { out.append(contentsOf: $0) }
                out.append(contentsOf: qs)
            }
        default:
            throw GGUFError("writing \(type) is not supported (F32, F16, Q8_0, Q4_1 and Q5_0 are)")
        }
        return out
    }
}
