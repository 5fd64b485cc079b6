import CKernels
import Foundation
import GGUF

#if canImport(Glibc)
    import Glibc
#endif

/// A repacked matrix's memory (64-byte aligned), freed with the last model that uses it.
final class PackedWeights: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let bytes: Int

    init(bytes: Int) {
        self.bytes = bytes
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    }

    deinit { pointer.deallocate() }

    /// Gives the whole pages of [start, start + bytes) of the mapped file back to the OS: they
    /// leave the process's resident set, and would be read from the file again if touched.
    static func release(_ start: UnsafeRawPointer, bytes: Int) {
        #if os(Linux)
            let page = Int(sysconf(Int32(_SC_PAGESIZE)))
            let lo = (Int(bitPattern: start) + page - 1) / page * page
            let hi = (Int(bitPattern: start) + bytes) / page * page
            guard hi > lo, let p = UnsafeMutableRawPointer(bitPattern: lo) else { return }
            _ = madvise(p, hi - lo, Int32(MADV_DONTNEED))
        #endif
    }
}

/// A weight matrix `(rows = out, cols = in)`: used in place in the mapped file, or repacked at
/// load into the products' interleaved layout (`packed`; lm_pack_rows), the file's pages then
/// given back to the OS.
struct WeightMatrix: @unchecked Sendable {
    let name: String
    let base: UnsafeRawPointer
    let type: TensorType
    let rows: Int
    let cols: Int
    let rowBytes: Int
    /// The repacked copy, when there is one; `base` is then not read.
    private(set) var packed: PackedWeights?

    init(_ file: GGUFFile, _ name: String, rows: Int, cols: Int) throws {
        guard let t = file.tensor(name) else { throw ModelError("tensor \(name) is missing") }
        guard t.dimensions == [cols, rows] else {
            throw ModelError("tensor \(name) has shape \(t.dimensions), expected [\(cols), \(rows)]")
        }
        self.name = name
        base = file.bytes(of: t).baseAddress!
        type = t.type
        self.rows = rows
        self.cols = cols
        rowBytes = t.byteCount / rows
    }

    /// Rows `slice` of this matrix, as a matrix of their own (a fused tensor's parts: Phi-3's
    /// q/k/v and gate/up). Rows are whole blocks, so a slice is a byte range of the tensor.
    func rows(_ slice: Range<Int>) -> WeightMatrix {
        precondition(packed == nil && slice.lowerBound >= 0 && slice.upperBound <= rows)
        return WeightMatrix(
            name: "\(name)[\(slice.lowerBound)..<\(slice.upperBound)]", base: base + slice.lowerBound * rowBytes,
            type: type, rows: slice.count, cols: cols, rowBytes: rowBytes)
    }

    private init(name: String, base: UnsafeRawPointer, type: TensorType, rows: Int, cols: Int, rowBytes: Int) {
        self.name = name
        self.base = base
        self.type = type
        self.rows = rows
        self.cols = cols
        self.rowBytes = rowBytes
    }

