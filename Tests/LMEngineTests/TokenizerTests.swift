import Foundation
import GGUF
import LMEngine
import Testing

/// The model of scripts/setup.sh and its tokenizer, loaded once.
enum SmolLM2 {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let path = root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let file: Result<GGUFFile, any Error> = Result { try GGUFFile(path: path) }
    static let tokenizer: Result<Tokenizer, any Error> = Result { try Tokenizer(gguf: file.get().content) }
}

struct GoldenTokens: Decodable, Sendable, CustomTestStringConvertible {
    var text: String
    var special: [Int32]
    var plain: [Int32]
    var add_special: [Int32]
    var testDescription: String { text.debugDescription }

    static let all: [GoldenTokens] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Fixtures/smollm2-tokens.json")
        return (try? JSONDecoder().decode([GoldenTokens].self, from: Data(contentsOf: url))) ?? []
    }()
}

/// Token ids against llama.cpp's, recorded by scripts/reference/tokenize_corpus.py.
@Suite struct TokenizerTests {
    @Test func theGoldenFileIsThere() { #expect(GoldenTokens.all.count >= 60) }

    @Test(arguments: GoldenTokens.all)
    func matchesLlamaCpp(golden: GoldenTokens) throws {
        let tok = try SmolLM2.tokenizer.get()
        #expect(tok.encode(golden.text, addSpecial: false, parseSpecial: true) == golden.special)
        #expect(tok.encode(golden.text, addSpecial: false, parseSpecial: false) == golden.plain)
        #expect(tok.encode(golden.text, addSpecial: true, parseSpecial: true) == golden.add_special)
    }

    @Test(arguments: GoldenTokens.all)
    func decodingGivesTheTextBack(golden: GoldenTokens) throws {
        let tok = try SmolLM2.tokenizer.get()
        #expect(tok.decode(golden.plain) == golden.text)
        #expect(tok.decode(golden.special, special: true) == golden.text)
    }

    @Test func specialTokensAreSingleTokens() throws {
        let tok = try SmolLM2.tokenizer.get()
        let ids = tok.encode("<|im_start|>user")
        #expect(ids.first == 1)
        #expect(tok.decode(ids) == "user", "control tokens are not text unless asked")
        #expect(tok.endOfGeneration.contains(2))
    }

    @Test func streamingHoldsBackPartialCharacters() {
        var s = UTF8Stream()
        let euro = Array("€".utf8)  // 3 bytes
        #expect(s.push([0x41, euro[0]]) == "A")
        #expect(s.push([euro[1]]) == "")
        #expect(s.push([euro[2], 0x42]) == "€B")
        let emoji = Array("😀".utf8)
        #expect(s.push(Array(emoji[0..<3])) == "")
        #expect(s.push([emoji[3]]) == "😀")
        #expect(s.push([0xE2]) == "")
        #expect(s.flush() == "\u{FFFD}")
        #expect(s.push([0xFF, 0x41]) == "\u{FFFD}A", "an invalid byte is replaced, not held")
    }
}

/// Broken tokenizer metadata gives an error naming the key, never a crash.
@Suite struct TokenizerMetadataTests {
    func content(_ meta: [(String, MetadataValue)]) throws -> GGUFContent {
        var w = GGUFWriter()
        w.metadata = meta
        return try w.encode().withUnsafeBytes { try GGUFContent.parse($0) }
    }

    var base: [(String, MetadataValue)] {
        [
            ("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.pre", .string("smollm")),
            ("tokenizer.ggml.tokens", .array(.strings(["a", "b", "ab", "<0x0A>"]))),
            ("tokenizer.ggml.merges", .array(.strings(["a b"]))),
        ]
    }

    func expectError(_ meta: [(String, MetadataValue)], _ words: String) throws {
        let c = try content(meta)
        #expect { try Tokenizer(gguf: c) } throws: { e in String(describing: e).contains(words) }
    }

    @Test func aMinimalVocabularyWorks() throws {
        let tok = try Tokenizer(gguf: try content(base))
        #expect(tok.encode("ab") == [2])
        #expect(tok.encode("ba") == [1, 0])
    }

