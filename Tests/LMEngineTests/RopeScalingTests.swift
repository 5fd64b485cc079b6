import Foundation
import GGUF
import LMEngine
import Testing

/// Rope scaling against llama.cpp on small random-weight llamas (scripts/make-arch-model.py, F32
/// weights, q/k large enough that positions matter): Llama 3.x's `rope_freqs.weight`, linear and
/// YaRN scaling give llama.cpp's logits at positions up to 300, while the same weights without
/// the scaling give clearly different ones. And what prs does not implement is refused by name.
///
/// Tolerance: F32 weights take prs's float path and llama.cpp's, so only the order of float
/// additions, ggml's F16 K/V cache (prs's too) and its vector exp differ: max |Δ logit| ≤ 0.02.
@Suite(.serialized) struct RopeScalingTests {
    static let tolerance: Float = 0.02
    static let variants = [
        "llama", "llama-rope-freqs", "llama-linear", "llama-yarn", "qwen2", "qwen3", "gemma2", "phi3", "phi3-long",
    ]
    static let positions = [5, 40, 120, 250, 299]

    static let dir: Result<URL, any Error> = Result {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("prs-arch-\(UUID())")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        for v in variants { _ = try python("scripts/make-arch-model.py", ["--variant", v, "--out", d.path]) }
        // Phi-3's fused tensors as llama.cpp's quantizer writes them: the parts are row ranges of Q4_0 blocks.
        _ = try python("scripts/make-arch-model.py", ["--variant", "phi3", "--out", d.path, "--quantize", "q4_0"])
        return d
    }

    static func path(_ variant: String) throws -> String {
        try dir.get().appendingPathComponent("arch-\(variant).gguf").path
    }