    /// This matrix repacked (when its type has a packed layout), the groups shared among
    /// `threads` threads, and the file's pages under it given back (madvise): they are not read
    /// again. Unchanged when the type has no packed layout.
    func repacked(threads: Int) -> WeightMatrix {
        guard packed == nil, let (kind, _) = kernel, lm_pack_supported(kind) != 0 else { return self }
        let bytes = lm_pack_bytes(kind, Int32(cols), Int32(rows))
        let storage = PackedWeights(bytes: bytes)
        let groups = (rows + 15) / 16
        let parts = max(1, min(threads, groups))
        let rows32 = Int32(rows)
        let cols32 = Int32(cols)
        let rb = rowBytes
        let src = Int(bitPattern: base)
        let dst = Int(bitPattern: storage.pointer)
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            lm_pack_rows(
                kind, cols32, UnsafeRawPointer(bitPattern: src), rb, rows32, Int32(groups * i / parts),
                Int32(groups * (i + 1) / parts),
                UnsafeMutableRawPointer(bitPattern: dst))
        }
        PackedWeights.release(base, bytes: rows * rowBytes)
        var copy = self
        copy.packed = storage
        return copy
    }

    /// The activation format of this type's product, as llama.cpp pairs them.
    enum Activations { case q8, q8k, float }

    /// `lm_matmul`'s kind for this type, with the activations it takes; nil for types
    /// computed from dequantized rows.
    var kernel: (kind: Int32, acts: Activations)? {
        switch type {
        case .q4_1: (0, .q8)
        case .q8_0: (1, .q8)
        case .q4_0: (2, .q8)
        case .q5_0: (7, .q8)
        case .q4_K: (3, .q8k)
        case .q6_K: (4, .q8k)
        case .f16: (5, .float)
        case .f32: (6, .float)
        default: nil
        }
    }

    /// Row `r` as F32.
    func row(_ r: Int, into out: UnsafeMutablePointer<Float>) {
        if let packed, let (kind, _) = kernel {
            withUnsafeTemporaryAllocation(byteCount: rowBytes, alignment: 16) { buffer in
                lm_unpack_row(kind, Int32(cols), packed.pointer, Int32(r), buffer.baseAddress!)
                dequantize(UnsafeRawBufferPointer(buffer), into: out)
            }
            return
        }
        dequantize(UnsafeRawBufferPointer(start: base + r * rowBytes, count: rowBytes), into: out)
    }

    private func dequantize(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<Float>) {
        let blocks = cols / type.blockSize
        for b in 0..<blocks {
            Dequantize.block(
                UnsafeRawBufferPointer(rebasing: bytes[(b * type.blockBytes)..<((b + 1) * type.blockBytes)]),
                type: type,
                into: UnsafeMutableBufferPointer(start: out + b * type.blockSize, count: type.blockSize))
        }
    }
}

/// Matrix products for a batch of tokens on a persistent thread pool. An input is quantized
/// once for every matrix that reads it (Q, K and V read the same normed input; so do gate and
/// up), and the matrices' rows are shared among the threads in one pool job.
final class Products: @unchecked Sendable {
    let pool: OpaquePointer
    let threads: Int
    let maxCols: Int
    let maxBatch: Int
    private let q8: UnsafeMutablePointer<lm_act_q8>
    private let q8k: UnsafeMutablePointer<lm_block_q8_k>
    private let rowScratch: UnsafeMutablePointer<Float>
    private var jobs: [lm_matmul_job] = []

    init(maxCols: Int, threads: Int, maxBatch: Int) {
        self.threads = max(1, threads)
        self.maxCols = maxCols
        self.maxBatch = max(1, maxBatch)
        pool = lm_pool_create(Int32(self.threads))
        q8 = .allocate(capacity: (maxCols / 32 + 1) * self.maxBatch)
        q8k = .allocate(capacity: (maxCols / 256 + 1) * self.maxBatch)
        rowScratch = .allocate(capacity: maxCols)
        jobs.reserveCapacity(4)
    }

    deinit {
        lm_pool_destroy(pool)
        q8.deallocate()
        q8k.deallocate()
        rowScratch.deallocate()
    }

    /// What the products' input goes through first, as part of the products' pool job.
    enum Prelude {
        /// The input as it is.
        case none
        /// `residual += add` (when given), then the input = rms_norm(residual) · weights.
        case rmsNorm(
            residual: UnsafeMutablePointer<Float>, add: UnsafePointer<Float>?, weights: UnsafePointer<Float>, eps: Float
        )
        /// The input (the gate) = silu(gate) · up, or gelu(gate) · up.
        case silu(up: UnsafePointer<Float>)
        case geglu(up: UnsafePointer<Float>)
    }

