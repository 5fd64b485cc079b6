import Foundation
import PRSCore
import Testing

@Suite struct RunSettingsTests {
    static func settings(topK: Int?) throws -> RunSettings {
        var sampling = SamplingParameters.paper
        sampling.topK = topK
        let config = try StrategyConfig(kind: .prs, budget: 8, sampling: sampling, runSeed: 3)
        return RunSettings(strategy: config, policy: "embedded:m.gguf", reward: "rubric", feedback: "self")
    }

    @Test func settingsThatDifferOnlyInTopKAreToldApartByName() throws {
        let a = try Self.settings(topK: 40)
        let b = try Self.settings(topK: 50)
        #expect(a.fields != b.fields)
        #expect(RunSettings.differences(a.fields, b.fields) == ["top_k"])
        #expect(a.fields["top_k"] == "40" && b.fields["top_k"] == "50")
    }

    @Test func theStoredMapReadsBackAsTheSameSettings() throws {
        var s = try Self.settings(topK: 40)
        s.sampling.stop = ["\n\n", "END"]
        s.sampling.minP = 0.05
        s.normalize = ["rubric": 0.5, "judge": 0.5]
        s.shard = try Shard("1/4")
        s.loopStage = "prs iteration 1 sample"
        let back = try RunSettings(fields: s.fields)
        #expect(back == s)
        let json = try JSONEncoder().encode(s)
        #expect(
            try JSONDecoder().decode([String: String].self, from: json) == s.fields,
            "stored as the flat map runs have always stored")
        #expect(try JSONDecoder().decode(RunSettings.self, from: json) == s)
    }

    @Test func aStoreWrittenBeforeAKeyExistedStillMatches() throws {
        // What a loop's run stored before this version: no top_k, penalties, templates or feedback.
        let old = [
            "strategy": "prand", "budget": "4", "split": "4", "seed": "0", "temperature": "0.8", "max_tokens": "64",
            "policy": "embedded:m.gguf", "reward": "rubric", "loop_stage": "rand iteration 1 sample",
        ]
        let read = try RunSettings(fields: old)
        #expect(
            read.strategy == .prand && read.budget == 4 && read.sampling.maxTokens == 64 && read.sampling.topK == nil)
        // A key added since, left empty, is no difference; one that is set is.
        var now = old
        now["repetition_penalty"] = ""
        #expect(RunSettings.differences(old, now).isEmpty)
        now["top_k"] = "50"
        #expect(RunSettings.differences(old, now) == ["top_k"])
    }

    @Test func anUnreadableStoredSettingIsNamed() {
        #expect { try RunSettings(fields: ["strategy": "best-of-n"]) } throws: {
            "\($0)".contains("unknown strategy \"best-of-n\"")
        }
        #expect { try RunSettings(fields: ["strategy": "prs", "budget": "many"]) } throws: {
            "\($0)".contains("budget \"many\"")
        }
    }

    @Test func policyAndFeedbackSpecsReadAndPrintTheSame() throws {
        for text in ["embedded:m.gguf+a.gguf@0.5", "openai:http://h:1/v1#m,http://g:2/v1#m"] {
            #expect(try PolicySpec.parse(text).description == text)
        }
        #expect(try FeedbackSpec.parse("model:embedded:j.gguf") == .model(.embedded(path: "j.gguf")))
        #expect(throws: SpecError.self) { try FeedbackSpec.parse("critic") }
        let data = try JSONEncoder().encode(PolicySpec.embedded(path: "m.gguf", adapters: ["a.gguf"]))
        #expect(String(decoding: data, as: UTF8.self) == "\"embedded:m.gguf+a.gguf\"", "a policy is stored as its spec")
    }
}
