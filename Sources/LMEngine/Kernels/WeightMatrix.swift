import GGUF
import CKernels

/// A weight matrix `(rows = out, cols = in)` used in place in the mapped file.
struct WeightMatrix: @unchecked Sendable {
    let name: String
    let base: UnsafeRawPointer
    let type: TensorType
    let rows: Int
    let cols: Int
    let rowBytes: Int

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
        let bytes = UnsafeRawBufferPointer(start: base + r * rowBytes, count: rowBytes)
        let blocks = cols / type.blockSize
        for b in 0..<blocks {
            Dequantize.block(UnsafeRawBufferPointer(rebasing: bytes[(b * type.blockBytes)..<((b + 1) * type.blockBytes)]), type: type,
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

    /// `outs[i][b] = ws[i] · x[b]` for `batch` tokens; rows of x are `ws[0].cols` apart, rows of
    /// `outs[i]` are `ws[i].rows` apart. Each element is computed the same way whatever the batch.
    func apply(_ ws: [WeightMatrix], batch: Int, _ x: UnsafePointer<Float>, _ outs: [UnsafeMutablePointer<Float>]) {
        let cols = ws[0].cols
        precondition(cols <= maxCols && batch <= maxBatch && ws.allSatisfy { $0.cols == cols })
        var quantized8 = false, quantizedK = false
        jobs.removeAll(keepingCapacity: true)
        for (w, out) in zip(ws, outs) {
            guard let (kind, acts) = w.kernel else {
                applyDequantized(w, batch: batch, x, out)
                continue
            }
            let acts8 = acts == .q8
            if acts8, !quantized8 {
                for b in 0..<batch { lm_quantize_acts(x + b * cols, q8 + b * (cols / 32), Int32(cols)) }
                quantized8 = true
            }
            if acts == .q8k, !quantizedK {
                for b in 0..<batch { lm_quantize_q8_k(x + b * cols, q8k + b * (cols / 256), Int32(cols)) }
                quantizedK = true
            }
            let (base, stride): (UnsafeRawPointer, Int) = switch acts {
            case .q8: (UnsafeRawPointer(q8), cols / 32 * MemoryLayout<lm_act_q8>.stride)
            case .q8k: (UnsafeRawPointer(q8k), cols / 256 * MemoryLayout<lm_block_q8_k>.stride)
            case .float: (UnsafeRawPointer(x), cols * MemoryLayout<Float>.stride)
            }
            jobs.append(lm_matmul_job(kind: kind, n: Int32(cols), w: w.base, row_bytes: w.rowBytes, x: base, x_stride: stride,
                                      out: out, out_stride: w.rows, rows: Int32(w.rows)))
        }
        if !jobs.isEmpty { lm_pool_matmul(pool, jobs, Int32(jobs.count), Int32(batch)) }
    }

    /// Types without a quantized kernel (F32, F16 and the other quantizations): each row
    /// dequantized to F32, then plain dot products in a fixed order.
    func applyDequantized(_ w: WeightMatrix, batch: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
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
