import Foundation
import PRSBackends
import PRSCore
import PRSTestSupport
import Testing

@Suite struct RubricRewardTests {
    func item(_ constraints: [String]) throws -> Preference {
        Preference(
            text: "",
            constraints: try constraints.map {
                try Constraint(json: JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)))
            })
    }

    @Test func meanOfConstraintScoresWithABreakdown() async throws {
        let pref = try item([
            #"{"id":"punctuation:no_comma"}"#, #"{"id":"keywords:existence","keywords":["tea","cup"]}"#,
        ])
        let out = try await RubricReward().score([
            RewardInput(prompt: "p", preference: pref, response: "A cup of tea"),
            RewardInput(prompt: "p", preference: pref, response: "Tea, please"),
        ])
        #expect(out[0].value == 1)
        #expect(out[1].value == (0.5 + 0.5) / 2)
        #expect(out[1].components == ["punctuation:no_comma": 0.5, "keywords:existence": 0.5])
        #expect(out[1].constraints?.map(\.follow) == [false, false])
    }

    @Test func looseForgivesAPreamble() async throws {
        let pref = try item([#"{"id":"change_case:english_lowercase"}"#])
        let input = RewardInput(prompt: "p", preference: pref, response: "Here you go:\nall lowercase now")
        #expect(try await RubricReward(mode: .strict).score([input])[0].value! < 1)
        #expect(try await RubricReward(mode: .loose).score([input])[0].value == 1)
    }

    @Test func anItemWithoutConstraintsIsAFailureNotAZero() async throws {
        let r = try await RubricReward().score([RewardInput(prompt: "p", preference: nil, response: "x")])[0]
        #expect(r.value == nil)
        #expect(r.failure?.contains("no constraints") == true)
    }

    @Test func aMixKeepsEachPartAndItsComponents() async throws {
        let pref = try item([#"{"id":"punctuation:no_comma"}"#])
        let mix = WeightedReward([(0.5, "rubric", RubricReward()), (0.5, "scripted", ScriptedReward { _ in 0.2 })])
        #expect(mix.weights == ["rubric": 0.5, "scripted": 0.5])
        let r = try await mix.score([RewardInput(prompt: "p", preference: pref, response: "ok")])[0]
        #expect(r.value == 0.6)
        #expect(r.components == ["rubric": 1, "rubric/punctuation:no_comma": 1, "scripted": 0.2])
        #expect(r.constraints?.count == 1)
    }
}
