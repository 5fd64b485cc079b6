import Foundation
import LMEngine

/// The ops of the llama forward pass with their backward passes, each backward beside its
/// forward (llm.c's layout). Matrices are row-major; `T` rows are tokens. A backward
/// *accumulates* into its input gradients (`+=`), so a value read by several ops (the residual
/// stream, the normed input of Q, K and V) sums their gradients.
public enum Ops {
    // MARK: embedding

    /// out[t] = table[tokens[t]] (`dim` wide).
    public static func embeddingForward<T: TrainScalar>(
        _ tokens: [Int32], _ table: UnsafePointer<T>, _ dim: Int, _ out: UnsafeMutablePointer<T>
    ) {
        for (t, id) in tokens.enumerated() { (out + t * dim).update(from: table + Int(id) * dim, count: dim) }
    }

    /// dTable[tokens[t]] += dOut[t].
    public static func embeddingBackward<T: TrainScalar>(
        _ tokens: [Int32], _ dOut: UnsafePointer<T>, _ dim: Int, _ dTable: UnsafeMutablePointer<T>
    ) {
        for (t, id) in tokens.enumerated() {
            let d = dTable + Int(id) * dim
            let g = dOut + t * dim
            for j in 0..<dim { d[j] += g[j] }
        }
    }

    // MARK: RMSNorm

    /// y = x · r · w with r = 1/√(mean(x²) + eps) per row; r is saved for the backward.
    public static func rmsNormForward<T: TrainScalar>(
        _ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ rows: Int, _ dim: Int, _ eps: T,
        _ y: UnsafeMutablePointer<T>, _ rstd: UnsafeMutablePointer<T>
    ) {
        let x = SendablePointer(UnsafeMutablePointer(mutating: x))
        let w = SendablePointer(UnsafeMutablePointer(mutating: w))
        let y = SendablePointer(y)
        let rstd = SendablePointer(rstd)
        Parallel.rows(rows) { lo, hi in rmsNormRows(x.p, w.p, lo, hi, dim, eps, y.p, rstd.p) }
    }

    static func rmsNormRows<T: TrainScalar>(
        _ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ lo: Int, _ hi: Int, _ dim: Int, _ eps: T,
        _ y: UnsafeMutablePointer<T>, _ rstd: UnsafeMutablePointer<T>
    ) {
        for t in lo..<hi {
            let xr = x + t * dim
            let yr = y + t * dim
            var ss: T = 0
            for j in 0..<dim { ss += xr[j] * xr[j] }
            let r = 1 / (ss / T(dim) + eps).squareRoot()
            rstd[t] = r
            for j in 0..<dim { yr[j] = xr[j] * r * w[j] }
        }
    }

    /// dx += r · (g − x̂ · mean(g ⊙ x̂)) with g = dy ⊙ w and x̂ = x · r; dw += Σ_t dy ⊙ x̂.
    public static func rmsNormBackward<T: TrainScalar>(
        _ dy: UnsafePointer<T>, _ x: UnsafePointer<T>, _ w: UnsafePointer<T>, _ rstd: UnsafePointer<T>,
        _ rows: Int, _ dim: Int, _ dx: UnsafeMutablePointer<T>, _ dw: UnsafeMutablePointer<T>?
    ) {
        let (pdy, px, pw, pr, pdx) = (
            SendablePointer(UnsafeMutablePointer(mutating: dy)), SendablePointer(UnsafeMutablePointer(mutating: x)),
            SendablePointer(UnsafeMutablePointer(mutating: w)), SendablePointer(UnsafeMutablePointer(mutating: rstd)),
            SendablePointer(dx)
        )
        Parallel.rows(rows) { lo, hi in
            for t in lo..<hi {
                let xr = px.p + t * dim
                let gr = pdy.p + t * dim
                let dr = pdx.p + t * dim
                let w = pw.p
                let r = pr.p[t]
                var dot: T = 0
                for j in 0..<dim { dot += gr[j] * w[j] * xr[j] * r }
                let mean = dot / T(dim)
                for j in 0..<dim {
                    let xhat = xr[j] * r
                    dr[j] += r * (gr[j] * w[j] - xhat * mean)
                }
            }
        }
        // The weight's gradient sums over rows: one thread, rows in order.
        if let dw {
            for t in 0..<rows {
                let xr = x + t * dim
                let gr = dy + t * dim
                let r = rstd[t]
                for j in 0..<dim { dw[j] += gr[j] * xr[j] * r }
            }
        }
    }

