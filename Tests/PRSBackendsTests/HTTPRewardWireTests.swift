import Foundation
import PRSBackends
import PRSCore
import Testing

/// The request bodies and reply parsing of each protocol, without a server.
@Suite struct HTTPRewardWireTests {
    let input = RewardInput(prompt: "Name a colour.", preference: Preference(text: "one word"), response: "Blue.")
    let plain = RewardInput(prompt: "Hi", preference: nil, response: "Hello!")

    /// A spec with the default chat template, ChatML.
    var chatml: HTTPRewardSpec { HTTPRewardSpec(url: "http://h/get_reward", endpoint: .getReward) }

    func spec(_ text: String) throws -> HTTPRewardSpec { try HTTPRewardSpec.parse(text) }

    func json(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func formatsRawTextWithThePreferenceInTheUserTurn() throws {
        #expect(
            try RewardText.text(input, .raw, chatml.template)
                == "Name a colour.\n\nHow I would like the answer: one word\n\nBlue.")
        #expect(try RewardText.text(plain, .raw, chatml.template) == "Hi\n\nHello!")
    }

    @Test func formatsChatWithTheTemplate() throws {
        #expect(
            try RewardText.text(plain, .chat, chatml.template)
                == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n")
        #expect(
            try RewardText.promptText(plain, .chat, chatml.template)
                == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(
            try RewardText.text(plain, .chat, try spec("http://h/classify#template=llama3").template).hasPrefix(
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"))
    }

    @Test func poolingSendsOneConversationAsMessagesOrABatchOfTexts() throws {
        let chat = try spec("http://h/pooling#model=rm")
        #expect(RewardRequests.batchLimit(chat) == 1)
        let body = try json(RewardRequests.body([input], chat))
        #expect(body["model"] as? String == "rm")
        let messages = try #require(body["messages"] as? [[String: String]])
        #expect(
            messages == [
                ["role": "user", "content": "Name a colour.\n\nHow I would like the answer: one word"],
                ["role": "assistant", "content": "Blue."],
            ])
        let raw = try spec("http://h/pooling#format=raw&batch=3")
        #expect(RewardRequests.batchLimit(raw) == 3)
        let texts = try json(RewardRequests.body([input, plain], raw))
        #expect(texts["model"] == nil, "no model is sent unless named")
        #expect(
            texts["input"] as? [String] == [
                "Name a colour.\n\nHow I would like the answer: one word\n\nBlue.", "Hi\n\nHello!",
            ])
    }

    @Test func classifyAsksForTheRawLogit() throws {
        let body = try json(RewardRequests.body([plain], try spec("http://h/classify")))
        #expect(body["use_activation"] as? Bool == false)
        #expect(body["activation"] as? Bool == false)
        #expect(
            body["input"] as? [String] == ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"])
    }

    @Test func scorePairsThePromptWithEachResponse() throws {
        let s = try spec("http://h/score")
        let same = try json(
            RewardRequests.body([plain, RewardInput(prompt: "Hi", preference: nil, response: "Hey")], s))
        #expect(same["text_1"] as? String == "Hi")
        #expect(same["text_2"] as? [String] == ["Hello!", "Hey"])
        let mixed = try json(RewardRequests.body([plain, input], s))
        #expect(mixed["text_1"] as? [String] == ["Hi", "Name a colour.\n\nHow I would like the answer: one word"])
    }

    @Test func getRewardSendsQueriesAndTheirPrompts() throws {
        let body = try json(RewardRequests.body([plain], try spec("http://h/get_reward")))
        #expect(
            body["query"] as? [String] == ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"])
        #expect(body["prompts"] as? [String] == ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"])
    }

    func rewards(
        _ endpoint: HTTPRewardSpec.Endpoint, _ body: String, count: Int
    ) throws(RewardReplies.BadReply) -> [Double] {
        try RewardReplies.rewards(endpoint, Data(body.utf8), count: count)
    }

    func problem(_ endpoint: HTTPRewardSpec.Endpoint, _ body: String, count: Int) -> String {
        do throws(RewardReplies.BadReply) {
            let r = try rewards(endpoint, body, count: count)
            return "no error: \(r)"
        } catch { return error.why }
    }

    @Test func poolingTakesTheLastNumberOfEachShape() throws {
        let body =
            #"{"data":[{"index":0,"data":1.5},{"index":1,"data":[2.5]},{"index":2,"data":[[0.1],[0.2],[3.5]]},{"index":3,"data":[0.5,4]}]}"#
        #expect(try rewards(.pooling, body, count: 4) == [1.5, 2.5, 3.5, 4])
    }

    @Test func putsResultsInIndexOrder() throws {
        #expect(
            try rewards(.score, #"{"data":[{"index":1,"score":0.2},{"index":0,"score":0.9}]}"#, count: 2) == [0.9, 0.2])
        #expect(try rewards(.classify, #"{"data":[{"index":0,"probs":[-1.25],"num_classes":1}]}"#, count: 1) == [-1.25])
        #expect(
            try rewards(.getReward, #"{"rewards":[1,-2.5],"scores":[1,-2.5],"extra_logs":{}}"#, count: 2) == [1, -2.5])
    }

    @Test(arguments: [
        (HTTPRewardSpec.Endpoint.pooling, #"{"object":"list"}"#, 1, "data is missing"),
        (.getReward, #"{"scores":[1]}"#, 1, "rewards is missing"),
        (.pooling, "<html>bad gateway</html>", 1, "it is not valid JSON"),
        (.score, #"{"data":[{"index":0,"score":1}]}"#, 2, "it has 1 result for a batch of 2"),
        (.getReward, #"{"rewards":[1,2,3]}"#, 2, "it has 3 rewards for a batch of 2"),
        (
            .score, #"{"data":[{"index":0,"score":1},{"index":0,"score":2}]}"#, 2,
            "data[1].index is 0: the indices must be 0 to 1, once each"
        ),
        (
            .classify, #"{"data":[{"index":0,"probs":[0.3,0.7]}]}"#, 1,
            "data[0].probs has 2 values; a reward model has one output"
        ),
        (.pooling, #"{"data":[{"index":0,"data":[]}]}"#, 1, "data[0].data is empty"),
        (
            .pooling, #"{"data":[{"index":0,"data":"AAAA"}]}"#, 1,
            "data[0].data: expected a number, a list of numbers or a list of lists of numbers"
        ),
        (.getReward, #"{"rewards":["high"]}"#, 1, "rewards[0]: expected Double"),
        (.getReward, #"{"rewards":[NaN]}"#, 1, "it holds NaN or Infinity"),
        (
            .score, #"{"data":[{"index":0,"score":"Infinity"}]}"#, 1,
            "the reward for input 0 is inf, not a finite number"
        ),
    ])
    func rejectsRepliesWithoutOneFiniteRewardPerInput(
        endpoint: HTTPRewardSpec.Endpoint, body: String, count: Int, message: String
    ) {
        let why = problem(endpoint, body, count: count)
        #expect(why.contains(message), "\(why)")
    }
}
