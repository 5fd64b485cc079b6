import Foundation
import GGUF
import LMEngine
import LMTraining
import Testing

/// Training straight from quantized weights: the tile expansion against GGUF's own
/// dequantization, the tiled products against dense float32 products of the same values, whole
/// models' LoRA gradients against the float32 path on the dequantized weights (SmolLM2-135M, and
/// a small model in every supported type), and activation checkpointing against keeping every
/// activation, bit for bit.
@Suite(.serialized) struct QuantizedTrainingTests {
    static let types: [TensorType] = [.f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q8_0, .q4_K, .q5_K, .q6_K]

    /// Random blocks of `type` for a rows × cols tensor: random quantized bits, scales set to
    /// small finite values (so every value is of the size trained weights have).
    static func randomTensor(_ type: TensorType, rows: Int, cols: Int, _ rng: inout SplitMix64) -> [UInt8] {
        let blocks = rows * cols / type.blockSize
        var out = [UInt8](repeating: 0, count: blocks * type.blockBytes)
        func put16(_ at: Int, _ v: UInt16) {
            out[at] = UInt8(v & 0xFF)
            out[at + 1] = UInt8(v >> 8)
        }
        func scale(_ lo: Double, _ hi: Double) -> UInt16 { Half.fromFloat(Float(lo + (hi - lo) * rng.uniform())) }
        for b in 0..<blocks {
            let o = b * type.blockBytes
            switch type {
            case .f32:
                let v = Float(rng.uniform() * 0.2 - 0.1).bitPattern
                for k in 0..<4 { out[o + k] = UInt8((v >> (8 * UInt32(k))) & 0xFF) }
            case .f16: put16(o, Half.fromFloat(Float(rng.uniform() * 0.2 - 0.1)))
            case .bf16: put16(o, UInt16(Float(rng.uniform() * 0.2 - 0.1).bitPattern >> 16))
            default:
                for k in 0..<type.blockBytes { out[o + k] = UInt8(truncatingIfNeeded: rng.next()) }
                switch type {
                case .q4_0, .q5_0, .q8_0: put16(o, scale(0.002, 0.02))
                case .q4_1:
                    let d = Float(0.002 + 0.018 * rng.uniform())
                    put16(o, Half.fromFloat(d))
                    put16(o + 2, Half.fromFloat(-7.5 * d))
                case .q4_K, .q5_K:
                    // The minimum's scale at the mean quant's (7.5 or 15.5 steps): values centred
                    // on zero, as trained weights are (random mins alone would bias every row).
                    let d = Float(0.00002 + 0.00018 * rng.uniform())
                    put16(o, Half.fromFloat(d))
                    put16(o + 2, Half.fromFloat(d * (type == .q4_K ? 7.5 : 15.5)))
                case .q6_K: put16(o + 208, scale(0.000005, 0.00005))
                default: break
                }
            }
        }
        return out
    }

    static func writeMatrix(_ type: TensorType, rows: Int, cols: Int, seed: UInt64) throws -> (GGUFFile, String) {
        var rng = SplitMix64(seed: seed)
        var w = GGUFWriter()
        w.metadata = [("general.architecture", .string("llama"))]
        w.tensors = [
            .init(
                name: "w", dimensions: [cols, rows], type: type, data: randomTensor(type, rows: rows, cols: cols, &rng))
        ]
        let path = TinyModel.temporaryPath("quant-\(type)")
        try w.write(to: path)
        return (try GGUFFile(path: path), path)
    }

