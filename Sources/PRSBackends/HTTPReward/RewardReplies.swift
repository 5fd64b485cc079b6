import Foundation

/// Reading rewards out of each protocol's reply, as pure functions. Every reply must hold
/// exactly one finite reward per input: anything else is an error, never a silent zero.
///
/// - `/pooling`: `{"data": [{"index", "data"}]}` where `data` is a number, a list of numbers or
///   a list of lists (one row per token). The reward is the last number: the only one for a
///   sequence reward, the last token's value for per-token output.
/// - `/classify`: `{"data": [{"index", "probs": [x]}]}`; a reward model has one output, `x`.
/// - `/score`: `{"data": [{"index", "score"}]}`.
/// - `/get_reward`: `{"rewards": [numbers]}`, in query order; other keys are ignored.
public enum RewardReplies {
    /// What is wrong with a reply, worded to follow "the response is not …: ".
    public struct BadReply: Error, Equatable {
        public var why: String
        public init(_ why: String) { self.why = why }
    }

    /// The rewards in `body`, one per input of a batch of `count`, in input order.
    public static func rewards(
        _ endpoint: HTTPRewardSpec.Endpoint, _ body: Data, count: Int
    ) throws(BadReply) -> [Double] {
        let values: [Double]
        switch endpoint {
        case .pooling:
            let items = try ordered(try decode(DataList<PoolingItem>.self, body).data, count: count)
            values = try items.enumerated().map { (i, item) throws(BadReply) in
                guard let v = item.data.reward else { throw BadReply("data[\(i)].data is empty") }
                return v
            }
        case .classify:
            let items = try ordered(try decode(DataList<ClassifyItem>.self, body).data, count: count)
            values = try items.enumerated().map { (i, item) throws(BadReply) in
                guard item.probs.count == 1 else {
                    throw BadReply(
                        "data[\(i)].probs has \(item.probs.count) values; a reward model has one output (serve it "
                            + "with --task classify and num_labels 1, or use /pooling)"
                    )
                }
                return item.probs[0]
            }
        case .score:
            values = try ordered(try decode(DataList<ScoreItem>.self, body).data, count: count).map(\.score)
        case .getReward:
            values = try decode(RewardsList.self, body).rewards
            guard values.count == count else {
                throw BadReply("it has \(plural(values.count, "reward")) for a batch of \(count)")
            }
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw BadReply("the reward for input \(i) is \(values[i]), not a finite number")
        }
        return values
    }

    static func plural(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    static func decode<T: Decodable>(_ type: T.Type, _ body: Data) throws(BadReply) -> T {
        let d = JSONDecoder()
        // Quoted non-finite numbers decode, so the finiteness check can name them.
        d.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        do {
            return try d.decode(type, from: body)
        } catch {
            let why = describeDecodingError(error)
            let text = String(decoding: body, as: UTF8.self)
            // Python's json writes bare NaN and Infinity, which are not JSON.
            if why == "it is not valid JSON", text.contains("NaN") || text.contains("Infinity") {
                throw BadReply("it is not valid JSON: it holds NaN or Infinity, so the reward is not a finite number")
            }
            throw BadReply(why)
        }
    }

    /// `items` put in input order by their `index`, which must number 0..<count once each.
    static func ordered<Item: Indexed>(_ items: [Item], count: Int) throws(BadReply) -> [Item] {
        guard items.count == count else {
            throw BadReply("it has \(plural(items.count, "result")) for a batch of \(count)")
        }
        var out = [Item?](repeating: nil, count: count)
        for (position, item) in items.enumerated() {
            let i = item.index ?? position
            guard out.indices.contains(i), out[i] == nil else {
                throw BadReply("data[\(position)].index is \(i): the indices must be 0 to \(count - 1), once each")
            }
            out[i] = item
        }
        return out.map { $0! }
    }
}

protocol Indexed: Decodable { var index: Int? { get } }

struct DataList<Item: Decodable>: Decodable { var data: [Item] }

struct PoolingItem: Indexed {
    var index: Int?
    var data: PooledValue
}

struct ClassifyItem: Indexed {
    var index: Int?
    var probs: [Double]
}

struct ScoreItem: Indexed {
    var index: Int?
    var score: Double
}

struct RewardsList: Decodable { var rewards: [Double] }

/// One `/pooling` result: a number, a list of numbers, or a list of lists (a row per token).
enum PooledValue: Decodable, Equatable {
    case number(Double)
    case vector([Double])
    case matrix([[Double]])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let v = try? c.decode(Double.self) {
            self = .number(v)
        } else if let v = try? c.decode([Double].self) {
            self = .vector(v)
        } else if let v = try? c.decode([[Double]].self) {
            self = .matrix(v)
        } else {
            throw DecodingError.dataCorruptedError(
                in: c, debugDescription: "expected a number, a list of numbers or a list of lists of numbers")
        }
    }

    /// The last number: the sequence's reward, or the last token's for per-token output.
    var reward: Double? {
        switch self {
        case .number(let v): v
        case .vector(let v): v.last
        case .matrix(let rows): rows.last?.last
        }
    }
}
