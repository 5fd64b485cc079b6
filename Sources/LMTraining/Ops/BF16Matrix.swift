import CKernels
import Dispatch

/// A frozen weight W (out × in) held as bfloat16 tiles in the two layouts training reads it
/// in: for y = x · Wᵀ and for dx = dy · W. Inputs are rounded to bfloat16, sums kept in
/// float32 (AVX512-BF16, or AMX tiles). Built only where `available`.
public final class BF16Matrix: FrozenMatrix, @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    let forward: UnsafeMutablePointer<UInt16>
    let backward: UnsafeMutablePointer<UInt16>
    let threads: Int
    /// The converted inputs' buffer, shared by the matrices of one model (products run one at a time).
    let scratch: BF16Scratch

    public static var available: Bool { lm_bf16_isa() != 0 }
    /// "avx512-bf16", "amx" or nil.
    public static var isa: String? { [1: "avx512-bf16", 2: "amx"][Int(lm_bf16_isa())] }

    /// Packs `w` (rows × cols, row-major).
    public init(_ w: UnsafePointer<Float>, rows: Int, cols: Int, threads: Int, scratch: BF16Scratch = BF16Scratch()) {
        self.scratch = scratch
        self.rows = rows
        self.cols = cols
        self.threads = max(1, threads)
        forward = .allocate(capacity: lm_amx_packed_b_count(Int32(cols), Int32(rows)))
        backward = .allocate(capacity: lm_amx_packed_b_count(Int32(rows), Int32(cols)))
        lm_amx_pack_b(w, cols, 1, Int32(cols), Int32(rows), forward)
        lm_amx_pack_b(w, cols, 0, Int32(rows), Int32(cols), backward)
    }

    deinit {
        forward.deallocate()
        backward.deallocate()
    }

    public var residentBytes: Int {
        2 * (lm_amx_packed_b_count(Int32(cols), Int32(rows)) + lm_amx_packed_b_count(Int32(rows), Int32(cols)))
    }

    /// y = x · Wᵀ (`accumulate`: y += …); x is n × cols, y n × rows.
    public func multiply(_ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        run(x, n, k: cols, packed: forward, outCols: rows, y, accumulate: accumulate, scratch: scratch)
    }

    /// dx (+)= dy · W; dy is n × rows, dx n × cols.
    public func multiplyTransposed(
        _ dy: UnsafePointer<Float>, _ n: Int, _ dx: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        run(dy, n, k: rows, packed: backward, outCols: cols, dx, accumulate: accumulate, scratch: scratch)
    }

    private func run(
        _ a: UnsafePointer<Float>, _ n: Int, k: Int, packed: UnsafePointer<UInt16>, outCols: Int,
        _ c: UnsafeMutablePointer<Float>, accumulate: Bool, scratch: BF16Scratch
    ) {
        guard n > 0 else { return }
        let pa = scratch.buffer(lm_amx_packed_a_count(Int32(n), Int32(k)))
        lm_amx_pack_a(a, k, Int32(n), Int32(k), pa)
        let blocks = (outCols + 31) / 32
        let parts = min(threads, blocks)
        let beta: Float = accumulate ? 1 : 0
        let pc = SendablePointer(c)
        let ppa = SendablePointer(pa)
        let pb = SendablePointer(UnsafeMutablePointer(mutating: packed))
        // Columns are split among threads in 32-wide blocks; an element's sum does not depend on the split.
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            let b0 = blocks * i / parts
            let b1 = blocks * (i + 1) / parts
            lm_bf16_gemm(
                ppa.p, Int32(n), Int32(k), pb.p, Int32(outCols), pc.p, outCols, beta, Int32(b0 * 32),
                Int32(min(outCols, b1 * 32)))
        }
    }
}

/// A reusable bfloat16 buffer for converted inputs.
public final class BF16Scratch: @unchecked Sendable {
    private var p: UnsafeMutablePointer<UInt16>?
    private var capacity = 0
    public init() {}
    func buffer(_ n: Int) -> UnsafeMutablePointer<UInt16> {
        if n > capacity {
            p?.deallocate()
            p = .allocate(capacity: n)
            capacity = n
        }
        return p!
    }
    deinit { p?.deallocate() }
}
