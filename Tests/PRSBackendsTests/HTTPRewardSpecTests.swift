import PRSBackends
import PRSCore
import Testing

/// Reading `http:URL#options`.
@Suite struct HTTPRewardSpecTests {
    @Test func readsTheProtocolFromThePathAndTheOptionsFromTheFragment() throws {
        let s = try HTTPRewardSpec.parse("http://h:8000/pooling#model=Skywork-RM&format=raw&batch=8&concurrency=2")
        #expect(s.url == "http://h:8000/pooling")
        #expect(s.endpoint == .pooling)
        #expect(s.model == "Skywork-RM")
        #expect(s.format == .raw)
        #expect(s.batch == 8 && s.concurrency == 2)
    }

    @Test func hasDefaults() throws {
        let s = try HTTPRewardSpec.parse("https://rm.example/v1/classify/")
        #expect(s.url == "https://rm.example/v1/classify")
        #expect(s.endpoint == .classify)
        #expect(s.model == nil && s.format == .chat && s.template.name == "chatml")
        #expect(s.batch == 16 && s.concurrency == 4)
        #expect(try HTTPRewardSpec.parse("http://h:5000/get_reward").endpoint == .getReward)
        #expect(try HTTPRewardSpec.parse("http://h/v1/score").endpoint == .score)
    }

    @Test func takesABareFragmentAsTheModelAndDecodesPercentEscapes() throws {
        #expect(try HTTPRewardSpec.parse("http://h:1/score#BAAI/bge-reranker").model == "BAAI/bge-reranker")
        #expect(try HTTPRewardSpec.parse("http://h:1/pooling#model=a%20b").model == "a b")
    }

    @Test func choosesAChatTemplateByName() throws {
        #expect(try HTTPRewardSpec.parse("http://h:1/get_reward#template=llama3").template.name == "llama3")
    }

    @Test func namesWhatChangesTheRewardsInItsIdentity() throws {
        #expect(
            try HTTPRewardSpec.parse("http://h:8000/pooling#model=X&batch=4").identity
                == "http[pooling http://h:8000/pooling model=X format=chat]")
        #expect(
            try HTTPRewardSpec.parse("http://h:5000/get_reward").identity
                == "http[get_reward http://h:5000/get_reward format=chat template=chatml]")
        #expect(
            try HTTPRewardSpec.parse("http://h:1/classify#format=raw").identity
                == "http[classify http://h:1/classify format=raw]")
        #expect(try HTTPRewardSpec.parse("http://h:1/score#m").identity == "http[score http://h:1/score model=m]")
    }

    @Test(arguments: [
        ("http://h:1/pooling#modle=x", #"unknown option "modle"; known: model, format, template, batch, concurrency"#),
        ("http://h:1/pooling#batch=0", "batch=0: the batch size must be a whole number of at least 1"),
        ("http://h:1/pooling#concurrency=two", "concurrency=two"),
        ("http://h:1/pooling#format=xml", "format=xml: expected chat or raw"),
        ("http://h:1/classify#template=alpaca", "template=alpaca: expected one of chatml, llama3, mistral, gemma"),
        ("http://h:1/pooling#batch=2&batch=3", "option batch is given twice"),
        ("http://h:1/pooling#format=raw&x", #""x" is not option=value"#),
        ("http://h:1/pooling#model=", "model= needs a name"),
        ("http://h:1/score#format=chat", "format and template do not apply to /score"),
        ("http://h:1/classify#format=raw&template=llama3", "template applies only with format=chat"),
        ("http://h:1/pooling#template=llama3", "template does not apply to /pooling with format=chat"),
        ("http://h:8000/v1", "the URL's path must end in /pooling, /classify, /score, /get_reward"),
        ("http://h:8000", "the URL's path must end in"),
        ("h:8000/pooling", "is not an http:// or https:// URL"),
    ])
    func rejectsABadSpecSayingWhatIsWrong(spec: String, message: String) {
        let error = #expect(throws: SpecError.self) { try HTTPRewardSpec.parse(spec) }
        let text = error?.description ?? ""
        #expect(text.contains(message), "\(text)")
        #expect(text.hasPrefix("reward http:\(spec): "), "\(text)")
    }

    @Test func rewardSpecChecksTheHTTPSpecWhenParsed() throws {
        #expect(
            try RewardSpec.read("http:http://h:1/pooling#model=m&format=raw")
                == .http("http://h:1/pooling#model=m&format=raw"))
        #expect(throws: SpecError.self) { try RewardSpec.read("http:http://h:1/pooling#bogus=1") }
        #expect(throws: SpecError.self) { try RewardSpec.read("0.5*judge+0.5*http:http://h:1/v1") }
    }
}
