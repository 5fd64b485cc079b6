/// ggml tensor types that prs reads, with their block layouts (ggml's `ggml_type` ids).
public enum TensorType: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q8_0 = 8
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case bf16 = 30

    /// Elements per block (1 for plain floats).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: 1
        case .q4_0, .q4_1, .q5_0, .q8_0: 32
        case .q4_K, .q5_K, .q6_K: 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: 4
        case .f16, .bf16: 2
        case .q4_0: 18  // f16 d, 16 bytes of 4-bit quants
        case .q4_1: 20  // f16 d, f16 m, 16 bytes of 4-bit quants
        case .q5_0: 22  // f16 d, 4 bytes of fifth bits, 16 bytes of 4-bit quants
        case .q8_0: 34  // f16 d, 32 int8 quants
        case .q4_K: 144  // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of quants
        case .q5_K: 176  // as q4_K plus 32 bytes of high bits
        case .q6_K: 210  // 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, f16 d
        }
    }

    public var description: String {
        switch self {
        case .f32: "F32"
        case .f16: "F16"
        case .bf16: "BF16"
        case .q4_0: "Q4_0"
        case .q4_1: "Q4_1"
        case .q5_0: "Q5_0"
        case .q8_0: "Q8_0"
        case .q4_K: "Q4_K"
        case .q5_K: "Q5_K"
        case .q6_K: "Q6_K"
        }
    }

    /// Bytes of `elements` values, or `nil` when the count is not a whole number of blocks or overflows.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: blockBytes)
        return overflow ? nil : bytes
    }
}
