import Foundation
import LMEngine
import LMTraining
import Testing

/// Every op's backward, and the whole model's, against central finite differences in float64
/// on a tiny random model. Tolerance: |analytic − numeric| ≤ 1e-6 + 1e-5·|numeric| per value
/// (central differences with h = 1e-5 have an error of order h² ≈ 1e-10 relative).
@Suite struct GradientCheckTests {
    static let h = 1e-5

    static func close(_ a: Double, _ n: Double) -> Bool { abs(a - n) <= 1e-6 + 1e-5 * abs(n) }

    /// Checks ∂f/∂x[i] for every i against (f(x + h) − f(x − h)) / 2h; returns the worst mismatch.
    static func check(
        _ x: UnsafeMutablePointer<Double>, _ count: Int, analytic: [Double], _ f: () -> Double,
        _ label: String
    ) {
        var bad = 0
        var worst = 0.0
        for i in 0..<count {
            let saved = x[i]
            x[i] = saved + h
            let up = f()
            x[i] = saved - h
            let down = f()
            x[i] = saved
            let numeric = (up - down) / (2 * h)
            if !close(analytic[i], numeric) {
                bad += 1
                worst = max(worst, abs(analytic[i] - numeric))
            }
        }
        #expect(bad == 0, "\(label): \(bad) of \(count) gradients differ from finite differences (worst by \(worst))")
    }

    static func random(_ n: Int, _ rng: inout SplitMix64, scale: Double = 1) -> [Double] {
        (0..<n).map { _ in (rng.uniform() * 2 - 1) * scale }
    }

    /// Values on the heap, nudged in place by `check` while the loss reads them.
    final class Vec {
        let p: UnsafeMutablePointer<Double>
        let count: Int
        init(_ v: [Double]) {
            count = v.count
            p = .allocate(capacity: v.count)
            p.initialize(from: v, count: v.count)
        }
        deinit { p.deallocate() }
        var array: [Double] { Array(UnsafeBufferPointer(start: p, count: count)) }
        func check(_ analytic: [Double], _ f: () -> Double, _ label: String) {
            GradientCheckTests.check(p, count, analytic: analytic, f, label)
        }
    }

    // MARK: ops

