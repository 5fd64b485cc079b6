import CKernels
import Dispatch
import GGUF

/// A frozen weight W (rows × cols, row-major as GGUF stores it) that training multiplies by
/// but never changes: y = x · Wᵀ in the forward, dx = dy · W in the backward.
public protocol FrozenMatrix: AnyObject, Sendable {
    var rows: Int { get }
    var cols: Int { get }
    /// Bytes this matrix holds in memory of its own (not counting a mapped file).
    var residentBytes: Int { get }
    /// y (+)= x · Wᵀ; x is n × cols, y n × rows.
    func multiply(_ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutablePointer<Float>, accumulate: Bool)
    /// dx (+)= dy · W; dy is n × rows, dx n × cols.
    func multiplyTransposed(_ dy: UnsafePointer<Float>, _ n: Int, _ dx: UnsafeMutablePointer<Float>, accumulate: Bool)
}

/// A frozen weight read straight from its GGUF blocks (Q4_0, Q4_1, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K,
/// F16, BF16 or F32) in the mapped file: each product expands one tile of rows at a time to
/// float32 in a per-thread buffer and multiplies it with BLAS, so no float copy of the matrix
/// exists. Tiles and threads' shares follow from the shapes and the thread count alone, so a
/// product's bits do too.
public final class QuantMatrix: FrozenMatrix, @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let type: TensorType
    let file: GGUFFile
    let base: UnsafeRawPointer
    let rowBytes: Int
    let threads: Int
    let blockSize: Int
    /// Rows a forward tile expands; rows a backward tile sums over. Large enough that BLAS's
    /// repacking of the tokens' side (x in the forward, dx's running sum in the backward) is paid
    /// once per 512 or 1,024 rows: 128 and 256 cost 12% against dense float32 on a 1.7B model.
    static let forwardTile = 512
    static let backwardTile = 1024
    let scratch: QuantScratch
    /// Floats a thread's tile takes at most.
    let tileFloats: Int

    /// Tensor `name` of `file`, which must be `rows × cols`.
    /// Tiles are expanded into `scratch`, which the matrices of one model share (their products
    /// run one at a time).
    public init(file: GGUFFile, name: String, rows: Int, cols: Int, threads: Int, scratch: QuantScratch) throws {
        guard let t = file.tensor(name) else { throw TrainingError("\(file.path): tensor \(name) is missing") }
        guard t.elementCount == rows * cols, t.dimensions.first == cols else {
            throw TrainingError("\(file.path): tensor \(name) has shape \(t.dimensions), expected \(cols) × \(rows)")
        }
        let bs = Int(lm_dequant_block_size(Int32(t.type.rawValue)))
        guard bs > 0, cols % bs == 0 else {
            throw TrainingError(
                "\(file.path): tensor \(name) is \(t.type); training reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q8_0, "
                    + "Q4_K, Q5_K and Q6_K"
            )
        }
        self.file = file
        self.rows = rows
        self.cols = cols
        type = t.type
        blockSize = bs
        base = file.bytes(of: t).baseAddress!
        rowBytes = cols / bs * t.type.blockBytes
        self.threads = max(1, threads)
        tileFloats = max(
            Self.forwardTile * cols, Self.backwardTile * ((cols / bs + self.threads - 1) / self.threads) * bs)
        self.scratch = scratch
        scratch.reserve(threads: self.threads, floats: tileFloats)
    }

    /// The tiles live in the shared scratch; the blocks in the mapped file.
    public var residentBytes: Int { 0 }

    /// The bytes of the quantized blocks this matrix reads from the file.
    public var fileBytes: Int { rows * rowBytes }

    /// Rows [r0, r0 + n), values [c0, c1), into `out` (rows `ld` apart).
    func expand(_ r0: Int, _ n: Int, _ c0: Int, _ c1: Int, _ out: UnsafeMutablePointer<Float>, ld: Int) {
        let status = lm_dequantize_rows(
            Int32(type.rawValue), base + r0 * rowBytes, rowBytes, Int32(n), Int32(c0), Int32(c1), out, ld)
        precondition(status == 0, "\(type) rows cannot be expanded at \(c0)..<\(c1)")
    }

    /// Row `r` as float32 (the embedding's lookup).
    public func row(_ r: Int, into out: UnsafeMutablePointer<Float>) { expand(r, 1, 0, cols, out, ld: cols) }

    public func multiply(_ x: UnsafePointer<Float>, _ n: Int, _ y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        guard n > 0 else { return }
        // Threads take equal shares of W's rows (in whole groups of 16), each cut into equal tiles
        // of at most `forwardTile` rows: a share of 576 rows is one tile, not 512 + 64.
        let groups = (rows + 15) / 16
        let parts = max(1, min(threads, groups))
        let px = SendablePointer(UnsafeMutablePointer(mutating: x))
        let py = SendablePointer(y)
        let beta: Float = accumulate ? 1 : 0
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            let buf = scratch.buffers[i].p
            let lo = min(rows, groups * i / parts * 16)
            let hi = min(rows, groups * (i + 1) / parts * 16)
            guard hi > lo else { return }
            let tiles = (hi - lo + Self.forwardTile - 1) / Self.forwardTile
            for t in 0..<tiles {
                let r0 = lo + (hi - lo) * t / tiles
                let r1 = lo + (hi - lo) * (t + 1) / tiles
                expand(r0, r1 - r0, 0, cols, buf, ld: cols)
                Float.gemmSerial(false, true, n, r1 - r0, cols, 1, px.p, cols, buf, cols, beta, py.p + r0, rows)
            }
        }
    }

    public func multiplyTransposed(
        _ dy: UnsafePointer<Float>, _ n: Int, _ dx: UnsafeMutablePointer<Float>, accumulate: Bool
    ) {
        guard n > 0 else { return }
        let tile = Self.backwardTile
        let tiles = (rows + tile - 1) / tile
        let blocks = cols / blockSize
        let parts = min(threads, blocks)
        let pdy = SendablePointer(UnsafeMutablePointer(mutating: dy))
        let pdx = SendablePointer(dx)
        // Threads own column spans of dx; each sums the tiles over W's rows in order.
        DispatchQueue.concurrentPerform(iterations: parts) { i in
            let c0 = blocks * i / parts * blockSize
            let c1 = blocks * (i + 1) / parts * blockSize
            guard c1 > c0 else { return }
            let buf = scratch.buffers[i].p
            let w = c1 - c0
            for t in 0..<tiles {
                let r0 = t * tile
                let h = min(tile, rows - r0)
                expand(r0, h, c0, c1, buf, ld: w)
                let beta: Float = accumulate || t > 0 ? 1 : 0
                Float.gemmSerial(false, false, n, w, h, 1, pdy.p + r0, rows, buf, w, beta, pdx.p + c0, cols)
            }
        }
    }
}

/// The per-thread float32 tiles the `QuantMatrix`es of one model expand into.
public final class QuantScratch: @unchecked Sendable {
    private(set) var buffers: [Buffer<Float>] = []
    public init() {}
    /// Makes room for `threads` tiles of `floats` each (before any product runs).
    func reserve(threads: Int, floats: Int) {
        for i in 0..<threads where i >= buffers.count || buffers[i].count < floats {
            if i < buffers.count { buffers[i] = Buffer(floats) } else { buffers.append(Buffer(floats)) }
        }
    }
    public var bytes: Int { buffers.reduce(0) { $0 + $1.count * 4 } }
}
