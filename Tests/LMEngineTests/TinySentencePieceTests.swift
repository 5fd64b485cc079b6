import Foundation
import GGUF
import LMEngine
import Testing

/// A tiny SentencePiece-vocabulary llama (Llama 2 style: add_space_prefix, BOS, byte fallback, a
/// user-defined and a control token) written by the project's GGUF writer, F32 weights: llama.cpp
/// loads it, and tokenizes and evaluates it as the engine does.
@Suite(.serialized) struct TinySentencePieceTests {
    static let corpus = [
        "the band and the hand",
        "Then a theme: handed thanks.",
        " leading space and  two",
        "tabs\tand\nnewlines\n\n",
        "bytes for unknowns: é ü 😀 ∑",
        "<|user|>the end<|ctl|>and",
        "thethethe andand",
        "",
        "   ",
    ]

    /// The pieces, scored so merges have a clear order (longer pieces higher, ties broken by text).
    static let pieces = [
        "▁", "t", "h", "e", "a", "n", "d", "s", "k", "m", ":", ".", "T", "r", "o", "l", "i", "g", "p", "c", "w", "u",
        "f", "b", "x",
        "th", "he", "an", "nd", "▁t", "▁a", "▁th", "▁the", "▁an", "▁and", "the", "and", "hand", "band", "▁hand",
        "▁band",
        "em", "eme", "▁theme", "▁thanks", "ks", "ed", "▁handed", "ing", "▁lead", "▁leading", "▁space", "ace",
    ]

    static func write(_ path: String) throws {
        var tokens = ["<unk>", "<s>", "</s>"]
        var types: [Int32] = [2, 3, 3]
        var scores: [Float] = [0, 0, 0]
        for b in 0..<256 {
            tokens.append(String(format: "<0x%02X>", b))
            types.append(6)
            scores.append(0)
        }
        for (i, p) in pieces.enumerated() {
            tokens.append(p)
            types.append(1)
            scores.append(Float(p.count) * 10 - Float(i) * 0.01)
        }
        tokens += ["<|user|>", "<|ctl|>"]
        types += [4, 3]
        scores += [0, 0]
        let vocab = tokens.count
        let dim = 32
        let hidden = 64
        let heads = 4
        let kvHeads = 2
        let layers = 2
        let hd = dim / heads
        var w = GGUFWriter()
        w.metadata = [
            ("general.architecture", .string("llama")),
            ("llama.block_count", .uint32(UInt32(layers))),
            ("llama.embedding_length", .uint32(UInt32(dim))),
            ("llama.feed_forward_length", .uint32(UInt32(hidden))),
            ("llama.attention.head_count", .uint32(UInt32(heads))),
            ("llama.attention.head_count_kv", .uint32(UInt32(kvHeads))),
            ("llama.context_length", .uint32(256)),
            ("llama.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.tokens", .array(.strings(tokens))),
            ("tokenizer.ggml.scores", .array(.floats(scores))),
            ("tokenizer.ggml.token_type", .array(.integers(types.map(Int64.init), .int32))),
            ("tokenizer.ggml.bos_token_id", .uint32(1)),
            ("tokenizer.ggml.eos_token_id", .uint32(2)),
            ("tokenizer.ggml.unknown_token_id", .uint32(0)),
            ("tokenizer.ggml.add_bos_token", .bool(true)),
            ("tokenizer.ggml.add_space_prefix", .bool(true)),
        ]
        var rng = SplitMix64(seed: 0x5E17)
        func tensor(_ name: String, _ cols: Int, _ rows: Int, norm: Bool = false) throws {
            let values = (0..<(cols * rows)).map { _ in
                norm ? Float.random(in: 0.8...1.2, using: &rng) : Float.random(in: -0.5...0.5, using: &rng)
            }
            w.tensors.append(
                .init(
                    name: name, dimensions: rows == 1 ? [cols] : [cols, rows], type: .f32,
                    data: try Quantize.encode(values, as: .f32)))
        }
        try tensor("token_embd.weight", dim, vocab)
        try tensor("output_norm.weight", dim, 1, norm: true)
        for l in 0..<layers {
            let p = "blk.\(l)."
            try tensor(p + "attn_norm.weight", dim, 1, norm: true)
            try tensor(p + "attn_q.weight", dim, dim)
            try tensor(p + "attn_k.weight", dim, kvHeads * hd)
            try tensor(p + "attn_v.weight", dim, kvHeads * hd)
            try tensor(p + "attn_output.weight", dim, dim)
            try tensor(p + "ffn_norm.weight", dim, 1, norm: true)
            try tensor(p + "ffn_gate.weight", dim, hidden)
            try tensor(p + "ffn_up.weight", dim, hidden)
            try tensor(p + "ffn_down.weight", hidden, dim)
        }
        try w.write(to: path)
    }