    /// Every value expanded from the blocks equals GGUF's Dequantize bit for bit, for every type
    /// (the backward's column spans are checked through its products below).
    @Test(arguments: types)
    func expandedTilesEqualGGUFsDequantization(_ type: TensorType) throws {
        let rows = 6
        let cols = 1024
        let (file, path) = try Self.writeMatrix(type, rows: rows, cols: cols, seed: 5)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = try #require(file.tensor("w"))
        let reference = Dequantize.toFloat(file.bytes(of: t), type: type, count: rows * cols)
        let m = try QuantMatrix(file: file, name: "w", rows: rows, cols: cols, threads: 1, scratch: QuantScratch())
        var row = [Float](repeating: .nan, count: cols)
        var mismatches = 0
        for r in 0..<rows {
            row.withUnsafeMutableBufferPointer { m.row(r, into: $0.baseAddress!) }
            for c in 0..<cols where row[c].bitPattern != reference[r * cols + c].bitPattern { mismatches += 1 }
        }
        #expect(mismatches == 0, "\(type): \(mismatches) of \(rows * cols) values differ from Dequantize.toFloat")
        #expect(
            reference.allSatisfy(\.isFinite) && reference.contains { $0 != 0 }, "\(type): the test matrix is degenerate"
        )
    }

    /// y = x · Wᵀ and dx = dy · W through the tiles, against the same products in float64 on the
    /// dequantized values, with 1 and 2 threads. Tolerance: float32 sums of 1,024 products of
    /// values ≤ 1 in magnitude, within 1e-4 absolute; a product repeated gives the same bits.
    @Test(arguments: [TensorType.q4_0, .q4_K, .q6_K, .q8_0, .f16])
    func tiledProductsEqualDenseProducts(_ type: TensorType) throws {
        let rows = 1100
        let cols = 1024
        let n = 19  // 1,100 rows: several tiles, a partial one at the end of each product
        let (file, path) = try Self.writeMatrix(type, rows: rows, cols: cols, seed: 9)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = try #require(file.tensor("w"))
        let w = Dequantize.toFloat(file.bytes(of: t), type: type, count: rows * cols)
        var rng = SplitMix64(seed: 3)
        let x = (0..<(n * cols)).map { _ in Float(rng.uniform() * 2 - 1) }
        let dy = (0..<(n * rows)).map { _ in Float(rng.uniform() * 2 - 1) }
        for threads in [1, 2] {
            BLASThreads.set(threads)
            let m = try QuantMatrix(
                file: file, name: "w", rows: rows, cols: cols, threads: threads, scratch: QuantScratch())
            let (worst, out) = FrozenProducts.worstError(
                m, x: x, dy: dy, n: n, start: 0.5, input: { Double($0) }, weight: { Double(w[$0]) })
            #expect(worst < 1e-4, "\(type), \(threads) threads: max |tiled − float64| = \(worst)")
            // Shares and tiles follow from the thread count: the same count gives the same bits again.
            let again = FrozenProducts.worstError(
                m, x: x, dy: dy, n: n, start: 0.5, input: { Double($0) }, weight: { Double(w[$0]) })
            let same = again.outputs == out
            #expect(same, "\(type), \(threads) threads: a second product gave other bits")
        }
    }

    /// LoRA loss and gradients of the real SmolLM2-135M (Q4_1 matrices, Q8_0 embedding) from the
    /// quantized blocks against the float32 path on the same dequantized weights. Tolerance: the
    /// two differ only in the order float32 sums are taken in the backward's tiles, so each
    /// tensor's gradient is within 1e-3 relative L2 error and the loss within 1e-5 relative.
    @Test func smolLM2GradientsFromQuantizedWeightsMatchTheFloatPath() throws {
        let llama = try LlamaModel(path: Project.smolLM2)
        let examples = try Project.examples(llama)
        BLASThreads.set(2)
        var batch = PackedBatch()
        for e in examples { if case .sft(let s) = e.body { batch.append(s.tokens, scored: s.scored) } }
        let settings = LoRASettings(rank: 4, alpha: 8)
        let q = try Self.gradients(llama, settings, batch, quantized: true)
        let f = try Self.gradients(llama, settings, batch, quantized: false)
        #expect(abs(q.loss - f.loss) <= 1e-5 * f.loss, "loss: quantized \(q.loss), float \(f.loss)")
        let worst = Self.compare(q.grads, f.grads, tolerance: 1e-3)
        print(
            "SmolLM2-135M LoRA gradients from quantized blocks against float32: worst tensor \(worst) relative L2; "
                + "loss \(q.loss) vs \(f.loss)"
        )
    }

    /// A small llama written with every matrix (and the embedding) in one type, for every type
    /// training reads: the quantized path's loss and LoRA gradients against the float path's on
    /// the same dequantized weights (tolerances as for SmolLM2), and the adapters get gradients.
    @Test(arguments: types)
    func everyTypeTrainsLikeItsDequantizedFloats(_ type: TensorType) throws {
        let path = TinyModel.temporaryPath("small-\(type)")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Self.writeSmallModel(path, type: type)
        let llama = try LlamaModel(path: path)
        BLASThreads.set(2)
        var batch = PackedBatch()
        var rng = SplitMix64(seed: 21)
        for len in [40, 23] {
            let seq = (0..<len).map { _ in Int32(rng.next() % UInt64(llama.config.vocabSize)) }
            batch.append(seq, scored: (0..<len).map { $0 > 0 })
        }
        let settings = LoRASettings(rank: 4, alpha: 8)
        let q = try Self.gradients(llama, settings, batch, quantized: true)
        let f = try Self.gradients(llama, settings, batch, quantized: false)
        #expect(abs(q.loss - f.loss) <= 1e-5 * f.loss, "\(type) loss: quantized \(q.loss), float \(f.loss)")
        _ = Self.compare(q.grads, f.grads, tolerance: 1e-3, label: "\(type)")
    }

    /// Checkpointing changes memory, not numbers: every LoRA gradient and the log-probabilities
    /// are the same bits with blocks recomputed in the backward as with every activation kept,
    /// with and without dropout.
    @Test(arguments: [0.0, 0.1])
    func checkpointingGivesTheSameBits(_ dropout: Double) throws {
        let llama = try LlamaModel(path: Project.smolLM2)
        let examples = try Project.examples(llama)
        BLASThreads.set(2)
        var batch = PackedBatch()
        for e in examples { if case .sft(let s) = e.body { batch.append(s.tokens, scored: s.scored) } }
        let settings = LoRASettings(rank: 4, alpha: 8, dropout: dropout)
        let kept = try Self.gradients(llama, settings, batch, quantized: true, checkpointing: false)
        let recomputed = try Self.gradients(llama, settings, batch, quantized: true, checkpointing: true)
        #expect(kept.logp == recomputed.logp)
        for (name, g) in kept.grads {
            #expect(recomputed.grads[name]! == g, "\(name): checkpointing changed the gradient")
        }
        #expect(kept.grads.values.contains { $0.contains { $0 != 0 } })
    }

    struct Result {
        var loss: Double
        var logp: [Float]
        var grads: [String: [Float]]
    }

    static func gradients(
        _ llama: LlamaModel, _ settings: LoRASettings, _ batch: PackedBatch, quantized: Bool,
        checkpointing: Bool = false
    ) throws -> Result {
        let m = try BaseWeights.model(
            llama, lora: settings, seed: 3, bf16: false, threads: 2, quantized: quantized, checkpointing: checkpointing)
        #expect(m.usesQuantized == quantized && m.checkpointing == checkpointing)
        var rng = SplitMix64(seed: 17)
        let lora = m.lora!
        // B starts at zero; give it values so that every adapter tensor has a gradient.
        for e in lora.entries where e.name.hasSuffix(".lora_b") {
            lora.set(e.name, (0..<e.count).map { _ in Float((rng.uniform() * 2 - 1) * 0.02) })
        }
        let logp = m.forward(batch, dropoutKey: 99)
        let n = Float(logp.count)
        m.backward([Float](repeating: -1 / n, count: logp.count))
        var out: [String: [Float]] = [:]
        for e in lora.entries { out[e.name] = lora.gradient(e.name)! }
        return Result(loss: -logp.reduce(0.0) { $0 + Double($1) } / Double(n), logp: logp, grads: out)
    }

    /// The worst tensor's relative L2 error of `a` against `b`, each expected within `tolerance`.
    @discardableResult
    static func compare(_ a: [String: [Float]], _ b: [String: [Float]], tolerance: Double, label: String = "") -> Double
    {
        var worst = 0.0
        #expect(a.count == b.count && !a.isEmpty)
        for (name, x) in a {
            let y = b[name]!
            var d = 0.0
            var s = 0.0
            for (u, v) in zip(x, y) {
                d += Double(u - v) * Double(u - v)
                s += Double(v) * Double(v)
            }
            #expect(s > 0, "\(label) \(name): no gradient")
            let rel = (d / max(s, 1e-30)).squareRoot()
            worst = max(worst, rel)
            #expect(rel <= tolerance, "\(label) \(name): quantized gradient off by \(rel) relative L2")
        }
        return worst
    }

    /// A 2-layer llama of width 256 (K-quants' block) with SmolLM2-like proportions, every matrix
    /// and the embedding in `type`, norms in F32, a toy vocabulary of 300 tokens.
    static func writeSmallModel(_ path: String, type: TensorType) throws {
        let s = ModelShape(layers: 2, dim: 256, hiddenDim: 512, heads: 4, kvHeads: 2, vocabSize: 300)
        var rng = SplitMix64(seed: 31)
        var w = GGUFWriter()
        w.metadata = [
            ("general.architecture", .string("llama")),
            ("llama.block_count", .uint32(UInt32(s.layers))),
            ("llama.embedding_length", .uint32(UInt32(s.dim))),
            ("llama.feed_forward_length", .uint32(UInt32(s.hiddenDim))),
            ("llama.attention.head_count", .uint32(UInt32(s.heads))),
            ("llama.attention.head_count_kv", .uint32(UInt32(s.kvHeads))),
            ("llama.context_length", .uint32(128)),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(.strings((0..<s.vocabSize).map { "t\($0)" }))),
            ("tokenizer.ggml.merges", .array(.strings([]))),
        ]
        for e in TrainingModel<Float>.baseShapes(s, tied: true, biases: []) {
            if e.rows == 1 {
                let values = (0..<e.cols).map { _ in Float(0.8 + 0.4 * rng.uniform()) }
                w.tensors.append(
                    .init(name: e.name, dimensions: [e.cols], type: .f32, data: try Quantize.encode(values, as: .f32)))
            } else {
                w.tensors.append(
                    .init(
                        name: e.name, dimensions: [e.cols, e.rows], type: type,
                        data: randomTensor(type, rows: e.rows, cols: e.cols, &rng)))
            }
        }
        try w.write(to: path)
    }
}
