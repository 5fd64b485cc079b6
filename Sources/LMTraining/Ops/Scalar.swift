import COpenBLAS
import Foundation

/// The float type a training graph runs in: `Float` for training, `Double` for the
/// finite-difference checks of every op. Products go to BLAS (OpenBLAS), whose result for a
/// given shape and thread count is always the same, so a run is reproducible bit for bit.
public protocol TrainScalar: BinaryFloatingPoint, Sendable where Self.RawSignificand: FixedWidthInteger {
    /// Row-major `C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C`.
    static func gemm(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
        _ a: UnsafePointer<Self>, _ lda: Int, _ b: UnsafePointer<Self>, _ ldb: Int,
        _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
    /// The same product in one call on the calling thread (inside work already split among threads).
    static func gemmSerial(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Self,
        _ a: UnsafePointer<Self>, _ lda: Int, _ b: UnsafePointer<Self>, _ ldb: Int,
        _ beta: Self, _ c: UnsafeMutablePointer<Self>, _ ldc: Int)
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func cos(_ x: Self) -> Self
    static func sin(_ x: Self) -> Self
}

extension Float: TrainScalar {
    public static func gemm(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        let threads = BLASThreads.count
        // Large products are split among the threads by rows (or columns) of C, each part a
        // single-threaded BLAS call: OpenBLAS's own threads spin between calls and took a core
        // from the rest of the step.
        if threads > 1, m * n * k >= 1 << 20 {
            let byRows = m >= n
            let parts = min(threads, byRows ? m : n)
            let pa = SendablePointer(UnsafeMutablePointer(mutating: a))
            let pb = SendablePointer(UnsafeMutablePointer(mutating: b))
            let pc = SendablePointer(c)
            DispatchQueue.concurrentPerform(iterations: parts) { i in
                let total = byRows ? m : n
                let lo = total * i / parts
                let hi = total * (i + 1) / parts
                guard hi > lo else { return }
                // A part is rows [lo, hi) of C (and A), or columns [lo, hi) of C (and B).
                let aPart = !byRows ? pa.p : transA ? pa.p + lo : pa.p + lo * lda
                let bPart = byRows ? pb.p : transB ? pb.p + lo * ldb : pb.p + lo
                let cPart = byRows ? pc.p + lo * ldc : pc.p + lo
                gemmSerial(
                    transA, transB, byRows ? hi - lo : m, byRows ? n : hi - lo, k, alpha, aPart, lda, bPart, ldb, beta,
                    cPart, ldc)
            }
            return
        }
        gemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    public static func gemmSerial(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    public static func exp(_ x: Float) -> Float { expf(x) }
    public static func log(_ x: Float) -> Float { logf(x) }
    public static func tanh(_ x: Float) -> Float { tanhf(x) }
    public static func cos(_ x: Float) -> Float { cosf(x) }
    public static func sin(_ x: Float) -> Float { sinf(x) }
}

extension Double: TrainScalar {
    public static func gemm(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
        _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
        _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_dgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
    public static func gemmSerial(
        _ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Double,
        _ a: UnsafePointer<Double>, _ lda: Int, _ b: UnsafePointer<Double>, _ ldb: Int,
        _ beta: Double, _ c: UnsafeMutablePointer<Double>, _ ldc: Int
    ) {
        gemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
    public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    public static func log(_ x: Double) -> Double { Foundation.log(x) }
    public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    public static func cos(_ x: Double) -> Double { Foundation.cos(x) }
    public static func sin(_ x: Double) -> Double { Foundation.sin(x) }
}

/// The threads training's float32 products use: BLAS runs single-threaded and large products
/// are split among this many threads by prs (a fixed split, so results depend only on the count).
public enum BLASThreads {
    nonisolated(unsafe) static var count = 1
    public static func set(_ n: Int) {
        openblas_set_num_threads(1)
        count = max(1, n)
    }
}

struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}

/// A buffer of `count` scalars, zeroed, freed with its owner.
final class Buffer<T: TrainScalar>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    let count: Int
    init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: max(1, count))
        p.initialize(repeating: 0, count: max(1, count))
    }
    deinit { p.deallocate() }
    func zero() { p.update(repeating: 0, count: count) }
}

/// Row-parallel loops over the training threads: `body(lo, hi)` for consecutive ranges of rows.
/// Each row's numbers are computed by one thread in one order, whatever the split.
enum Parallel {
    static func rows(_ n: Int, minimum: Int = 16, _ body: (Int, Int) -> Void) {
        let parts = min(BLASThreads.count, max(1, n / max(1, minimum)))
        if parts <= 1 {
            body(0, n)
            return
        }
        withoutActuallyEscaping(body) { b in
            let box = SendableBox(b)
            DispatchQueue.concurrentPerform(iterations: parts) { i in box.value(n * i / parts, n * (i + 1) / parts) }
        }
    }
}

struct SendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
