import Foundation
import LMEngine
import LMTraining
import Testing

/// Gemma 3 in training: what it adds to llama's ops (GeGLU, rope on split halves, attention
/// with a sliding window and a given scale) against central finite differences in float64 (the
/// tolerance of GradientCheckTests), the whole tiny Gemma's LoRA and full gradients likewise,
/// and its forward pass against the engine's (which is checked against llama.cpp).
@Suite struct GemmaTrainingTests {
    typealias G = GradientCheckTests

    @Test func gegluRopeHalvesAndWindowedAttentionBackwardsMatchFiniteDifferences() {
        var rng = SplitMix64(seed: 41)
        // GeGLU over values from −4 to 4, where tanh's curve matters.
        let n = 12
        let g = G.Vec(G.random(n, &rng, scale: 4))
        let u = G.Vec(G.random(n, &rng))
        let rh = G.random(n, &rng)
        func gegluLoss() -> Double {
            var h = [Double](repeating: 0, count: n)
            Ops.gegluForward(g.p, u.p, n, &h)
            return zip(h, rh).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var dg = [Double](repeating: 0, count: n)
        var du = dg
        Ops.gegluBackward(rh, g.p, u.p, n, &dg, &du)
        g.check(dg, gegluLoss, "geglu dg")
        u.check(du, gegluLoss, "geglu du")

        // Rope on halves (NEOX): its backward is the inverse rotation.
        let rows = 3
        let heads = 2
        let hd = 8
        let x = G.Vec(G.random(rows * heads * hd, &rng))
        let r = G.random(rows * heads * hd, &rng)
        let (c, s): ([Double], [Double]) = Ops.ropeTables([0, 2, 9], ropeDim: 6, base: 10000)
        func ropeLoss() -> Double {
            var y = x.array
            Ops.rope(&y, rows, heads: heads, headDim: hd, ropeDim: 6, c, s, halves: true)
            return zip(y, r).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var dx = r
        Ops.rope(&dx, rows, heads: heads, headDim: hd, ropeDim: 6, c, s, inverse: true, halves: true)
        x.check(dx, ropeLoss, "rope halves")
        // Halves pair value i with i + 3 here: rotating by a quarter turn moves x[0] to x[3].
        var probe = [Double](repeating: 0, count: hd)
        probe[0] = 1
        Ops.rope(&probe, 1, heads: 1, headDim: hd, ropeDim: 6, [0, 1, 1], [1, 0, 0], halves: true)  // pair 0 a quarter turn, the others none
        #expect(abs(probe[0]) < 1e-12 && abs(probe[3] - 1) < 1e-12 && probe[1] == 0, "\(probe)")

        // Attention with a window of 2 and a scale of 0.3, over segments longer than the window.
        let aHeads = 4
        let kvHeads = 2
        let ahd = 3
        let segments = [Ops.Segment(start: 0, length: 5), Ops.Segment(start: 5, length: 4)]
        let aRows = 9
        let dim = aHeads * ahd
        let kvDim = kvHeads * ahd
        let q = G.Vec(G.random(aRows * dim, &rng))
        let k = G.Vec(G.random(aRows * kvDim, &rng))
        let v = G.Vec(G.random(aRows * kvDim, &rng))
        let ra = G.random(aRows * dim, &rng)
        let pc = Ops.attentionProbabilityCount(segments, heads: aHeads)
        func attnLoss() -> Double {
            var p = [Double](repeating: 0, count: pc)
            var out = [Double](repeating: 0, count: aRows * dim)
            Ops.attentionForward(
                q.p, k.p, v.p, segments, heads: aHeads, kvHeads: kvHeads, headDim: ahd, scale: 0.3, window: 2, &p, &out)
            return zip(out, ra).reduce(0) { $0 + $1.0 * $1.1 }
        }
        var p = [Double](repeating: 0, count: pc)
        var out = [Double](repeating: 0, count: aRows * dim)
        Ops.attentionForward(
            q.p, k.p, v.p, segments, heads: aHeads, kvHeads: kvHeads, headDim: ahd, scale: 0.3, window: 2, &p, &out)
        // Row 4 of the first segment sees keys 3 and 4 only.
        #expect(
            p[4 * 5 + 0] == 0 && p[4 * 5 + 2] == 0 && p[4 * 5 + 3] > 0 && abs(p[4 * 5 + 3] + p[4 * 5 + 4] - 1) < 1e-12)
        var dq = [Double](repeating: 0, count: aRows * dim)
        var dk = [Double](repeating: 0, count: aRows * kvDim)
        var dv = dk
        var scratch = [Double](repeating: 0, count: 25)
        Ops.attentionBackward(
            ra, q.p, k.p, v.p, p, segments, heads: aHeads, kvHeads: kvHeads, headDim: ahd, scale: 0.3, &dq, &dk, &dv,
            &scratch)
        q.check(dq, attnLoss, "windowed attention dq")
        k.check(dk, attnLoss, "windowed attention dk")
        v.check(dv, attnLoss, "windowed attention dv")
    }

    static func model(lora: LoRASettings?) throws -> TrainingModel<Double> {
        let path = TinyModel.temporaryPath("tiny-gemma")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyModel.writeGemma(path)
        let llama = try LlamaModel(path: path)
        let base: ParameterStore<Double> = try BaseWeights.load(llama, gradients: lora == nil)
        let m = TrainingModel(shape: BaseWeights.shape(llama.config), base: base, lora: lora, seed: 11)
        if let store = m.lora {
            var rng = SplitMix64(seed: 5)
            for e in store.entries where e.name.hasSuffix(".lora_b") {
                store.set(e.name, G.random(e.count, &rng, scale: 0.3))
            }
        }
        return m
    }

    @Test func theFileGivesGemmasShape() throws {
        let path = TinyModel.temporaryPath("tiny-gemma")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyModel.writeGemma(path)
        let s = BaseWeights.shape(try LlamaModel(path: path).config)
        #expect(s.sandwichNorms && s.geglu && s.ropeHalves && s.qDim == 32 && s.headDim == 8 && s.dim == 16)
        #expect(s.embeddingScale == 4 && s.slidingWindow == 3 && s.localRopeBase == 10000 && s.ropeBase == 1_000_000)
        #expect((0..<6).map(s.isLocal) == [true, true, true, true, true, false])
    }

    @Test func loraAndFullGradientsOfATinyGemmaMatchFiniteDifferences() throws {
        G.checkWholeModel(try Self.model(lora: LoRASettings(rank: 3, alpha: 6)), "Gemma 3 LoRA, every projection")
        G.checkWholeModel(
            try Self.model(lora: nil), "Gemma 3 full: every norm (q, k, post-attention, post-FFN), the scaled embedding"
        )
    }

    /// The training forward pass is the engine's: each sequence's log-probabilities of its next
    /// tokens against the engine's logits (F32 weights; the engine keeps keys and values in F16,
    /// so they differ by about 1e-3: allowed 1e-2 a token).
    @Test func theForwardPassGivesTheEnginesLogProbabilities() throws {
        let path = TinyModel.temporaryPath("tiny-gemma")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyModel.writeGemma(path)
        let llama = try LlamaModel(path: path)
        let base: ParameterStore<Float> = try BaseWeights.load(llama, gradients: false)
        let m = TrainingModel(shape: BaseWeights.shape(llama.config), base: base, lora: nil)
        let seq: [Int32] = [2, 9, 30, 4, 17, 11, 25, 3]  // longer than the window of 3
        var batch = PackedBatch()
        batch.append(seq, scored: seq.indices.map { $0 > 0 })
        let ours = m.forward(batch)
        var worst: Float = 0
        for t in 1..<seq.count {
            let session = LlamaSession(model: llama, maxTokens: 16)
            try session.forward(Array(seq[0..<t]))
            let logits = Array(UnsafeBufferPointer(start: session.logits, count: llama.config.vocabSize))
            let mx = logits.max()!
            let lse = mx + Foundation.log(logits.reduce(0) { $0 + Foundation.exp($1 - mx) })
            let engine = logits[Int(seq[t])] - lse
            worst = max(worst, abs(engine - ours[t - 1]))
        }
        #expect(worst <= 1e-2, "max |Δ log p| between training's forward and the engine's: \(worst)")
    }
}

/// Gemma 3 270M (Q4_K_M, its frozen weights read from the file's blocks) trains an adapter that
/// llama.cpp loads on the same base file: llama.cpp's NLL of the training answers falls, and
/// prs's own NLL with the adapter agrees with llama.cpp's (the tolerance of AdapterInteropTests
/// widened for Gemma, whose int8 rounding llama.cpp itself moves by up to 1.5 logits,
/// Gemma3ReferenceTests).
@Suite(.serialized) struct Gemma3AdapterTests {
    static let gemma = Project.root.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf").path

