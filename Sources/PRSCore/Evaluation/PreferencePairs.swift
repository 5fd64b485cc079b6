import Foundation

/// One row of a preference file in TRL's format (`prompt`, `chosen`, `rejected`, as
/// `prs export --format dpo` writes it): strings, or message lists whose last user message is
/// the prompt and whose assistant messages are the answers.
public struct PreferencePair: Sendable, Hashable {
    public var id: String
    public var line: Int
    public var prompt: String
    public var chosen: String
    public var rejected: String
    public var category: String?

    public init(id: String, line: Int, prompt: String, chosen: String, rejected: String, category: String? = nil) {
        self.id = id
        self.line = line
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.category = category
    }
}

public enum PreferencePairParser {
    /// Every good row, and a problem (`file:line: field: problem`) for each bad one.
    public static func parse(_ data: Data, file: String) -> (pairs: [PreferencePair], problems: [PromptProblem]) {
        var pairs: [PreferencePair] = []
        var problems: [PromptProblem] = []
        let text = String(decoding: data, as: UTF8.self)
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty else { continue }
            func problem(_ field: String?, _ message: String) {
                problems.append(PromptProblem(file: file, line: i + 1, field: field, message: message))
            }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                problem(nil, "not a JSON object")
                continue
            }
            func text(_ key: String, role: String) -> String? {
                switch object[key] {
                case let s as String: return s
                case let list as [[String: Any]]:
                    let parts = list.filter { ($0["role"] as? String) == role }.compactMap { $0["content"] as? String }
                    return parts.last
                default: return nil
                }
            }
            guard let prompt = text("prompt", role: "user") else {
                problem("prompt", "missing, or neither a string nor a message list with a user message")
                continue
            }
            guard let chosen = text("chosen", role: "assistant") else {
                problem("chosen", "missing, or neither a string nor a message list with an assistant message")
                continue
            }
            guard let rejected = text("rejected", role: "assistant") else {
                problem("rejected", "missing, or neither a string nor a message list with an assistant message")
                continue
            }
            pairs.append(
                PreferencePair(
                    id: (object["id"] as? String) ?? "line \(i + 1)", line: i + 1, prompt: prompt,
                    chosen: chosen, rejected: rejected, category: object["category"] as? String))
        }
        return (pairs, problems)
    }
}

/// How well a reward orders preference pairs: RewardBench's accuracy (chosen scored above
/// rejected; ties ½) with a 95% bootstrap interval over pairs, per category, and a length
/// baseline (the longer answer wins) on the same pairs.
public struct PairAccuracy: Sendable, Hashable, Encodable {
    public struct Outcome: Sendable, Hashable, Encodable {
        public var id: String
        public var category: String?
        public var chosen: Double?
        public var rejected: Double?
        /// 1 chosen above rejected, ½ a tie, 0 below; nil when either could not be scored.
        public var score: Double?
        /// Pairwise judges: the verdicts' orders disagreed (a position preference, not a judgment).
        public var ordersDisagree: Bool?
        public var error: String?

        public init(
            id: String, category: String?, chosen: Double?, rejected: Double?, score: Double?,
            ordersDisagree: Bool? = nil, error: String? = nil
        ) {
            self.id = id
            self.category = category
            self.chosen = chosen
            self.rejected = rejected
            self.score = score
            self.ordersDisagree = ordersDisagree
            self.error = error
        }

        enum CodingKeys: String, CodingKey {
            case id, category, chosen, rejected, score, error
            case ordersDisagree = "orders_disagree"
        }
    }

    public var pairs: Int
    public var scored: Int
    public var accuracy: MeanInterval?
    public var byCategory: [String: MeanInterval]
    public var lengthBaseline: MeanInterval?
    /// Pairwise judges: the share of pairs whose two orders disagreed.
    public var positionBias: Double?

    enum CodingKeys: String, CodingKey {
        case pairs, scored, accuracy
        case byCategory = "by_category"
        case lengthBaseline = "length_baseline"
        case positionBias = "position_bias"
    }

    public static func compare(_ a: Double, _ b: Double) -> Double { a > b ? 1 : a == b ? 0.5 : 0 }

    public static func compute(
        _ outcomes: [Outcome], pairs: [PreferencePair], bootstrap: Bootstrap = Bootstrap(resamples: 1000, seed: 1)
    ) -> PairAccuracy {
        let scored = outcomes.filter { $0.score != nil }
        var byCategory: [String: [Double]] = [:]
        for o in scored { byCategory[o.category ?? "none", default: []].append(o.score!) }
        let length = pairs.map {
            compare(Double(TextCounts.words($0.chosen).count), Double(TextCounts.words($0.rejected).count))
        }
        let judged = outcomes.compactMap(\.ordersDisagree)
        return PairAccuracy(
            pairs: outcomes.count, scored: scored.count, accuracy: MeanInterval.of(scored.map { $0.score! }, bootstrap),
            byCategory: byCategory.compactMapValues { MeanInterval.of($0, bootstrap) },
            lengthBaseline: MeanInterval.of(length, bootstrap),
            positionBias: judged.isEmpty ? nil : Double(judged.filter { $0 }.count) / Double(judged.count))
    }
}
