import Foundation
import GGUF
import LMEngine
import Testing

/// Every pre-tokenizer against llama.cpp: SmolLM2's vocabulary and merges written (by our
/// writer, metadata only) with another `tokenizer.ggml.pre`, loaded vocabulary-only by
/// llama-cpp-python, which tokenizes the corpus with that pre-tokenizer's rules.
@Suite(.serialized) struct PreTokenizerReferenceTests {
    @Test(arguments: ["gpt-2", "llama-bpe", "qwen2", "smollm"])
    func matchesLlamaCpp(pre: String) throws {
        let source = try SmolLM2.file.get()
        var w = GGUFWriter()
        w.metadata = source.content.metadata.map { $0.key == "tokenizer.ggml.pre" ? ($0.key, .string(pre)) : $0 }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prs-pre-\(pre)-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let vocab = dir.appendingPathComponent("vocab.gguf").path
        try w.write(to: vocab)
        let out = dir.appendingPathComponent("tokens.json")
        let p = Process()
        p.executableURL = SmolLM2.root.appendingPathComponent(".venv/bin/python")
        p.arguments = [
            SmolLM2.root.appendingPathComponent("scripts/reference/tokenize_corpus.py").path, vocab,
            SmolLM2.root.appendingPathComponent("Tests/LMEngineTests/Fixtures/tokenizer-corpus.json").path, out.path,
        ]
        let errors = dir.appendingPathComponent("stderr.txt")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: errors)
        try p.run()
        p.waitUntilExit()
        let said = (try? String(contentsOf: errors, encoding: .utf8)) ?? ""
        try #require(p.terminationStatus == 0, "llama.cpp could not tokenize with pre \(pre): \(said.suffix(1500))")
        let golden = try JSONDecoder().decode([GoldenTokens].self, from: Data(contentsOf: out))
        let tok = try Tokenizer(gguf: try GGUFFile(path: vocab).content)
        var mismatches: [String] = []
        for g in golden where tok.encode(g.text, addSpecial: false, parseSpecial: true) != g.special {
            mismatches.append(g.text)
        }
        #expect(
            mismatches.isEmpty, "\(pre): \(mismatches.count) of \(golden.count) texts differ: \(mismatches.prefix(5))")
    }
}