    @Test func rmsNormBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 1)
        let rows = 3
        let dim = 8
        let x = Vec(Self.random(rows * dim, &rng))
        let w = Vec(Self.random(dim, &rng))
        let r = Self.random(rows * dim, &rng)
        func loss() -> Double {
            var y = [Double](repeating: 0, count: rows * dim)
            var rstd = [Double](repeating: 0, count: rows)
            Ops.rmsNormForward(x.p, w.p, rows, dim, 1e-5, &y, &rstd)
            return zip(y, r).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var y = [Double](repeating: 0, count: rows * dim)
        var rstd = [Double](repeating: 0, count: rows)
        Ops.rmsNormForward(x.p, w.p, rows, dim, 1e-5, &y, &rstd)
        var dx = [Double](repeating: 0, count: rows * dim)
        var dw = [Double](repeating: 0, count: dim)
        Ops.rmsNormBackward(r, x.p, w.p, rstd, rows, dim, &dx, &dw)
        x.check(dx, loss, "rmsnorm dx")
        w.check(dw, loss, "rmsnorm dw")
    }

    @Test func attentionBackwardMatchesFiniteDifferences() {
        var rng = SplitMix64(seed: 2)
        let heads = 4
        let kvHeads = 2
        let hd = 4
        let segments = [Ops.Segment(start: 0, length: 5), Ops.Segment(start: 5, length: 3)]
        let rows = 8
        let dim = heads * hd
        let kvDim = kvHeads * hd
        let q = Vec(Self.random(rows * dim, &rng))
        let k = Vec(Self.random(rows * kvDim, &rng))
        let v = Vec(Self.random(rows * kvDim, &rng))
        let r = Self.random(rows * dim, &rng)
        let pc = Ops.attentionProbabilityCount(segments, heads: heads)
        func loss() -> Double {
            var p = [Double](repeating: 0, count: pc)
            var out = [Double](repeating: 0, count: rows * dim)
            Ops.attentionForward(q.p, k.p, v.p, segments, heads: heads, kvHeads: kvHeads, headDim: hd, &p, &out)
            return zip(out, r).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var p = [Double](repeating: 0, count: pc)
        var out = [Double](repeating: 0, count: rows * dim)
        Ops.attentionForward(q.p, k.p, v.p, segments, heads: heads, kvHeads: kvHeads, headDim: hd, &p, &out)
        var dq = [Double](repeating: 0, count: rows * dim)
        var dk = [Double](repeating: 0, count: rows * kvDim)
        var dv = dk
        var scratch = [Double](repeating: 0, count: 25)
        Ops.attentionBackward(
            r, q.p, k.p, v.p, p, segments, heads: heads, kvHeads: kvHeads, headDim: hd, &dq, &dk, &dv, &scratch)
        q.check(dq, loss, "attention dq")
        k.check(dk, loss, "attention dk")
        v.check(dv, loss, "attention dv")
    }

    @Test func ropeSwigluAndHeadBackwardsMatchFiniteDifferences() {
        var rng = SplitMix64(seed: 3)
        // rope: its backward is the inverse rotation of the output gradient.
        let rows = 3
        let heads = 2
        let hd = 6
        let x = Vec(Self.random(rows * heads * hd, &rng))
        let r = Self.random(rows * heads * hd, &rng)
        let (c, s): ([Double], [Double]) = Ops.ropeTables([0, 3, 7], ropeDim: 4, base: 10000)
        func ropeLoss() -> Double {
            var y = x.array
            Ops.rope(&y, rows, heads: heads, headDim: hd, ropeDim: 4, c, s)
            return zip(y, r).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var dx = r
        Ops.rope(&dx, rows, heads: heads, headDim: hd, ropeDim: 4, c, s, inverse: true)
        x.check(dx, ropeLoss, "rope")

        let g = Vec(Self.random(10, &rng, scale: 3))
        let u = Vec(Self.random(10, &rng))
        let rh = Self.random(10, &rng)
        func swiLoss() -> Double {
            var hv = [Double](repeating: 0, count: 10)
            Ops.swigluForward(g.p, u.p, 10, &hv)
            return zip(hv, rh).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var dg = [Double](repeating: 0, count: 10)
        var du = dg
        Ops.swigluBackward(rh, g.p, u.p, 10, &dg, &du)
        g.check(dg, swiLoss, "swiglu dg")
        u.check(du, swiLoss, "swiglu du")

        // The head over more rows than one chunk, so the chunking is exercised.
        let n = Ops.headChunk + 5
        let dim = 4
        let vocab = 11
        let hx = Vec(Self.random(n * dim, &rng))
        let hw = Vec(Self.random(vocab * dim, &rng))
        let targets = (0..<n).map { Int32($0 % vocab) }
        let coef = Self.random(n, &rng)
        func headLoss() -> Double {
            var lp = [Double](repeating: 0, count: n)
            var lse = lp
            var logits = [Double](repeating: 0, count: Ops.headChunk * vocab)
            Ops.headForward(hx.p, n, dim, hw.p, vocab, targets, &logits, &lp, &lse)
            return zip(lp, coef).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var lp = [Double](repeating: 0, count: n)
        var lse = lp
        var logits = [Double](repeating: 0, count: Ops.headChunk * vocab)
        Ops.headForward(hx.p, n, dim, hw.p, vocab, targets, &logits, &lp, &lse)
        var dhx = [Double](repeating: 0, count: n * dim)
        var dhw = [Double](repeating: 0, count: vocab * dim)
        Ops.headBackward(hx.p, n, dim, hw.p, vocab, targets, lse, coef, &logits, &dhx, &dhw)
        hx.check(dhx, headLoss, "head dx")
        hw.check(dhw, headLoss, "head dW")
    }

    // MARK: whole model

    static func batch() -> PackedBatch {
        var b = PackedBatch()
        b.append([1, 5, 9, 2, 30, 7], scored: [false, false, true, true, true, true])
        b.append([3, 3, 14, 22, 8], scored: [false, true, false, true, true])
        return b
    }

    static func model(lora: LoRASettings?, biases: Bool = false, tied: Bool = true) throws -> TrainingModel<Double> {
        let path = TinyModel.temporaryPath("tiny")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyModel.write(path, tied: tied, biases: biases)
        let llama = try LlamaModel(path: path)
        let base: ParameterStore<Double> = try BaseWeights.load(llama, gradients: lora == nil)
        let m = TrainingModel(shape: BaseWeights.shape(llama.config), base: base, lora: lora, seed: 11)
        if let store = m.lora {
            // B non-zero, so A's gradient is not trivially zero.
            var rng = SplitMix64(seed: 5)
            for e in store.entries where e.name.hasSuffix(".lora_b") {
                store.set(e.name, random(e.count, &rng, scale: 0.3))
            }
        }
        return m
    }

    static func checkWholeModel(_ m: TrainingModel<Double>, _ label: String) {
        let b = batch()
        var rng = SplitMix64(seed: 9)
        let coef = random(b.lossRows.count, &rng)
        func loss() -> Double { zip(m.forward(b), coef).reduce(0) { $0 + $1.0 * $1.1 } }
        m.trainable.zeroGradients()
        _ = m.forward(b)
        m.backward(coef)
        let analytic = m.trainable.allGradients!
        check(m.trainable.valuesPointer, m.trainable.count, analytic: analytic, loss, label)
    }

    @Test func loraGradientsOfTheWholeModelMatchFiniteDifferences() throws {
        Self.checkWholeModel(try Self.model(lora: LoRASettings(rank: 3, alpha: 6)), "LoRA, every projection")
        Self.checkWholeModel(
            try Self.model(lora: LoRASettings(rank: 2, alpha: 2, targets: [.q, .v, .down])), "LoRA on q, v, down")
    }

    @Test func fullGradientsOfTheWholeModelMatchFiniteDifferences() throws {
        Self.checkWholeModel(try Self.model(lora: nil), "full, tied output")
        Self.checkWholeModel(
            try Self.model(lora: nil, biases: true, tied: false), "full, qwen2 biases, separate output")
    }

    @Test func loraDropoutGradientsMatchFiniteDifferencesUnderTheSameMask() throws {
        let m = try Self.model(lora: LoRASettings(rank: 2, alpha: 4, dropout: 0.3, targets: [.q, .up]))
        let b = Self.batch()
        let coef = [Double](repeating: -0.5, count: b.lossRows.count)
        func loss() -> Double { zip(m.forward(b, dropoutKey: 42), coef).reduce(0) { $0 + $1.0 * $1.1 } }
        m.trainable.zeroGradients()
        _ = m.forward(b, dropoutKey: 42)
        m.backward(coef)
        Self.check(
            m.trainable.valuesPointer, m.trainable.count, analytic: m.trainable.allGradients!, loss, "LoRA with dropout"
        )
        #expect(m.forward(b, dropoutKey: 42) != m.forward(b, dropoutKey: 43), "another key draws another mask")
    }

    /// Packed sequences do not see each other: each one's log-probabilities are those it has alone.
    @Test func packedSequencesDoNotContaminateEachOther() throws {
        let m = try Self.model(lora: LoRASettings(rank: 2, alpha: 4))
        let both = m.forward(Self.batch())
        var first = PackedBatch()
        var second = PackedBatch()
        first.append([1, 5, 9, 2, 30, 7], scored: [false, false, true, true, true, true])
        second.append([3, 3, 14, 22, 8], scored: [false, true, false, true, true])
        let alone = m.forward(first) + m.forward(second)
        #expect(zip(both, alone).allSatisfy { abs($0 - $1) < 1e-12 })
    }
}
