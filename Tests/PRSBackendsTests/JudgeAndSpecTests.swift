import Foundation
import PRSBackends
import PRSCore
import PRSTestSupport
import Testing

@Suite struct JudgeParsingTests {
    @Test(arguments: [
        ("7", 7.0), ("Rating: 4", 4), ("The response is 3.", 3), ("**8**/9", 8), (" 2\n", 2),
    ])
    func readsTheFirstStandaloneDigit(text: String, expected: Double) {
        #expect(JudgeParsing.firstDigit(text) == expected)
    }

    @Test(arguments: ["10", "3.5 stars", "0", "excellent", "", "1234"])
    func rejectsWhatIsNotARating(text: String) {
        #expect(JudgeParsing.firstDigit(text) == nil)
    }

    @Test func weighsDigitsByProbability() throws {
        let lp = [
            TokenLogprob(token: "The", logprob: -0.1, top: []),
            TokenLogprob(token: " response", logprob: -0.1, top: []),
            TokenLogprob(
                token: " 3", logprob: log(0.5),
                top: [
                    .init(token: " 3", logprob: log(0.5)), .init(token: "5", logprob: log(0.25)),
                    .init(token: " 9", logprob: log(0.25)), .init(token: " good", logprob: log(0.1)),
                ]),
        ]
        let r = try #require(JudgeParsing.expectedRating(lp))
        #expect(abs(r - (3 * 0.5 + 5 * 0.25 + 9 * 0.25)) < 1e-9)
    }

    @Test func ignoresDigitsInsideNumbers() {
        let lp = [TokenLogprob(token: "1", logprob: 0, top: []), TokenLogprob(token: "0", logprob: 0, top: [])]
        #expect(JudgeParsing.expectedRating(lp) == nil)
    }

    @Test func fallsBackToTheFirstPositionWithDigitAlternatives() throws {
        let lp = [
            TokenLogprob(
                token: "Great", logprob: log(0.9),
                top: [
                    .init(token: "Great", logprob: log(0.9)), .init(token: "2", logprob: log(0.05)),
                    .init(token: "4", logprob: log(0.05)),
                ]),
            TokenLogprob(token: "!", logprob: 0, top: [.init(token: "7", logprob: log(0.5))]),
        ]
        #expect(try #require(JudgeParsing.expectedRating(lp)) == 3)
        #expect(JudgeParsing.expectedRating([TokenLogprob(token: "Great", logprob: 0, top: [])]) == nil)
    }

    @Test func recordsAFailureAfterRetriesNeverAZero() async throws {
        let gen = ScriptedGenerator { _, _, _ in "I like it." }
        let judge = JudgeReward(generator: gen, attempts: 3)
        let out = try await judge.score([RewardInput(prompt: "q", preference: nil, response: "a")])
        #expect(out[0].value == nil)
        #expect(out[0].failure?.contains("3 attempts") == true)
        // First the forced position (a backend without a distribution gives none), then three free replies.
        #expect(gen.requests.count == 4)
        #expect(gen.requests[0].choices == (1...9).map(String.init) && gen.requests[0].prefill == "Rating: ")
        #expect(gen.requests[1].parameters.temperature == 0 && gen.requests[1].choices == nil)
        #expect(gen.requests[2].parameters.temperature == 0.7)
    }

    @Test func mapsARatingToZeroOne() async throws {
        let judge = JudgeReward(generator: ScriptedGenerator { _, _, _ in "9" })
        let out = try await judge.score([RewardInput(prompt: "q", preference: Preference(text: "short"), response: "a")]
        )
        #expect(out[0].value == 1)
        #expect(out[0].components == ["judge": 1])
    }
}

@Suite struct SpecTests {
    @Test func parsesPolicies() throws {
        guard case .openAI(let e) = try PolicySpec.parse("openai:http://a:1/v1#m,http://b:2/v1/") else {
            Issue.record("not openai")
            return
        }
        #expect(e == [.init(baseURL: "http://a:1/v1", model: "m"), .init(baseURL: "http://b:2/v1", model: "m")])
        #expect(try PolicySpec.parse("embedded:x.gguf") == .embedded(path: "x.gguf"))
        #expect(throws: SpecError.self) { try PolicySpec.parse("openai:ftp://x") }
        #expect(throws: SpecError.self) { try PolicySpec.parse("llama") }
    }

    @Test func parsesRewards() throws {
        #expect(try RewardSpec.parse("judge") == .judge(nil))
        #expect(try RewardSpec.parse("rubric") == .rubric(.strict))
        #expect(try RewardSpec.parse("rubric:loose") == .rubric(.loose))
        #expect(try RewardSpec.parse("http:http://h:1/score") == .http("http://h:1/score"))
        let mix = try RewardSpec.parse("0.7*rubric+0.3*judge:openai:http://h:1/v1")
        guard case .mix(let parts) = mix else {
            Issue.record("not a mix")
            return
        }
        #expect(parts.map(\.weight) == [0.7, 0.3])
        #expect(parts[1].1 == .judge(.openAI([.init(baseURL: "http://h:1/v1", model: nil)])))
        #expect(throws: SpecError.self) { try RewardSpec.parse("bleu") }
    }

    @Test func mixesRewardsAndKeepsComponents() async throws {
        let a = ScriptedReward { _ in 1 }
        let b = ScriptedReward { $0 == "bad" ? nil : 0.5 }
        let mix = WeightedReward([(0.5, "a", a), (2, "b", b)])
        let out = try await mix.score([
            RewardInput(prompt: "", preference: nil, response: "ok"),
            RewardInput(prompt: "", preference: nil, response: "bad"),
        ])
        #expect(out[0].value == 1.5)
        #expect(out[1].value == nil)
        #expect(out[1].failure?.contains("b:") == true)
    }
}
