import Foundation
import Testing

/// `prs model` against the real SmolLM2 file.
@Suite struct ModelCommandTests {
    @Test func infoDescribesTheModel() throws {
        let r = try run(Repo.prs, ["model", "info", Repo.model.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(o["architecture"] as? String == "llama")
        #expect(o["chat_template"] as? String == "chatml")
        #expect((o["hyperparameters"] as? [String: String])?["block_count"] == "30")
        let types = try #require(o["tensor_types"] as? [String: [String: Int]])
        #expect(Set(types.keys) == ["F32", "Q4_1", "Q8_0"])
        #expect((o["tokenizer"] as? [String: Any])?["tokens"] as? Int == 49152)
    }

    @Test func tokenizeGivesLlamaCppIds() throws {
        // Ids recorded from llama.cpp in Tests/LMEngineTests/Fixtures/smollm2-tokens.json.
        let r = try run(Repo.prs, ["model", "tokenize", Repo.model.path, "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let fixtures = Repo.root.appendingPathComponent("Tests/LMEngineTests/Fixtures/smollm2-tokens.json")
        let golden = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures)) as? [[String: Any]])
        let expected = try #require(golden.first { $0["text"] as? String == "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n" })
        #expect(o["tokens"] as? [Int] == expected["special"] as? [Int])
    }

    @Test func aBadFileIsExitTwoWithTheReason() throws {
        let bad = Repo.tempDir("model").appendingPathComponent("bad.gguf")
        try Data("GGUF\u{3}\0\0\0".utf8).write(to: bad)
        let r = try run(Repo.prs, ["model", "info", bad.path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(bad.path): at byte 8: file ends inside the tensor count"), "\(r.stderr)")
        let missing = try run(Repo.prs, ["model", "tokenize", "/nonexistent.gguf", "x"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("/nonexistent.gguf: cannot open"))
    }
}