    static func python(_ script: String, _ args: [String]) throws -> Data {
        let python = SmolLM2.root.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ModelError("the reference tools are not installed: run scripts/setup.sh (make test does)")
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("prs-ref-\(UUID()).out")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [SmolLM2.root.appendingPathComponent(script).path] + args
        p.standardOutput = try FileHandle(forWritingTo: out)
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ModelError("\(script) failed (status \(p.terminationStatus))") }
        return try Data(contentsOf: out)
    }

    /// 300 tokens of ordinary text, as the model's tokenizer splits it.
    static func tokens(_ model: LlamaModel) -> [Int32] {
        let text = (0..<40).map {
            "Sentence \($0) tells of the river, the hills and the people who walked between them."
        }.joined(separator: " ")
        return Array(model.tokenizer.encode(text, addSpecial: false, parseSpecial: false).prefix(300))
    }

    /// prs's logits after each of `positions`, from one session fed in segments.
    static func prsLogits(_ model: LlamaModel, _ tokens: [Int32]) throws -> [[Float]] {
        let session = LlamaSession(model: model, maxTokens: 512, threads: 2, chunk: 64)
        var out: [[Float]] = []
        var at = 0
        for p in positions {
            try session.forward(Array(tokens[at...p]))
            at = p + 1
            out.append(Array(UnsafeBufferPointer(start: session.logits, count: model.config.vocabSize)))
        }
        return out
    }

    static func llamaLogits(_ path: String, _ tokens: [Int32]) throws -> [[Float]] {
        let request = FileManager.default.temporaryDirectory.appendingPathComponent("prs-req-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: request) }
        try JSONSerialization.data(withJSONObject: ["tokens": tokens.map(Int.init), "positions": positions]).write(
            to: request)
        let rows = try JSONDecoder().decode(
            [String].self, from: python("scripts/reference/llama_logits_at.py", [path, "--input", request.path]))
        return rows.map { b64 in
            let d = Data(base64Encoded: b64)!
            return d.withUnsafeBytes { raw in
                (0..<(d.count / 4)).map {
                    Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
                }
            }
        }
    }

    static func maxDiff(_ a: [[Float]], _ b: [[Float]]) -> Float {
        zip(a, b).map { zip($0, $1).map { abs($0 - $1) }.max() ?? .infinity }.max() ?? .infinity
    }

    /// prs's logits on `path` at `positions`, expected within the tolerance of llama.cpp's with the
    /// same greedy token at each; returned for the tests' own checks.
    static func expectLlamaCppsLogits(_ path: String, _ model: LlamaModel, _ variant: String) throws -> [[Float]] {
        let tokens = Self.tokens(model)
        let ours = try Self.prsLogits(model, tokens)
        let theirs = try Self.llamaLogits(path, tokens)
        let d = Self.maxDiff(ours, theirs)
        #expect(
            d <= Self.tolerance, "\(variant): max |Δ logit| against llama.cpp \(d) over positions \(Self.positions)")
        for (a, b) in zip(ours, theirs) {
            #expect(
                a.indices.max { a[$0] < a[$1] } == b.indices.max { b[$0] < b[$1] },
                "\(variant): the greedy token differs")
        }
        print("architecture \(variant): max |Δ logit| vs llama.cpp \(d)")
        return ours
    }

    /// Qwen2 (q/k/v biases, NEOX rotary pairs: before this test prs paired them as llama does and
    /// was up to 25 nats from llama.cpp) and Qwen3 (per-head q/k norms, heads wider than dim/heads).
    @Test(arguments: ["qwen2", "qwen3"])
    func qwenArchitecturesGiveLlamaCppsLogits(variant: String) throws {
        let model = try LlamaModel(path: try Self.path(variant))
        #expect(model.config.ropePairs == .halves && model.config.qkNorms == (variant == "qwen3"))
        _ = try Self.expectLlamaCppsLogits(try Self.path(variant), model, variant)
    }

    /// Gemma 2: alternating sliding-window (48) and global layers, attention scores soft-capped at 8
    /// and logits at 6, post norms, GeGLU, the embedding scaled. Each of the window and the two caps
    /// moves the logits far beyond the tolerance, so leaving one out would fail.
    @Test func gemma2GivesLlamaCppsLogits() throws {
        let path = try Self.path("gemma2")
        let model = try LlamaModel(path: path)
        let c = model.config
        #expect(c.slidingWindow == 48 && c.localLayers == [true, false, true, false])
        #expect(
            c.attentionSoftcap == 8 && c.finalLogitSoftcap == 6 && c.postNorms && !c.qkNorms
                && c.activation == .geluTanh)
        let tokens = Self.tokens(model)
        let ours = try Self.expectLlamaCppsLogits(path, model, "gemma2")
        // The same weights with one feature turned off, in prs: each changes the answer.
        let base = try GGUFFile(path: path)
        for (key, value) in [
            ("gemma2.attention.sliding_window", MetadataValue.uint32(4096)),
            ("gemma2.attn_logit_softcapping", .float32(1e6)), ("gemma2.final_logit_softcapping", .float32(1e6)),
        ] {
            var w = GGUFWriter()
            w.metadata = base.content.metadata.map { $0.key == key ? (key: key, value: value) : $0 }
            w.alignment = base.content.alignment
            for t in base.content.tensors {
                w.tensors.append(
                    .init(name: t.name, dimensions: t.dimensions, type: t.type, data: Array(base.bytes(of: t))))
            }
            let off = try Self.dir.get().appendingPathComponent("gemma2-without-\(key).gguf").path
            try w.write(to: off)
            let effect = Self.maxDiff(ours, try Self.prsLogits(try LlamaModel(path: off), tokens))
            #expect(
                effect >= 50 * Self.tolerance,
                "gemma2 without \(key): the logits move by \(effect) at most, too little to tell")
            print("gemma2 without \(key): max |Δ logit| \(effect)")
        }
    }

    /// Phi-3: fused q/k/v and gate/up tensors, NEOX pairs, the query scaled before q·k, rope
    /// attn_factor 1.2, and Phi-3 128k's two factor sets: the short ones when a sequence stays
    /// within the original context (`phi3`, 4096), the long ones past it (`phi3-long`, 64), at
    /// the 512 positions both prs and llama.cpp run here. The two files' weights are the same, so
    /// the factor choice alone moves the logits.
    @Test func phi3GivesLlamaCppsLogitsWithTheFactorsLlamaCppChooses() throws {
        var logits: [[[Float]]] = []
        for variant in ["phi3", "phi3-long"] {
            let path = try Self.path(variant)
            let model = try LlamaModel(path: path)
            let s = model.config.ropeScaling
            #expect(s.longFactors?.count == model.config.ropeDim / 2 && s.attnFactor == 1.2)
            #expect((s.forContext(512).factors == s.longFactors) == (variant == "phi3-long"))
            logits.append(try Self.expectLlamaCppsLogits(path, model, variant))
        }
        let effect = Self.maxDiff(logits[0], logits[1])
        #expect(
            effect >= 50 * Self.tolerance,
            "short against long factors: the logits move by \(effect) at most, too little to tell")
        print("phi3 short against long rope factors: max |Δ logit| \(effect)")
    }

    /// The Q4_0 copy of the `phi3` model: the fused tensors' parts, repacked, give llama.cpp's
    /// logits within the quantized tolerance of ReferenceEqualityTests (1.0: activations quantized
    /// to int8 land on the other side of a rounding step as float sums are ordered differently).
    @Test func quantizedPhi3GivesLlamaCppsLogits() throws {
        let path = try Self.dir.get().appendingPathComponent("arch-phi3-q4_0.gguf").path
        let model = try LlamaModel(path: path)
        #expect(model.repackedBytes > 0)
        let tokens = Self.tokens(model)
        let ours = try Self.prsLogits(model, tokens)
        let theirs = try Self.llamaLogits(path, tokens)
        let d = Self.maxDiff(ours, theirs)
        #expect(d <= 1.0, "phi3 Q4_0: max |Δ logit| against llama.cpp \(d) over positions \(Self.positions)")
        let f32 = try Self.prsLogits(try LlamaModel(path: try Self.path("phi3")), tokens)
        print("architecture phi3 Q4_0: max |Δ logit| vs llama.cpp \(d); vs the F32 weights \(Self.maxDiff(ours, f32))")
    }

    @Test(arguments: ["llama", "llama-rope-freqs", "llama-linear", "llama-yarn"])
    func ropeScalingGivesLlamaCppsLogits(variant: String) throws {
        let model = try LlamaModel(path: try Self.path(variant))
        let tokens = Self.tokens(model)
        #expect(tokens.count == 300)
        let ours = try Self.prsLogits(model, tokens)
        let theirs = try Self.llamaLogits(try Self.path(variant), tokens)
        let d = Self.maxDiff(ours, theirs)
        #expect(
            d <= Self.tolerance, "\(variant): max |Δ logit| against llama.cpp \(d) over positions \(Self.positions)")
        if variant != "llama" {
            // The same weights unscaled: the scaling changes the answer far beyond the tolerance.
            let plain = try Self.prsLogits(try LlamaModel(path: try Self.path("llama")), tokens)
            let effect = Self.maxDiff(ours, plain)
            #expect(
                effect >= 50 * Self.tolerance,
                "\(variant): scaling moves the logits by \(effect) at most, too little to tell")
            print("rope scaling \(variant): max |Δ logit| vs llama.cpp \(d); vs the same weights unscaled \(effect)")
        }
        if variant == "llama-rope-freqs" {
            #expect(model.config.ropeScaling.factors?.count == model.config.ropeDim / 2)
        }
    }

    /// A file with a metadata key or a tensor that changes llama.cpp's forward pass and that prs does
    /// not implement is refused at load, naming it.
    @Test func whatPrsDoesNotImplementIsRefusedByName() throws {
        let base = try GGUFFile(path: try Self.path("llama"))
        let dir = try Self.dir.get()
        func variant(_ name: String, metadata: [(String, MetadataValue)] = [], tensor: String? = nil) throws -> String {
            var w = GGUFWriter()
            w.metadata = base.content.metadata + metadata
            w.alignment = base.content.alignment
            for t in base.content.tensors {
                w.tensors.append(
                    .init(name: t.name, dimensions: t.dimensions, type: t.type, data: Array(base.bytes(of: t))))
            }
            if let tensor {
                w.tensors.append(
                    .init(name: tensor, dimensions: [256], type: .f32, data: [UInt8](repeating: 0, count: 1024)))
            }
            let path = dir.appendingPathComponent("refused-\(name).gguf").path
            try w.write(to: path)
            return path
        }
        let cases: [(String, String, String)] = [
            (
                try variant("longrope", metadata: [("llama.rope.scaling.type", .string("longrope"))]),
                "llama.rope.scaling.type", "longrope"
            ),
            (
                try variant("softcap", metadata: [("llama.attn_logit_softcapping", .float32(50))]),
                "llama.attn_logit_softcapping", "refusing"
            ),
            (try variant("experts", metadata: [("llama.expert_count", .uint32(8))]), "llama.expert_count", "refusing"),
            (
                try variant(
                    "yarn-log",
                    metadata: [
                        ("llama.rope.scaling.type", .string("yarn")),
                        ("llama.rope.scaling.yarn_log_multiplier", .float32(0.1)),
                    ]),
                "llama.rope.scaling.yarn_log_multiplier", "refus"
            ),
            (try variant("sub-norm", tensor: "blk.0.attn_sub_norm.weight"), "blk.0.attn_sub_norm.weight", "refusing"),
            (try variant("bias", tensor: "output.bias"), "output.bias", "refusing"),
        ]
        for (path, key, word) in cases {
            do {
                _ = try LlamaModel(path: path)
                Issue.record("\(path) loaded; it should be refused for \(key)")
            } catch {
                #expect("\(error)".contains(key) && "\(error)".contains(word), "\(path): \(error)")
            }
        }
        // Zero experts says "dense": accepted.
        #expect(throws: Never.self) {
            _ = try LlamaModel(path: try variant("zero-experts", metadata: [("llama.expert_count", .uint32(0))]))
        }
    }
}
