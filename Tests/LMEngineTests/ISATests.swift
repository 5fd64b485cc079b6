import CKernels
import Foundation
import LMEngine
import Testing

/// Every instruction set the machine has against the AVX2 one: the quantized products and a
/// whole forward pass must give bit-identical numbers (DESIGN.md, Instruction sets).
@Suite(.serialized) struct ISATests {
    /// The tables to compare with AVX2 here (1: AVX-512, 2: AMX), empty on a machine without.
    static var others: [Int32] { [InstructionSet.avx512, .amx].filter(\.isAvailable).map(\.index) }

    func withISA<T>(_ isa: Int32, _ body: () throws -> T) rethrows -> T {
        let was = lm_q8_set_isa(isa)
        defer { _ = lm_q8_set_isa(was) }
        return try body()
    }

    /// Random Q4_1, Q8_0, Q4_0 and Q5_0 rows against 1…9, 15, 16, 17 and 33 quantized tokens (every
    /// row grouping and tile width, AMX's whole and partial tiles of 16 rows and 16 tokens), each
    /// table against AVX2 and against the order every table keeps, written out here.
    @Test func quantizedProductsAreBitIdentical() throws {
        let isas = Self.others
        #expect(
            ProcessInfo.processInfo.environment["PRS_ISA"] == "avx2" || !isas.isEmpty || !Self.machineHasVNNI,
            "this machine reports AVX-512 VNNI, so its table must be tested")
        var rng = SplitMix64(seed: 5)
        let n = 256
        let rows = 37
        for (kind, blockBytes) in [(Int32(0), 20), (1, 34), (2, 18), (7, 22)] {
            let rowBytes = n / 32 * blockBytes
            var w = (0..<(rows * rowBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Valid, varied f16 scales (and Q4_1 minimums) at the head of each block.
            for r in 0..<rows {
                for b in 0..<(n / 32) {
                    let at = r * rowBytes + b * blockBytes
                    let scale = UInt16(0x2000 + Int(rng.next() % 0x1800))
                    w[at] = UInt8(scale & 0xFF)
                    w[at + 1] = UInt8(scale >> 8)
                    if kind == 0 {
                        w[at + 2] = UInt8(scale & 0xFF)
                        w[at + 3] = UInt8(0x80 | (scale >> 8))
                    }
                }
            }
            for batch in Array(1...9) + [15, 16, 17, 33] {
                let x = (0..<(batch * n)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 250 }
                var acts = [lm_act_q8](repeating: lm_act_q8(), count: batch * n / 32)
                x.withUnsafeBufferPointer { xp in
                    acts.withUnsafeMutableBufferPointer { ap in
                        for t in 0..<batch {
                            lm_quantize_acts(xp.baseAddress! + t * n, ap.baseAddress! + t * n / 32, Int32(n))
                        }
                    }
                }
                func product(_ isa: Int32) -> [Float] {
                    withISA(isa) {
                        var out = [Float](repeating: 0, count: batch * rows)
                        w.withUnsafeBytes { wp in
                            acts.withUnsafeBytes { ap in
                                out.withUnsafeMutableBufferPointer { op in
                                    lm_matmul(
                                        kind, Int32(n), wp.baseAddress!, rowBytes, ap.baseAddress!,
                                        n / 32 * MemoryLayout<lm_act_q8>.stride,
                                        Int32(batch), op.baseAddress!, rows, 0, Int32(rows))
                                }
                            }
                        }
                        return out
                    }
                }
                let reference = product(0)
                #expect(reference.allSatisfy { $0.isFinite })
                let written = (0..<batch).flatMap { t in
                    (0..<rows).map { r in
                        Self.blockOrderProduct(
                            kind: kind, row: Array(w[(r * rowBytes)..<((r + 1) * rowBytes)]),
                            acts: Array(acts[(t * n / 32)..<((t + 1) * n / 32)]))
                    }
                }
                #expect(
                    reference.map(\.bitPattern) == written.map(\.bitPattern),
                    "kind \(kind), batch \(batch): AVX2 against the written-out order")
                for isa in isas {
                    let got = product(isa)
                    #expect(
                        got.map(\.bitPattern) == reference.map(\.bitPattern), "kind \(kind), batch \(batch), isa \(isa)"
                    )
                }
            }
        }
    }

    /// One output the way DESIGN.md's instruction-set section orders it: each block's products
    /// summed as integers, then acc = fma(d_w · d_x, Σ, acc) block by block; Q4_1's m_w · s_x
    /// summed apart by FMA, and added last.
    static func blockOrderProduct(kind: Int32, row: [UInt8], acts: [lm_act_q8]) -> Float {
        let blockBytes = [0: 20, 1: 34, 2: 18, 7: 22][Int(kind)]!
        func half(_ at: Int) -> Float { Float(Float16(bitPattern: UInt16(row[at]) | UInt16(row[at + 1]) << 8)) }
        var acc: Float = 0
        var corr: Float = 0
        for (b, a) in acts.enumerated() {
            let at = b * blockBytes
            let q: [Int] = withUnsafeBytes(of: a.qs) { Array($0).map { Int(Int8(bitPattern: $0)) } }
            func weight(_ k: Int) -> Int {
                switch kind {
                case 0: return Int(k < 16 ? row[at + 4 + k] & 15 : row[at + 4 + k - 16] >> 4)
                case 1: return Int(Int8(bitPattern: row[at + 2 + k]))
                case 7:
                    let high = Int(row[at + 2 + k / 8] >> (k % 8)) & 1
                    return (Int(k < 16 ? row[at + 6 + k] & 15 : row[at + 6 + k - 16] >> 4) | high << 4) - 16
                default: return Int(k < 16 ? row[at + 2 + k] & 15 : row[at + 2 + k - 16] >> 4) - 8
                }
            }
            let sum = (0..<32).reduce(0) { $0 + weight($1) * q[$1] }
            acc = acc.addingProduct(half(at) * a.d, Float(sum))
            if kind == 0 { corr = corr.addingProduct(half(at + 2), a.s) }
        }
        return acc + corr
    }

    /// The real model: a prompt evaluated in one batch, then tokens one by one; every logit equal bit for bit.
    /// Skipped (shown as such) on a machine whose processor runs one kernel table only.
    @Test(.enabled(if: !ISATests.others.isEmpty, "this processor runs one kernel table; there is nothing to compare"))
    func aForwardPassIsBitIdentical() throws {
        let isas = Self.others
        let model = try LlamaModel(file: SmolLM2.file.get())
        let prompt = model.tokenizer.encode(
            "<|im_start|>user\nWhy is the sky blue? Answer in one line.<|im_end|>\n<|im_start|>assistant\n",
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

    /// Batch invariance on each table, and the same tokens across tables: eight seeded
    /// continuations decoded together equal the same seeds decoded alone and four at a time.
    @Test func batchInvarianceHoldsOnEveryTable() async throws {
        let model = try LlamaModel(file: SmolLM2.file.get())
        let p = model.tokenizer.encode(
            "<|im_start|>user\nWrite one sentence about the sea.<|im_end|>\n<|im_start|>assistant\n",
            addSpecial: false, parseSpecial: true)
        let o = CompletionOptions(maxTokens: 16, sampler: SamplerSettings(temperature: 0.9, topK: 50, seed: 3))
        var byTable: [[[Int32]]] = []
        for isa in [Int32(0)] + Self.others {
            let was = lm_q8_set_isa(isa)
            defer { _ = lm_q8_set_isa(was) }
            let eight = try await Engine(model: model, contextTokens: 512, threads: 2).complete(
                prompt: p, n: 8, options: o
            ).map(\.tokens)
            var alone = o
            alone.sampler.seed = 3 + 6
            let one = try await Engine(model: model, contextTokens: 512, threads: 1).complete(
                prompt: p, n: 1, options: alone)
            #expect(one[0].tokens == eight[6], "table \(isa): alone = 7th of a batch of 8")
            var four = o
            four.sampler.seed = 3 + 2
            let batch4 = try await Engine(model: model, contextTokens: 512, threads: 2).complete(
                prompt: p, n: 4, options: four)
            #expect(
                batch4.map(\.tokens) == Array(eight[2..<6]),
                "table \(isa): a batch of 4 = the 3rd to 6th of a batch of 8")
            byTable.append(eight)
        }
        for (i, tokens) in byTable.enumerated().dropFirst() {
            #expect(tokens == byTable[0], "table \(Self.others[i - 1]) against AVX2")
        }
    }

    /// PRS_ISA: a name that is no table, or a table this machine lacks, is an error naming it.
    @Test func prsISAErrorsNameTheVariableAndWhatIsMissing() throws {
        #expect(throws: ModelError.self) { try InstructionSet.requested(environment: ["PRS_ISA": "sse9"]) }
        do { _ = try InstructionSet.requested(environment: ["PRS_ISA": "sse9"]) } catch {
            #expect("\(error)".contains("PRS_ISA=sse9 names no kernel table; expected avx2, avx512 or amx"))
        }
        #expect(try InstructionSet.requested(environment: ["PRS_ISA": "avx2"]) == .avx2)
        #expect(try InstructionSet.requested(environment: [:]) == nil)
        for isa in InstructionSet.allCases where !isa.isAvailable {
            do {
                _ = try InstructionSet.requested(environment: ["PRS_ISA": isa.rawValue])
                Issue.record("\(isa) is not here, yet accepted")
            } catch {
                #expect(
                    "\(error)".contains(
                        "PRS_ISA=\(isa.rawValue) asks for the \(isa.rawValue) kernels, but this machine does not "
                            + "allow them"
                    ))
            }
        }
        #expect(InstructionSet.available.contains(.avx2))
        if Self.machineHasVNNI { #expect(InstructionSet.available.contains(.avx512)) }
    }

    static var machineHasVNNI: Bool {
        let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return flags.contains("avx512_vnni") && flags.contains("avx512bw") && flags.contains("avx512dq")
    }
}
