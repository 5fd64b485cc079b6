import Dispatch
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

    /// The activation format this type's dot product takes, as llama.cpp pairs them.
    var kernel: Int32? {
        switch type {
        case .q4_1: 0
        case .q8_0: 1
        case .q4_0: 2
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

/// Matrix–vector products on a fixed number of threads, with the activation buffers allocated once.
final class MatVec: @unchecked Sendable {
    let threads: Int
    private let q81: UnsafeMutablePointer<lm_block_q8_1>
    private let q80: UnsafeMutablePointer<lm_block_q8_0>
    private let rowScratch: UnsafeMutablePointer<Float>
    private let maxCols: Int

    /// Tokens a batched product takes at most.
    let maxBatch: Int

    init(maxCols: Int, threads: Int, maxBatch: Int = 1) {
        self.threads = max(1, threads)
        self.maxCols = maxCols
        self.maxBatch = max(1, maxBatch)
        q81 = .allocate(capacity: (maxCols / 32 + 1) * self.maxBatch)
        q80 = .allocate(capacity: (maxCols / 32 + 1) * self.maxBatch)
        rowScratch = .allocate(capacity: maxCols * self.threads)
    }

    deinit {
        q81.deallocate()
        q80.deallocate()
        rowScratch.deallocate()
    }

    /// `out = W x`: the batched product with a batch of one.
    func apply(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        apply(w, batch: 1, x, out)
    }

    /// `out[b] = W x[b]` for `batch` tokens (rows of x `w.cols` apart, rows of out `w.rows` apart),
    /// each element computed exactly as `apply` computes it.
    func apply(_ w: WeightMatrix, batch: Int, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        precondition(w.cols <= maxCols && batch <= maxBatch)
        guard let kernel = w.kernel else {
            for b in 0..<batch { applyDequantized(w, x + b * w.cols, out + b * w.rows) }
            return
        }
        let n = Int32(w.cols)
        let blocks = w.cols / 32
        let acts: UnsafeRawPointer
        let stride: Int
        if kernel == 0 {
            for b in 0..<batch { lm_quantize_q8_1(x + b * w.cols, q81 + b * blocks, n) }
            acts = UnsafeRawPointer(q81)
            stride = blocks * MemoryLayout<lm_block_q8_1>.stride
        } else {
            for b in 0..<batch { lm_quantize_q8_0(x + b * w.cols, q80 + b * blocks, n) }
            acts = UnsafeRawPointer(q80)
            stride = blocks * MemoryLayout<lm_block_q8_0>.stride
        }
        let chunks = min(threads, w.rows)
        let per = (w.rows + chunks - 1) / chunks
        nonisolated(unsafe) let out = out, a = acts
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let r0 = c * per, r1 = min(w.rows, r0 + per)
            guard r0 < r1 else { return }
            lm_matmat_rows(kernel, n, w.base, w.rowBytes, a, stride, Int32(batch), out, w.rows, Int32(r0), Int32(r1))
        }
    }

    /// Types without a quantized kernel: each row dequantized to F32, then a plain dot product.
    func applyDequantized(_ w: WeightMatrix, _ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>) {
        let chunks = min(threads, w.rows)
        let per = (w.rows + chunks - 1) / chunks
        nonisolated(unsafe) let x = x, out = out
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let r0 = c * per, r1 = min(w.rows, r0 + per)
            let scratch = rowScratch + c * maxCols
            for r in r0..<r1 {
                w.row(r, into: scratch)
                var s: Float = 0
                for i in 0..<w.cols { s += scratch[i] * x[i] }
                out[r] = s
            }
        }
    }
}
