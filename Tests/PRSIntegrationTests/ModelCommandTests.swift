import Foundation
import Testing

/// `prs model` against the real SmolLM2 file.
@Suite struct ModelCommandTests {
    @Test func infoDescribesTheModel() throws {
        let r = try run(Repo.prs, ["model", "info", Repo.model.path, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(o["architecture"] as? String == "llama")
        #expect(o["chat_template"] as? String == "jinja", "the file's own template is rendered")
        #expect((o["chat_template_detail"] as? String)?.contains("chatml format") == true)
        #expect(o["rope_scaling"] as? String == "none")
        #expect((o["hyperparameters"] as? [String: String])?["block_count"] == "30")
        let types = try #require(o["tensor_types"] as? [String: [String: Int]])
        #expect(Set(types.keys) == ["F32", "Q4_1", "Q8_0"])
        #expect((o["tokenizer"] as? [String: Any])?["tokens"] as? Int == 49152)
    }

    @Test func tokenizeGivesLlamaCppIds() throws {
        // Ids recorded from llama.cpp in Tests/LMEngineTests/Fixtures/smollm2-tokens.json.
        let r = try run(
            Repo.prs,
            [
                "model", "tokenize", Repo.model.path, "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n",
                "--json",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let fixtures = Repo.root.appendingPathComponent("Tests/LMEngineTests/Fixtures/smollm2-tokens.json")
        let golden = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures)) as? [[String: Any]])
        let expected = try #require(
            golden.first { $0["text"] as? String == "<|im_start|>user\nHi there!<|im_end|>\n<|im_start|>assistant\n" })
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

    /// The kernel tables as a user sees them: `prs model bench` names the table it ran on, and the
    /// best table and PRS_ISA=avx2 give the same tokens; a table the machine lacks, or a name that
    /// is none, is exit 2 with the variable named.
    @Test func benchNamesItsKernelTableAndEveryTableGivesTheSameTokens() throws {
        func bench(_ isa: String?) throws -> [String: Any] {
            let r = try run(
                Repo.prs,
                [
                    "model", "bench", Repo.model.path, "--prompt-tokens", "24", "--gen", "12", "--n", "3", "--threads",
                    "2", "--json",
                ],
                environment: isa.map { ["PRS_ISA": $0] } ?? [:])
            #expect(r.status == 0, "\(r.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        }
        let info = try run(Repo.prs, ["model", "info", Repo.model.path, "--json"])
        let o = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
        let available = try #require(o["isa_available"] as? [String])
        #expect(available.contains("avx2"))
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        if cpuinfo.contains("avx512_vnni") && cpuinfo.contains("avx512bw") {
            #expect(available.contains("avx512"), "this machine reports AVX-512 VNNI")
        }
        let best = try bench(nil)
        let baseline = try bench("avx2")
        #expect(baseline["isa"] as? String == "avx2")
        #expect(best["isa"] as? String == (available.contains("avx512") ? "avx512" : "avx2"))
        #expect((best["greedy_tokens"] as? [Int])?.count == 12)
        #expect(best["greedy_tokens"] as? [Int] == baseline["greedy_tokens"] as? [Int])
        #expect(best["nway_tokens_fnv1a"] as? String == baseline["nway_tokens_fnv1a"] as? String)
        for table in ["avx512", "amx"] where !available.contains(table) {
            let r = try run(
                Repo.prs, ["model", "bench", Repo.model.path, "--gen", "2"], environment: ["PRS_ISA": table])
            #expect(r.status == 2)
            #expect(
                r.stderr.contains(
                    "PRS_ISA=\(table) asks for the \(table) kernels, but this machine does not allow them"),
                "\(r.stderr)")
        }
        let r = try run(Repo.prs, ["model", "info", Repo.model.path], environment: ["PRS_ISA": "sse9"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("PRS_ISA=sse9 names no kernel table; expected avx2, avx512 or amx"), "\(r.stderr)")
    }
}