    @Test func brokenMetadataIsNamed() throws {
        func replacing(_ key: String, _ v: MetadataValue?) -> [(String, MetadataValue)] {
            var m = base.filter { $0.0 != key }
            if let v { m.append((key, v)) }
            return m
        }
        try expectError(
            replacing("tokenizer.ggml.scores", .array(.integers([1, 2, 3, 4], .int32))),
            "tokenizer.ggml.scores must be an array of float32")
        try expectError(
            replacing("tokenizer.ggml.token_type", .array(.integers([1, 1], .int32))),
            "has 2 entries but tokenizer.ggml.tokens has 4")
        try expectError(
            replacing("tokenizer.ggml.tokens", .array(.integers([1], .int32))), "must be an array of strings")
        try expectError(replacing("tokenizer.ggml.tokens", .array(.strings([]))), "is empty")
        try expectError(
            replacing("tokenizer.ggml.tokens", .array(.strings(["a", "b", "ab", "<0xZZ>"]))) + [
                ("tokenizer.ggml.token_type", .array(.integers([1, 1, 1, 6], .int32)))
            ], "is not of the form <0xHH>")
        try expectError(replacing("tokenizer.ggml.bos_token_id", .uint32(99)), "outside the vocabulary of 4 tokens")
        try expectError(replacing("tokenizer.ggml.pre", .string("klingon")), "\"klingon\" is not supported")
        try expectError(replacing("tokenizer.ggml.model", .string("bert")), "\"bert\" is not supported")
        try expectError(
            replacing("tokenizer.ggml.model", .string("llama")).filter { $0.0 != "tokenizer.ggml.scores" },
            "tokenizer.ggml.scores is missing")
        try expectError(replacing("tokenizer.ggml.merges", .array(.strings(["abc"]))), "merges[0]")
    }
}

/// Broken model hyperparameters give an error naming the key.
@Suite struct ModelMetadataTests {
    func config(_ meta: [(String, MetadataValue)]) throws -> LlamaConfig {
        var w = GGUFWriter()
        w.metadata =
            [("general.architecture", .string("llama")), ("tokenizer.ggml.tokens", .array(.strings(["a"])))] + meta
        return try LlamaConfig(gguf: try w.encode().withUnsafeBytes { try GGUFContent.parse($0) })
    }

    let good: [(String, MetadataValue)] = [
        ("llama.block_count", .uint32(2)), ("llama.embedding_length", .uint32(64)),
        ("llama.feed_forward_length", .uint32(128)), ("llama.attention.head_count", .uint32(4)),
    ]

    func expectError(_ meta: [(String, MetadataValue)], _ words: String) {
        #expect { try config(meta) } throws: { String(describing: $0).contains(words) }
    }

    @Test func readsHyperparametersAndRefusesBadOnes() throws {
        let c = try config(good)
        #expect(c.headDim == 16 && c.kvHeads == 4 && c.ropeBase == 10000)
        func with(_ k: String, _ v: MetadataValue) -> [(String, MetadataValue)] { good.filter { $0.0 != k } + [(k, v)] }
        expectError(with("llama.attention.head_count", .uint32(0)), "head_count is 0")
        expectError(with("llama.attention.head_count_kv", .uint32(3)), "must be positive and divide head_count 4")
        expectError(with("llama.attention.head_count_kv", .uint32(0)), "head_count_kv is 0")
        expectError(with("llama.embedding_length", .uint32(66)), "not a multiple of head_count")
        expectError(with("llama.block_count", .string("two")), "must be an integer, found string")
        expectError(good.filter { $0.0 != "llama.feed_forward_length" }, "llama.feed_forward_length is missing")
        expectError(with("llama.rope.dimension_count", .uint32(7)), "must be even")
        #expect {
            try LlamaConfig(gguf: try GGUFWriter().encode().withUnsafeBytes { try GGUFContent.parse($0) })
        } throws: {
            String(describing: $0).contains("general.architecture is missing")
        }
    }
}