    @Test func llamaCppLoadsAGemmaAdapterAndItsNLLOfTheTrainingAnswersFalls() throws {
        let llama = try LlamaModel(path: Self.gemma)
        let template = try ChatTemplate.of(llama)
        let tok = ExampleTokenizer(template: template, tokenizer: llama.tokenizer, maxLength: 256)
        let examples = try AdapterInteropTests.train.enumerated().map { i, p in
            try tok.example(
                .conversation([
                    TemplateMessage(role: "user", content: p.0), TemplateMessage(role: "assistant", content: p.1),
                ]),
                weight: 1, source: "train:\(i + 1)")
        }
        BLASThreads.set(2)
        let settings = LoRASettings(rank: 8, alpha: 16)
        let model = try BaseWeights.model(llama, lora: settings, seed: 1, bf16: false, threads: 2)
        #expect(model.usesQuantized && model.shape.sandwichNorms && model.shape.geglu)
        var ts = TrainSettings()
        ts.lora = settings
        ts.epochs = 6
        ts.batchTokens = 300
        ts.batchExamples = 4
        ts.learningRate = 1e-3
        ts.checkpointEvery = 0
        let trainer = try Trainer(model: model, examples: examples, settings: ts)
        try trainer.run(checkpoint: nil, fingerprint: "gemma")
        let dir = try Project.temporaryDirectory("gemma-adapter")
        defer { try? FileManager.default.removeItem(at: dir) }
        let adapter = dir.appendingPathComponent("pirate.gguf").path
        try ModelFiles.writeAdapter(
            model.lora!, settings: settings, architecture: "gemma3", baseSHA256: "test", to: adapter)
        let ours = AdapterInteropTests.prsNLL(model, examples)
        let before = try AdapterInteropTests.llamaNLL(Self.gemma, lora: nil, examples)
        let after = try AdapterInteropTests.llamaNLL(Self.gemma, lora: adapter, examples)
        let tokens = Double(after.reduce(0) { $0 + $1.tokens })
        let b = before.reduce(0) { $0 + $1.nll } / tokens
        let a = after.reduce(0) { $0 + $1.nll } / tokens
        let mine = ours.reduce(0, +) / tokens
        print(
            "Gemma 3 270M: llama.cpp mean NLL of the training answers: base \(b), with prs's adapter \(a); prs's "
                + "own \(mine)"
        )
        #expect(a < 0.5 * b, "the adapter lowers llama.cpp's NLL (base \(b), adapter \(a))")
        #expect(abs(mine - a) <= 0.1 * a + 0.05, "mean NLL with the adapter: prs \(mine), llama.cpp \(a)")
    }
}
