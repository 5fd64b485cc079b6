import Foundation
import PRSCore

/// An LLM-as-judge reward: asks a generator to rate a response for helpfulness and
/// adherence to the preference on a 1–9 scale (one digit, so a rating is one token).
///
/// The rating is read at a forced position: the judge's reply is started for it (`prefill`,
/// "Rating: ") and its next token is restricted to the digits 1–9 (`GenerationRequest.choices`:
/// the embedded engine's allowed-token set, an OpenAI-compatible server's `logit_bias`); the
/// rating is the expected digit under the distribution there, so a judgment cannot fail to parse.
/// With a backend that returns no distribution, the judge falls back to a free reply: the
/// probability-weighted digit where the reply has one in its log-probabilities, else the digit in
/// the text. The reward is the rating mapped to [0, 1] as `(rating − 1) / 8`. An unparseable free
/// judgment is asked again (sampled, with a new seed) and, after `attempts` tries, recorded as a
/// failure, never as a zero.
///
/// A template of one's own keeps `{prompt}`, `{preference}` and `{response}` and asks for a single
/// digit from 1 to 9; the prefill is what the judge's reply starts with before the digit.
public struct JudgeReward: RewardModel {
    public let generator: any TextGenerator
    public let attempts: Int
    public let concurrency: Int
    public let template: String
    public var identity: String { "judge[\(generator.identity)]" }

    public static let defaultTemplate = """
        Rate how well the response answers the request and follows the user's preference.

        Request:
        {prompt}

        The user's preference:
        {preference}

        Response:
        {response}

        Rate the response from 1 (poor) to 9 (excellent). Reply with the single digit only.
        """

    /// The start of the judge's reply, before the rating's digit (nil: no forced position).
    public let prefill: String?
    public static let digits = (1...9).map(String.init)

    public init(
        generator: any TextGenerator, attempts: Int = 3, concurrency: Int = 4, template: String = Self.defaultTemplate,
        prefill: String? = "Rating: "
    ) {
        self.generator = generator
        self.prefill = prefill
        self.attempts = max(1, attempts)
        self.concurrency = max(1, concurrency)
        self.template = template
    }

    public func score(_ inputs: [RewardInput]) async throws -> [RewardResult] {
        try await concurrentMap(inputs.count, limit: concurrency) { i in try await judge(inputs[i]) }
    }

    func judge(_ input: RewardInput) async throws -> RewardResult {
        let pref = input.preference?.text.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        let text = PromptTemplates.render(
            template,
            [
                "prompt": input.prompt, "preference": pref.isEmpty ? "(no particular preference)" : pref,
                "response": input.response,
            ])
        if let prefill, let rating = try await forced(text, prefill: prefill) {
            let value = (rating - 1) / 8
            return RewardResult(value: value, components: ["judge": value])
        }
        var lastReply = ""
        for attempt in 0..<attempts {
            // The first try is greedy; later ones sample so a stuck judgment can change.
            let params = SamplingParameters(
                temperature: attempt == 0 ? 0 : 0.7, maxTokens: 12, seed: UInt64(attempt), logprobs: true,
                topLogprobs: 20)
            let out = try await generator.generate(GenerationRequest(messages: [.user(text)], n: 1, parameters: params))
            guard let g = out.first else { continue }
            lastReply = g.text
            if let rating = JudgeParsing.rating(text: g.text, logprobs: g.logprobs) {
                let value = (rating - 1) / 8
                return RewardResult(value: value, components: ["judge": value])
            }
        }
        return RewardResult(
            failure:
                "the judge gave no rating from 1 to 9 in \(attempts) attempts; last reply: \"\(lastReply.prefix(120))\""
        )
    }
}

extension JudgeReward {
    /// The expected rating at the forced position, or nil when the backend gave no distribution there.
    func forced(_ text: String, prefill: String) async throws -> Double? {
        let request = GenerationRequest(
            messages: [.user(text)], n: 1,
            parameters: SamplingParameters(
                temperature: 0, maxTokens: 1, seed: 0, logprobs: true, topLogprobs: Self.digits.count),
            prefill: prefill, choices: Self.digits)
        let out = try await generator.generate(request)
        guard let first = out.first?.logprobs?.first else { return nil }
        return JudgeParsing.weightedDigit(first.top) ?? JudgeParsing.digit(first.token).map(Double.init)
    }
}

/// Reading a 1–9 rating out of a judge's reply.
public enum JudgeParsing {
    /// The expected rating from log-probabilities when they show one, else the first
    /// standalone digit 1–9 in the text; `nil` when neither has a rating.
    public static func rating(text: String, logprobs: [TokenLogprob]?) -> Double? {
        if let lp = logprobs, let r = expectedRating(lp) { return r }
        return firstDigit(text)
    }

    /// The first standalone digit 1–9 (not part of a longer number or a decimal).
    public static func firstDigit(_ text: String) -> Double? {
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            if chars[i].isASCII, chars[i].isNumber {
                var j = i
                while j < chars.count, chars[j].isASCII, chars[j].isNumber { j += 1 }
                let decimal = j < chars.count - 1 && chars[j] == "." && chars[j + 1].isNumber
                if j - i == 1, !decimal, let d = chars[i].wholeNumberValue, (1...9).contains(d) { return Double(d) }
                if decimal {  // skip the fraction too: "3.5" is not a rating of 5
                    j += 1
                    while j < chars.count, chars[j].isASCII, chars[j].isNumber { j += 1 }
                }
                i = j
            } else {
                i += 1
            }
        }
        return nil
    }

    static func digit(_ token: String) -> Int? {
        let t = token.trimmingCharacters(in: .whitespacesAndNewlines)
        guard t.count == 1, let d = t.first?.wholeNumberValue, (1...9).contains(d) else { return nil }
        return d
    }

    /// The rating at the first generated token that is a digit 1–9 (and not part of a longer
    /// number): the mean digit weighted by the probabilities of the digit alternatives there.
    /// Small judges often write "The response is 3."; the rating is where the digit is.
    /// When no generated token is a digit, the first position whose alternatives include
    /// digits is used instead: the expected rating given that the reply had been a rating
    /// there (as G-Eval scores with the digit distribution).
    public static func expectedRating(_ logprobs: [TokenLogprob]) -> Double? {
        for (k, entry) in logprobs.enumerated() {
            guard let chosen = digit(entry.token) else { continue }
            if k + 1 < logprobs.count, logprobs[k + 1].token.first?.isNumber == true { continue }
            if k > 0, logprobs[k - 1].token.last?.isNumber == true { continue }
            return weightedDigit(entry.top) ?? Double(chosen)
        }
        for entry in logprobs {
            if let r = weightedDigit(entry.top) { return r }
        }
        return nil
    }

    static func weightedDigit(_ alternatives: [TokenLogprob.Alternative]) -> Double? {
        var mass: [Int: Double] = [:]
        for alt in alternatives { if let d = digit(alt.token) { mass[d, default: 0] += exp(alt.logprob) } }
        let total = mass.values.reduce(0, +)
        guard total > 0 else { return nil }
        return mass.reduce(0) { $0 + Double($1.key) * $1.value } / total
    }
}