    // MARK: linear (y = x · Wᵀ, W is out × in)

    public static func linearForward<T: TrainScalar>(
        _ x: UnsafePointer<T>, _ rows: Int, _ inDim: Int, _ w: UnsafePointer<T>, _ outDim: Int,
        _ y: UnsafeMutablePointer<T>
    ) {
        T.gemm(false, true, rows, outDim, inDim, 1, x, inDim, w, inDim, 0, y, outDim)
    }

    /// dx += dy · W; dW += dyᵀ · x.
    public static func linearBackward<T: TrainScalar>(
        _ dy: UnsafePointer<T>, _ x: UnsafePointer<T>, _ rows: Int, _ inDim: Int,
        _ w: UnsafePointer<T>, _ outDim: Int, _ dx: UnsafeMutablePointer<T>, _ dw: UnsafeMutablePointer<T>?
    ) {
        T.gemm(false, false, rows, inDim, outDim, 1, dy, outDim, w, inDim, 1, dx, inDim)
        if let dw { T.gemm(true, false, outDim, inDim, rows, 1, dy, outDim, x, inDim, 1, dw, inDim) }
    }

    // MARK: LoRA (y += s · (x · Aᵀ) · Bᵀ, A is r × in, B is out × r)

    /// xa = x · Aᵀ (saved), y += s · xa · Bᵀ.
    public static func loraForward<T: TrainScalar>(
        _ x: UnsafePointer<T>, _ rows: Int, _ inDim: Int, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>,
        _ rank: Int, _ outDim: Int, _ scale: T, _ xa: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>
    ) {
        T.gemm(false, true, rows, rank, inDim, 1, x, inDim, a, inDim, 0, xa, rank)
        T.gemm(false, true, rows, outDim, rank, scale, xa, rank, b, rank, 1, y, outDim)
    }

    /// dB += s · dyᵀ · xa; dxa = s · dy · B; dA += dxaᵀ · x; dx += dxa · A. `dxa` is scratch (rows × rank).
    public static func loraBackward<T: TrainScalar>(
        _ dy: UnsafePointer<T>, _ x: UnsafePointer<T>, _ xa: UnsafePointer<T>, _ rows: Int, _ inDim: Int,
        _ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ rank: Int, _ outDim: Int, _ scale: T,
        _ dA: UnsafeMutablePointer<T>, _ dB: UnsafeMutablePointer<T>, _ dxa: UnsafeMutablePointer<T>,
        _ dx: UnsafeMutablePointer<T>?
    ) {
        T.gemm(true, false, outDim, rank, rows, scale, dy, outDim, xa, rank, 1, dB, rank)
        T.gemm(false, false, rows, rank, outDim, scale, dy, outDim, b, rank, 0, dxa, rank)
        T.gemm(true, false, rank, inDim, rows, 1, dxa, rank, x, inDim, 1, dA, inDim)
        if let dx { T.gemm(false, false, rows, inDim, rank, 1, dxa, rank, a, inDim, 1, dx, inDim) }
    }

    // MARK: rotary embeddings (adjacent pairs, ggml's normal mode, as GGUF llama weights expect)

    /// The cosines and sines of each token's position: `ropeDim / 2` angles a token,
    /// θᵢ = pos · base^(−2i / ropeDim).
    public static func ropeTables<T: TrainScalar>(
        _ positions: [Int], ropeDim: Int, base: Double,
        scaling: RopeScaling? = nil
    ) -> (cos: [T], sin: [T]) {
        let half = ropeDim / 2
        var c = [T](repeating: 0, count: positions.count * half)
        var s = c
        let corr = scaling?.correctionDims(ropeDim: ropeDim, base: Float(base)) ?? (0, 0)
        for (t, pos) in positions.enumerated() {
            for i in 0..<half {
                let theta = Double(pos) * Foundation.pow(base, -2 * Double(i) / Double(ropeDim))
                let (cv, sv) =
                    scaling?.rotation(theta, pair: i, corr: corr) ?? (Foundation.cos(theta), Foundation.sin(theta))
                c[t * half + i] = T(cv)
                s[t * half + i] = T(sv)
            }
        }
        return (c, s)
    }