    static let path: Result<String, any Error> = Result {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("prs-tiny-spm-\(UUID()).gguf").path
        try write(p)
        return p
    }

    /// Runs a reference script of scripts/reference with the project venv, returning its standard output.
    static func reference(_ script: String, _ args: [String], stdin: Data? = nil) throws -> Data {
        let python = SmolLM2.root.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw ModelError("the reference tools are not installed: run scripts/setup.sh --tests")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prs-tiny-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in")
        let output = dir.appendingPathComponent("out")
        try (stdin ?? Data()).write(to: input)
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [SmolLM2.root.appendingPathComponent("scripts/reference/\(script)").path] + args
        p.standardInput = try FileHandle(forReadingFrom: input)
        p.standardOutput = try FileHandle(forWritingTo: output)
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ModelError("\(script) failed (status \(p.terminationStatus))") }
        return try Data(contentsOf: output)
    }

    @Test func tokenizesAsLlamaCpp() throws {
        let path = try Self.path.get()
        let dir = FileManager.default.temporaryDirectory
        let corpus = dir.appendingPathComponent("prs-tiny-corpus-\(UUID()).json")
        let out = dir.appendingPathComponent("prs-tiny-tokens-\(UUID()).json")
        defer {
            try? FileManager.default.removeItem(at: corpus)
            try? FileManager.default.removeItem(at: out)
        }
        try JSONEncoder().encode(Self.corpus).write(to: corpus)
        _ = try Self.reference("tokenize_corpus.py", [path, corpus.path, out.path])
        let golden = try JSONDecoder().decode([GoldenTokens].self, from: Data(contentsOf: out))
        #expect(golden.count == Self.corpus.count)
        let tok = try Tokenizer(gguf: GGUFFile(path: path).content)
        #expect(tok.model == .sentencePiece && tok.addSpacePrefix)
        for g in golden {
            #expect(
                tok.encode(g.text, addSpecial: false, parseSpecial: true) == g.special,
                "\(g.text.debugDescription), special")
            #expect(
                tok.encode(g.text, addSpecial: false, parseSpecial: false) == g.plain,
                "\(g.text.debugDescription), plain")
            #expect(
                tok.encode(g.text, addSpecial: true, parseSpecial: true) == g.add_special,
                "\(g.text.debugDescription), with BOS")
        }
        // The pieces are used, not just bytes: "the" is one token after the space prefix.
        #expect(tok.encode("the", parseSpecial: false) == [Int32(tok.tokens.firstIndex(of: "▁the")!)])
    }

    /// F32 weights and activations on both sides: the logits agree to 1e-3 after each prompt and
    /// along 16 greedy steps.
    @Test func runsAsLlamaCpp() throws {
        let path = try Self.path.get()
        let prompts = ["the band and", "<|user|>thanks: the"]
        let data = try Self.reference("llama_reference.py", [path, "16"], stdin: try JSONEncoder().encode(prompts))
        let refs = try JSONDecoder().decode([ReferenceEqualityTests.Reference].self, from: data)
        let model = try LlamaModel(path: path)
        for (prompt, ref) in zip(prompts, refs) {
            #expect(model.tokenizer.encode(prompt, addSpecial: true) == ref.prompt)
            let s = LlamaSession(model: model, maxTokens: 64)
            try s.forward(ref.prompt)
            let worst = (0..<model.config.vocabSize).map { abs(s.logits[$0] - ref.logits[$0]) }.max()!
            #expect(worst <= 1e-3, "\(prompt): max |logit difference| \(worst)")
            let ties = try ReferenceEqualityTests.compareGreedy(model, ref, tolerance: 1e-3)
            #expect(ties.isEmpty, "\(prompt): greedy steps that differ: \(ties)")
        }
    }
}