    /// `outs[i][b] = ws[i] · x[b]` for `batch` tokens, after `prelude` has made x; rows of x are
    /// `ws[0].cols` apart, rows of `outs[i]` are `ws[i].rows` apart. Each element is computed
    /// the same way whatever the batch. The prelude and the quantization of x run in the pool,
    /// in the same job as the products.
    func apply(
        _ ws: [WeightMatrix], batch: Int, _ x: UnsafeMutablePointer<Float>, _ outs: [UnsafeMutablePointer<Float>],
        prelude: Prelude = .none
    ) {
        let cols = ws[0].cols
        precondition(cols <= maxCols && batch <= maxBatch && ws.allSatisfy { $0.cols == cols })
        // The activation formats these products read (each quantized once, in the prelude).
        let wantsQ8 = ws.contains { $0.kernel?.acts == .q8 }
        let wantsQ8K = ws.contains { $0.kernel?.acts == .q8k }
        var pre = lm_prelude(
            op: Int32(LM_PRE_QUANTIZE), n: Int32(cols), y: x, x: nil, add: nil, up: nil, w: nil, eps: 0,
            q8: wantsQ8 ? q8 : nil, q8k: wantsQ8K ? UnsafeMutableRawPointer(q8k) : nil)
        switch prelude {
        case .none: break
        case .rmsNorm(let residual, let add, let weights, let eps):
            pre.op = Int32(LM_PRE_RMS_NORM)
            pre.x = residual
            pre.add = add
            pre.w = weights
            pre.eps = eps
        case .silu(let up):
            pre.op = Int32(LM_PRE_SILU)
            pre.up = up
        case .geglu(let up):
            pre.op = Int32(LM_PRE_GEGLU)
            pre.up = up
        }
        jobs.removeAll(keepingCapacity: true)
        for (w, out) in zip(ws, outs) {
            guard let (kind, acts) = w.kernel else { continue }
            let (base, stride): (UnsafeRawPointer, Int) =
                switch acts {
                case .q8: (UnsafeRawPointer(q8), cols / 32 * MemoryLayout<lm_act_q8>.stride)
                case .q8k: (UnsafeRawPointer(q8k), cols / 256 * MemoryLayout<lm_block_q8_k>.stride)
                case .float: (UnsafeRawPointer(x), cols * MemoryLayout<Float>.stride)
                }
            jobs.append(
                lm_matmul_job(
                    kind: kind, n: Int32(cols), w: w.packed.map { UnsafeRawPointer($0.pointer) } ?? w.base,
                    row_bytes: w.rowBytes, x: base, x_stride: stride, out: out, out_stride: w.rows,
                    rows: Int32(w.rows), packed: w.packed == nil ? 0 : 1))
        }
        // Float-only products of an input used as it is have no prelude to run.
        if pre.op != Int32(LM_PRE_QUANTIZE) || wantsQ8 || wantsQ8K {
            lm_pool_matmul(pool, &pre, jobs, Int32(jobs.count), Int32(batch))
        } else if !jobs.isEmpty {
            lm_pool_matmul(pool, nil, jobs, Int32(jobs.count), Int32(batch))
        }
        for (w, out) in zip(ws, outs) where w.kernel == nil { applyDequantized(w, batch: batch, x, out) }
    }

    /// `body(item, thread)` for every item in 0..<count on the pool's threads (thread 0 is the
    /// caller's); returns when all are done. Items must not depend on one another.
    func parallel(_ count: Int, _ body: (Int, Int) -> Void) {
        guard count > 0 else { return }
        withoutActuallyEscaping(body) { body in
            let box = ParallelBody(body)
            lm_pool_for(
                pool, Int32(count),
                { ctx, item, thread in
                    Unmanaged<ParallelBody>.fromOpaque(ctx!).takeUnretainedValue().body(Int(item), Int(thread))
                }, Unmanaged.passUnretained(box).toOpaque())
        }
    }

    private final class ParallelBody {
        let body: (Int, Int) -> Void
        init(_ body: @escaping (Int, Int) -> Void) { self.body = body }
    }

    /// Types without a quantized kernel (F32, F16 and the other quantizations): each row
    /// dequantized to F32, then plain dot products in a fixed order.
    func applyDequantized(_ w: WeightMatrix, batch: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>)
    {
        for r in 0..<w.rows {
            w.row(r, into: rowScratch)
            for b in 0..<batch {
                let xb = x + b * w.cols
                var s: Float = 0
                for i in 0..<w.cols { s += rowScratch[i] * xb[i] }
                out[b * w.rows + r] = s
            }
        }
    }
}