    /// Rotates each head's first `ropeDim` values in pairs by its token's angles (`inverse`
    /// rotates back, which is the backward: the rotation's transpose).
    /// `halves` pairs value i with i + ropeDim/2 (ggml's NEOX mode, Gemma's) instead of 2i with 2i + 1.
    public static func rope<T: TrainScalar>(
        _ x: UnsafeMutablePointer<T>, _ rows: Int, heads: Int, headDim: Int, ropeDim: Int,
        _ cosines: [T], _ sines: [T], inverse: Bool = false, halves: Bool = false
    ) {
        let half = ropeDim / 2
        let width = heads * headDim
        let (stride, second) = halves ? (1, half) : (2, 1)
        for t in 0..<rows {
            for h in 0..<heads {
                let p = x + t * width + h * headDim
                for i in 0..<half {
                    let c = cosines[t * half + i]
                    let s = inverse ? -sines[t * half + i] : sines[t * half + i]
                    let a = stride * i
                    let b = a + second
                    let x0 = p[a]
                    let x1 = p[b]
                    p[a] = x0 * c - x1 * s
                    p[b] = x0 * s + x1 * c
                }
            }
        }
    }

    // MARK: grouped-query causal attention over packed sequences

    /// One packed sequence: rows [start, start + length) attend only to each other.
    public struct Segment: Sendable, Hashable {
        public var start: Int
        public var length: Int
        public init(start: Int, length: Int) {
            self.start = start
            self.length = length
        }
    }

    /// The scratch a layer's attention saves: per segment and head, the softmax probabilities (L × L).
    public static func attentionProbabilityCount(_ segments: [Segment], heads: Int) -> Int {
        segments.reduce(0) { $0 + heads * $1.length * $1.length }
    }

    /// out = softmax(q kᵀ · scale, causal) v per segment and head (scale 1/√hd unless given);
    /// query head h reads key/value head h / (heads / kvHeads). With `window`, row i attends to
    /// keys i − window + 1 … i only (sliding-window layers). `probs` receives the probabilities.
    public static func attentionForward<T: TrainScalar>(
        _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>, _ segments: [Segment],
        heads: Int, kvHeads: Int, headDim hd: Int, scale given: T? = nil, window: Int? = nil,
        _ probs: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<T>
    ) {
        let dim = heads * hd
        let kvDim = kvHeads * hd
        let group = heads / kvHeads
        let scale = given ?? 1 / T(hd).squareRoot()
        // (segment, head) pairs are independent: each writes its own probabilities and output columns.
        var tasks: [(seg: Segment, h: Int, offset: Int)] = []
        var offset = 0
        for seg in segments {
            for h in 0..<heads {
                tasks.append((seg, h, offset))
                offset += seg.length * seg.length
            }
        }
        let (pq, pk, pv, pp, po) = (
            SendablePointer(UnsafeMutablePointer(mutating: q)), SendablePointer(UnsafeMutablePointer(mutating: k)),
            SendablePointer(UnsafeMutablePointer(mutating: v)), SendablePointer(probs), SendablePointer(out)
        )
        Parallel.rows(tasks.count, minimum: 1) { lo, hi in
            for (seg, h, off) in tasks[lo..<hi] {
                let L = seg.length
                let kh = h / group
                let p = pp.p + off
                let qs = pq.p + seg.start * dim + h * hd
                let ks = pk.p + seg.start * kvDim + kh * hd
                let vs = pv.p + seg.start * kvDim + kh * hd
                T.gemmSerial(false, true, L, L, hd, scale, qs, dim, ks, kvDim, 0, p, L)
                for i in 0..<L {
                    let row = p + i * L
                    let first = window.map { Swift.max(0, i + 1 - $0) } ?? 0
                    var m = row[first]
                    for j in first...i { m = Swift.max(m, row[j]) }
                    var sum: T = 0
                    for j in first...i {
                        let e = T.exp(row[j] - m)
                        row[j] = e
                        sum += e
                    }
                    let inv = 1 / sum
                    for j in 0..<first { row[j] = 0 }
                    for j in first...i { row[j] *= inv }
                    for j in (i + 1)..<L { row[j] = 0 }
                }
                T.gemmSerial(false, false, L, hd, L, 1, p, L, vs, kvDim, 0, po.p + seg.start * dim + h * hd, dim)
            }
        }
    }

