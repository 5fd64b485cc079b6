import CKernels
import Foundation
import LMEngine
import Testing

/// Every instruction set the machine has against the AVX2 one: the quantized products and a
/// whole forward pass must give bit-identical numbers (DESIGN.md, Instruction sets).
@Suite(.serialized) struct ISATests {
    /// The instruction sets to compare with AVX2 here (1: AVX512-VNNI), empty on a machine without.
    static var others: [Int32] {
        let was = lm_q8_set_isa(1)
        defer { _ = lm_q8_set_isa(was) }
        return lm_q8_isa() == 1 ? [1] : []
    }

    func withISA<T>(_ isa: Int32, _ body: () throws -> T) rethrows -> T {
        let was = lm_q8_set_isa(isa)
        defer { _ = lm_q8_set_isa(was) }
        return try body()
    }

    /// Random Q4_1, Q8_0, Q4_0 and Q5_0 rows against 1…9 quantized tokens, every row pairing and tile width.
    @Test func quantizedProductsAreBitIdentical() throws {
        let isas = Self.others
        #expect(ProcessInfo.processInfo.environment["PRS_ISA"] == "avx2" || !isas.isEmpty || !Self.machineHasVNNI,
                "this machine reports AVX512-VNNI, so it must be tested")
        var rng = SplitMix64(seed: 5)
        let n = 256, rows = 7
        for (kind, blockBytes) in [(Int32(0), 20), (1, 34), (2, 18), (7, 22)] {
            let rowBytes = n / 32 * blockBytes
            var w = (0..<(rows * rowBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Valid, varied f16 scales (and Q4_1 minimums) at the head of each block.
            for r in 0..<rows {
                for b in 0..<(n / 32) {
                    let at = r * rowBytes + b * blockBytes
                    let scale = UInt16(0x2000 + Int(rng.next() % 0x1800))
                    w[at] = UInt8(scale & 0xFF); w[at + 1] = UInt8(scale >> 8)
                    if kind == 0 { w[at + 2] = UInt8(scale & 0xFF); w[at + 3] = UInt8(0x80 | (scale >> 8)) }
                }
            }
            for batch in 1...9 {
                let x = (0..<(batch * n)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 250 }
                var acts = [lm_act_q8](repeating: lm_act_q8(), count: batch * n / 32)
                x.withUnsafeBufferPointer { xp in
                    acts.withUnsafeMutableBufferPointer { ap in
                        for t in 0..<batch { lm_quantize_acts(xp.baseAddress! + t * n, ap.baseAddress! + t * n / 32, Int32(n)) }
                    }
                }
                func product(_ isa: Int32) -> [Float] {
                    withISA(isa) {
                        var out = [Float](repeating: 0, count: batch * rows)
                        w.withUnsafeBytes { wp in
                            acts.withUnsafeBytes { ap in
                                out.withUnsafeMutableBufferPointer { op in
                                    lm_matmul(kind, Int32(n), wp.baseAddress!, rowBytes, ap.baseAddress!, n / 32 * MemoryLayout<lm_act_q8>.stride,
                                              Int32(batch), op.baseAddress!, rows, 0, Int32(rows))
                                }
                            }
                        }
                        return out
                    }
                }
                let reference = product(0)
                #expect(reference.allSatisfy { $0.isFinite })
                for isa in isas {
                    let got = product(isa)
                    #expect(got.map(\.bitPattern) == reference.map(\.bitPattern), "kind \(kind), batch \(batch), isa \(isa)")
                }
            }
        }
    }

    /// The real model: a prompt evaluated in one batch, then tokens one by one; every logit equal bit for bit.
    @Test func aForwardPassIsBitIdentical() throws {
        let isas = Self.others
        guard !isas.isEmpty else { return }
        let model = try LlamaModel(file: SmolLM2.file.get())
        let prompt = model.tokenizer.encode("<|im_start|>user\nWhy is the sky blue? Answer in one line.<|im_end|>\n<|im_start|>assistant\n",
                                            addSpecial: false, parseSpecial: true)
        func logits(_ isa: Int32) throws -> [[UInt32]] {
            try withISA(isa) {
                let s = LlamaSession(model: model, maxTokens: 128)
                try s.forward(prompt)
                var out: [[UInt32]] = [(0..<model.config.vocabSize).map { s.logits[$0].bitPattern }]
                for t: Int32 in [504, 3056, 314, 2442] {
                    try s.forward(t)
                    out.append((0..<model.config.vocabSize).map { s.logits[$0].bitPattern })
                }
                return out
            }
        }
        let reference = try logits(0)
        for isa in isas {
            let got = try logits(isa)
            #expect(got == reference, "isa \(isa)")
        }
    }

    static var machineHasVNNI: Bool {
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.contains("avx512_vnni") ?? false
    }
}
