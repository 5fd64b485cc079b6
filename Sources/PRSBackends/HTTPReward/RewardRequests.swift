import Foundation
import PRSCore

/// The JSON bodies of each protocol's request, as pure functions of a batch.
///
/// - `/pooling` (vLLM): `{"model"?, "input": [texts]}` with `format=raw`; with `format=chat`,
///   `{"model"?, "messages": [user, assistant]}`, which holds one conversation, so each chat
///   request carries one input and the server applies the model's own chat template.
/// - `/classify` (vLLM): `{"model"?, "input": [texts], "use_activation": false,
///   "activation": false}`: the raw logit, not a sigmoid of it; `activation` is the older
///   vLLM name, and vLLM ignores the field it does not know.
/// - `/score` (vLLM): `{"model"?, "text_1": prompt, "text_2": [responses]}`; a batch whose
///   prompts differ sends `text_1` as a list, one per response (vLLM pairs them in order).
/// - `/get_reward` (OpenRLHF): `{"query": [prompt + response texts], "prompts": [prompt texts]}`;
///   `prompts` is read by newer OpenRLHF servers and ignored by older ones.
public enum RewardRequests {
    /// How many inputs one request may carry.
    public static func batchLimit(_ spec: HTTPRewardSpec) -> Int {
        spec.endpoint == .pooling && spec.format == .chat ? 1 : spec.batch
    }

    /// The body of one request for `batch`, which holds at most `batchLimit(spec)` inputs.
    public static func body(_ batch: [RewardInput], _ spec: HTTPRewardSpec) throws -> Data {
        let texts = { try batch.map { try RewardText.text($0, spec.format, spec.template) } }
        switch spec.endpoint {
        case .pooling where spec.format == .chat:
            precondition(batch.count == 1, "a /pooling chat request holds one conversation")
            return try encode(PoolingChatBody(model: spec.model, messages: RewardText.messages(batch[0])))
        case .pooling:
            return try encode(TextsBody(model: spec.model, input: try texts()))
        case .classify:
            return try encode(ClassifyBody(model: spec.model, input: try texts()))
        case .score:
            let prompts = batch.map(RewardText.userTurn)
            let first: OneOrMany = Set(prompts).count == 1 ? .one(prompts[0]) : .many(prompts)
            return try encode(ScoreBody(model: spec.model, text_1: first, text_2: batch.map(\.response)))
        case .getReward:
            return try encode(
                GetRewardBody(
                    query: try texts(),
                    prompts: try batch.map { try RewardText.promptText($0, spec.format, spec.template) }))
        }
    }

    /// A short account of a request for messages: `4 inputs, model m`.
    static func summary(count: Int, _ spec: HTTPRewardSpec) -> String {
        "\(count) input\(count == 1 ? "" : "s"), model \(spec.model ?? "default"), format "
            + "\(spec.endpoint == .score ? "pair" : spec.format.rawValue)"
    }

    static func encode(_ body: some Encodable) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try e.encode(body)
    }
}

struct TextsBody: Encodable {
    var model: String?
    var input: [String]
}

struct PoolingChatBody: Encodable {
    var model: String?
    var messages: [ChatMessage]
}

struct ClassifyBody: Encodable {
    var model: String?
    var input: [String]
    var use_activation = false
    var activation = false
}

struct ScoreBody: Encodable {
    var model: String?
    var text_1: OneOrMany
    var text_2: [String]
}

struct GetRewardBody: Encodable {
    var query: [String]
    var prompts: [String]
}

/// A string, or a list of strings, as vLLM's `/score` takes for `text_1`.
enum OneOrMany: Encodable {
    case one(String)
    case many([String])

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .one(let s): try c.encode(s)
        case .many(let list): try c.encode(list)
        }
    }
}