    /// dq += dS k, dk += dSᵀ q, dv += Pᵀ dout with dS = P ⊙ (dP − rowsum(dP ⊙ P)) / √hd and
    /// dP = dout vᵀ. Work is split by (segment, key/value head), so no two threads add into
    /// the same dk or dv; `scratch` is unused (each part has its own L × L matrix).
    public static func attentionBackward<T: TrainScalar>(
        _ dOut: UnsafePointer<T>, _ q: UnsafePointer<T>, _ k: UnsafePointer<T>, _ v: UnsafePointer<T>,
        _ probs: UnsafePointer<T>, _ segments: [Segment], heads: Int, kvHeads: Int, headDim hd: Int,
        scale given: T? = nil,
        _ dq: UnsafeMutablePointer<T>, _ dk: UnsafeMutablePointer<T>, _ dv: UnsafeMutablePointer<T>,
        _ scratch: UnsafeMutablePointer<T>
    ) {
        // Keys outside a row's window have probability 0, so their dS is 0 too: the window needs no
        // handling here beyond the saved probabilities.
        let dim = heads * hd
        let kvDim = kvHeads * hd
        let group = heads / kvHeads
        let scale = given ?? 1 / T(hd).squareRoot()
        var tasks: [(seg: Segment, kh: Int, offset: Int)] = []
        var offset = 0
        for seg in segments {
            for kh in 0..<kvHeads { tasks.append((seg, kh, offset + kh * group * seg.length * seg.length)) }
            offset += heads * seg.length * seg.length
        }
        let (pd, pq, pk, pv, pp) = (
            SendablePointer(UnsafeMutablePointer(mutating: dOut)), SendablePointer(UnsafeMutablePointer(mutating: q)),
            SendablePointer(UnsafeMutablePointer(mutating: k)), SendablePointer(UnsafeMutablePointer(mutating: v)),
            SendablePointer(UnsafeMutablePointer(mutating: probs))
        )
        let (pdq, pdk, pdv) = (SendablePointer(dq), SendablePointer(dk), SendablePointer(dv))
        Parallel.rows(tasks.count, minimum: 1) { lo, hi in
            let maxL = tasks[lo..<hi].map(\.seg.length).max() ?? 1
            let dS = UnsafeMutablePointer<T>.allocate(capacity: maxL * maxL)
            defer { dS.deallocate() }
            for (seg, kh, base) in tasks[lo..<hi] {
                let L = seg.length
                for g in 0..<group {
                    let h = kh * group + g
                    let p = pp.p + base + g * L * L
                    let qo = seg.start * dim + h * hd
                    let ko = seg.start * kvDim + kh * hd
                    T.gemmSerial(false, true, L, L, hd, 1, pd.p + qo, dim, pv.p + ko, kvDim, 0, dS, L)
                    T.gemmSerial(true, false, L, hd, L, 1, p, L, pd.p + qo, dim, 1, pdv.p + ko, kvDim)
                    for i in 0..<L {
                        let pr = p + i * L
                        let dr = dS + i * L
                        var dot: T = 0
                        for j in 0...i { dot += pr[j] * dr[j] }
                        for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) * scale }
                        for j in (i + 1)..<L { dr[j] = 0 }
                    }
                    T.gemmSerial(false, false, L, hd, L, 1, dS, L, pk.p + ko, kvDim, 1, pdq.p + qo, dim)
                    T.gemmSerial(true, false, L, hd, L, 1, dS, L, pq.p + qo, dim, 1, pdk.p + ko, kvDim)
                }
            }
        }
    }

    // MARK: SwiGLU

    /// h = silu(g) ⊙ u.
    public static func swigluForward<T: TrainScalar>(
        _ g: UnsafePointer<T>, _ u: UnsafePointer<T>, _ n: Int, _ h: UnsafeMutablePointer<T>
    ) {
        let (pg, pu, ph) = (
            SendablePointer(UnsafeMutablePointer(mutating: g)), SendablePointer(UnsafeMutablePointer(mutating: u)),
            SendablePointer(h)
        )
        Parallel.rows(n, minimum: 4096) { lo, hi in
            for i in lo..<hi {
                let s = 1 / (1 + T.exp(-pg.p[i]))
                ph.p[i] = pg.p[i] * s * pu.p[i]
            }
        }
    }

    /// dg = dh ⊙ u ⊙ σ(g)(1 + g(1 − σ(g))); du = dh ⊙ silu(g) (both written, not accumulated).
    public static func swigluBackward<T: TrainScalar>(
        _ dh: UnsafePointer<T>, _ g: UnsafePointer<T>, _ u: UnsafePointer<T>, _ n: Int,
        _ dg: UnsafeMutablePointer<T>, _ du: UnsafeMutablePointer<T>
    ) {
        let (pdh, pg, pu, pdg, pdu) = (
            SendablePointer(UnsafeMutablePointer(mutating: dh)), SendablePointer(UnsafeMutablePointer(mutating: g)),
            SendablePointer(UnsafeMutablePointer(mutating: u)), SendablePointer(dg), SendablePointer(du)
        )
        Parallel.rows(n, minimum: 4096) { lo, hi in
            for i in lo..<hi {
                let g = pg.p[i]
                let s = 1 / (1 + T.exp(-g))
                pdg.p[i] = pdh.p[i] * pu.p[i] * s * (1 + g * (1 - s))
                pdu.p[i] = pdh.p[i] * g * s
            }
        }
    }

    // MARK: GeGLU (Gemma): h = gelu(g) ⊙ u, GELU with the tanh approximation

    static let geluC: Double = 0.7978845608028654  // √(2/π)

    /// h = 0.5 g (1 + tanh(√(2/π) (g + 0.044715 g³))) ⊙ u.
    public static func gegluForward<T: TrainScalar>(
        _ g: UnsafePointer<T>, _ u: UnsafePointer<T>, _ n: Int, _ h: UnsafeMutablePointer<T>
    ) {
        let (pg, pu, ph) = (
            SendablePointer(UnsafeMutablePointer(mutating: g)), SendablePointer(UnsafeMutablePointer(mutating: u)),
            SendablePointer(h)
        )
        let c = T(geluC)
        let a = T(0.044715)
        Parallel.rows(n, minimum: 4096) { lo, hi in
            for i in lo..<hi {
                let x = pg.p[i]
                let t = T.tanh(c * (x + a * x * x * x))
                ph.p[i] = T(0.5) * x * (1 + t) * pu.p[i]
            }
        }
    }

    /// dg = dh ⊙ u ⊙ gelu′(g) with gelu′ = 0.5 (1 + t) + 0.5 g (1 − t²) √(2/π) (1 + 3 · 0.044715 g²);
    /// du = dh ⊙ gelu(g) (both written, not accumulated).
    public static func gegluBackward<T: TrainScalar>(
        _ dh: UnsafePointer<T>, _ g: UnsafePointer<T>, _ u: UnsafePointer<T>, _ n: Int,
        _ dg: UnsafeMutablePointer<T>, _ du: UnsafeMutablePointer<T>
    ) {
        let (pdh, pg, pu, pdg, pdu) = (
            SendablePointer(UnsafeMutablePointer(mutating: dh)), SendablePointer(UnsafeMutablePointer(mutating: g)),
            SendablePointer(UnsafeMutablePointer(mutating: u)), SendablePointer(dg), SendablePointer(du)
        )
        let c = T(geluC)
        let a = T(0.044715)
        Parallel.rows(n, minimum: 4096) { lo, hi in
            for i in lo..<hi {
                let x = pg.p[i]
                let t = T.tanh(c * (x + a * x * x * x))
                let gelu = T(0.5) * x * (1 + t)
                let d = T(0.5) * (1 + t) + T(0.5) * x * (1 - t * t) * c * (1 + 3 * a * x * x)
                pdg.p[i] = pdh.p[i] * pu.p[i] * d
                pdu.p[i] = pdh.p[i] * gelu
            }
        }
    }

    // MARK: output head and log-probabilities, in vocabulary chunks of rows

    /// Rows of the head evaluated together: logits take `chunk × vocab` scalars, whatever the batch.
    public static let headChunk = 64

    /// For each row r of `x` (`rows` × dim), the log-probability of `targets[r]` under
    /// softmax(x · Wᵀ), and the log-sum-exp (saved for the backward). `logits` is scratch
    /// (headChunk × vocab).
    public static func headForward<T: TrainScalar>(
        _ x: UnsafePointer<T>, _ rows: Int, _ dim: Int, _ w: UnsafePointer<T>, _ vocab: Int,
        _ targets: [Int32], _ logits: UnsafeMutablePointer<T>,
        _ logp: UnsafeMutablePointer<T>, _ lse: UnsafeMutablePointer<T>
    ) {
        headForward(x, rows, dim, vocab, targets, logits, logp, lse) { xs, n, out in
            T.gemm(false, true, n, vocab, dim, 1, xs, dim, w, dim, 0, out, vocab)
        }
    }

    /// `headForward` with the logits' product given (`product(x rows, n, logits)`), e.g. on bfloat16
    /// tiles, `chunk` rows at a time (`logits` holds chunk × vocab).
    static func headForward<T: TrainScalar>(
        _ x: UnsafePointer<T>, _ rows: Int, _ dim: Int, _ vocab: Int, _ targets: [Int32],
        _ logits: UnsafeMutablePointer<T>, _ logp: UnsafeMutablePointer<T>, _ lse: UnsafeMutablePointer<T>,
        chunk: Int = headChunk, product: (UnsafePointer<T>, Int, UnsafeMutablePointer<T>) -> Void
    ) {
        var r0 = 0
        while r0 < rows {
            let n = Swift.min(chunk, rows - r0)
            product(x + r0 * dim, n, logits)
            for i in 0..<n {
                let row = logits + i * vocab
                var m = row[0]
                for j in 1..<vocab { m = Swift.max(m, row[j]) }
                var sum: T = 0
                for j in 0..<vocab { sum += T.exp(row[j] - m) }
                let l = m + T.log(sum)
                lse[r0 + i] = l
                logp[r0 + i] = row[Int(targets[r0 + i])] - l
            }
            r0 += n
        }
    }

    /// With g[r] = ∂loss/∂logp[r]: ∂loss/∂logits = g ⊙ (onehot − softmax); dx += that · W,
    /// dW += thatᵀ · x. The logits are recomputed chunk by chunk.
    public static func headBackward<T: TrainScalar>(
        _ x: UnsafePointer<T>, _ rows: Int, _ dim: Int, _ w: UnsafePointer<T>, _ vocab: Int,
        _ targets: [Int32], _ lse: UnsafePointer<T>, _ g: UnsafePointer<T>,
        _ logits: UnsafeMutablePointer<T>, _ dx: UnsafeMutablePointer<T>, _ dw: UnsafeMutablePointer<T>?
    ) {
        headBackward(
            x, rows, dim, vocab, targets, lse, g, logits, dx, dw,
            product: { xs, n, out in
                T.gemm(false, true, n, vocab, dim, 1, xs, dim, w, dim, 0, out, vocab)
            },
            productT: { dl, n, out in
                T.gemm(false, false, n, dim, vocab, 1, dl, vocab, w, dim, 1, out, dim)
            })
    }

    /// `headBackward` with the products given: `product` for the logits, `productT(dlogits, n, dx)`
    /// accumulating dlogits · W into dx.
    static func headBackward<T: TrainScalar>(
        _ x: UnsafePointer<T>, _ rows: Int, _ dim: Int, _ vocab: Int, _ targets: [Int32],
        _ lse: UnsafePointer<T>, _ g: UnsafePointer<T>, _ logits: UnsafeMutablePointer<T>,
        _ dx: UnsafeMutablePointer<T>, _ dw: UnsafeMutablePointer<T>?, chunk: Int = headChunk,
        product: (UnsafePointer<T>, Int, UnsafeMutablePointer<T>) -> Void,
        productT: (UnsafePointer<T>, Int, UnsafeMutablePointer<T>) -> Void
    ) {
        var r0 = 0
        while r0 < rows {
            let n = Swift.min(chunk, rows - r0)
            product(x + r0 * dim, n, logits)
            for i in 0..<n {
                let row = logits + i * vocab
                let gi = g[r0 + i]
                let l = lse[r0 + i]
                for j in 0..<vocab { row[j] = -gi * T.exp(row[j] - l) }
                row[Int(targets[r0 + i])] += gi
            }
            productT(logits, n, dx + r0 * dim)
            if let dw { T.gemm(true, false, vocab, dim, n, 1, logits, vocab, x + r0 * dim, dim, 1, dw, dim) }
            r0 += n
        }
    }
}
