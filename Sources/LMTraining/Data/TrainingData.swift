import Foundation
import LMEngine

/// A token sequence with the positions whose token the loss scores (the answer's tokens).
public struct ScoredSequence: Sendable, Hashable {
    public var tokens: [Int32]
    /// `scored[i]`: token i is predicted and counted (never token 0).
    public var scored: [Bool]
    public var scoredCount: Int { scored.reduce(0) { $0 + ($1 ? 1 : 0) } }
}

/// One training example: an SFT sequence, or a preference pair sharing a prompt.
public struct TrainingExample: Sendable, Hashable {
    public enum Body: Sendable, Hashable {
        case sft(ScoredSequence)
        case preference(chosen: ScoredSequence, rejected: ScoredSequence)
    }
    public var body: Body
    public var weight: Double
    /// Where it came from (`file:line`), for error messages.
    public var source: String

    public var tokenCount: Int {
        switch body {
        case .sft(let s): s.tokens.count
        case .preference(let c, let r): c.tokens.count + r.tokens.count
        }
    }
}

/// A conversation or prompt/completion before tokenization.
public enum RawExample: Sendable, Hashable {
    /// Chat messages; the assistant turns are the answer.
    case conversation([TemplateMessage])
    /// Plain text prompt and completion (TRL's standard, not conversational, format).
    case text(prompt: String, completion: String)
    /// A preference pair: prompt messages, and the chosen and rejected assistant turns.
    case preference(prompt: [TemplateMessage], chosen: [TemplateMessage], rejected: [TemplateMessage])
    /// The same with plain text.
    case textPreference(prompt: String, chosen: String, rejected: String)
}

/// Reads TRL's dataset formats from JSONL: conversational language modeling (`messages`),
/// prompt-completion (`prompt`/`completion`, strings or message lists) and preference
/// (`prompt`, `chosen`, `rejected`). An optional numeric `weight` scales an example's loss.
/// Other records (such as prs's `refine.jsonl`) go through `convert`, which returns nil for
/// records it does not know.
public struct TrainingDataReader: Sendable {
    public typealias Converter = @Sendable ([String: Any], _ location: String) throws -> RawExample?
    public var convert: Converter?

    public init(convert: Converter? = nil) { self.convert = convert }

    /// Every line of `path` parsed; the first bad line is an error `file:line: field: problem`.
    public func read(_ path: String) throws -> [(raw: RawExample, weight: Double, source: String)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError("\(path): cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw TrainingError("\(path): not UTF-8 text") }
        var out: [(RawExample, Double, String)] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let loc = "\(path):\(i + 1)"
            guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
                throw TrainingError("\(loc): not a JSON object")
            }
            var weight = 1.0
            if let w = object["weight"] {
                guard let n = w as? NSNumber, !(w is Bool), n.doubleValue.isFinite, n.doubleValue >= 0 else {
                    throw TrainingError("\(loc): weight: must be a non-negative number")
                }
                weight = n.doubleValue
            }
            out.append((try parse(object, loc), weight, loc))
        }
        guard !out.isEmpty else { throw TrainingError("\(path): no examples") }
        return out
    }

    func parse(_ o: [String: Any], _ loc: String) throws -> RawExample {
        if let c = convert, let r = try c(o, loc) { return r }
        if o["messages"] != nil {
            let m = try Self.messages(o["messages"], "messages", loc)
            guard m.contains(where: { $0.role == "assistant" }) else {
                throw TrainingError("\(loc): messages: no assistant turn to train on")
            }
            return .conversation(m)
        }
        if o["chosen"] != nil || o["rejected"] != nil {
            guard o["chosen"] != nil else { throw TrainingError("\(loc): chosen: missing") }
            guard o["rejected"] != nil else { throw TrainingError("\(loc): rejected: missing") }
            guard let prompt = o["prompt"] else {
                throw TrainingError("\(loc): prompt: missing (prs trains on explicit-prompt preference data)")
            }
            if let p = prompt as? String {
                guard let c = o["chosen"] as? String else {
                    throw TrainingError("\(loc): chosen: must be a string when prompt is")
                }
                guard let r = o["rejected"] as? String else {
                    throw TrainingError("\(loc): rejected: must be a string when prompt is")
                }
                return .textPreference(prompt: p, chosen: c, rejected: r)
            }
            let p = try Self.messages(prompt, "prompt", loc)
            let c = try Self.messages(o["chosen"], "chosen", loc)
            let r = try Self.messages(o["rejected"], "rejected", loc)
            for (name, turns) in [("chosen", c), ("rejected", r)]
            where turns.isEmpty || turns.contains(where: { $0.role != "assistant" }) {
                throw TrainingError("\(loc): \(name): must be assistant messages")
            }
            return .preference(prompt: p, chosen: c, rejected: r)
        }
        if let prompt = o["prompt"] {
            guard let completion = o["completion"] else { throw TrainingError("\(loc): completion: missing") }
            if let p = prompt as? String {
                guard let c = completion as? String else {
                    throw TrainingError("\(loc): completion: must be a string when prompt is")
                }
                return .text(prompt: p, completion: c)
            }
            let p = try Self.messages(prompt, "prompt", loc)
            let c = try Self.messages(completion, "completion", loc)
            guard !c.isEmpty, c.allSatisfy({ $0.role == "assistant" }) else {
                throw TrainingError("\(loc): completion: must be assistant messages")
            }
            return .conversation(p + c)
        }
        throw TrainingError("\(loc): no messages, prompt/completion or prompt/chosen/rejected fields (TRL's formats)")
    }

    static func messages(_ value: Any?, _ field: String, _ loc: String) throws -> [TemplateMessage] {
        guard let list = value as? [Any] else { throw TrainingError("\(loc): \(field): must be a list of messages") }
        return try list.enumerated().map { i, m in
            guard let m = m as? [String: Any] else {
                throw TrainingError("\(loc): \(field)[\(i)]: must be an object with role and content")
            }
            guard let role = m["role"] as? String, ["system", "user", "assistant"].contains(role) else {
                throw TrainingError("\(loc): \(field)[\(i)].role: must be system, user or assistant")
            }
            guard let content = m["content"] as? String else {
                throw TrainingError("\(loc): \(field)[\(i)].content: must be a string")
            }
            return TemplateMessage(role: role, content: content)
        }
    }
}

/// Turns raw examples into token sequences as the engine renders them: the model's chat
/// template, special tokens parsed, BOS as the model asks; the loss on each assistant turn's
/// text and its end-of-turn token (or, `allTokens`, on every token after the first).
public struct ExampleTokenizer: Sendable {
    public let template: ChatTemplate
    public let tokenizer: Tokenizer
    public var maxLength: Int
    public var allTokens = false

    public init(template: ChatTemplate, tokenizer: Tokenizer, maxLength: Int) {
        self.template = template
        self.tokenizer = tokenizer
        self.maxLength = maxLength
    }

    public func example(_ raw: RawExample, weight: Double, source: String) throws -> TrainingExample {
        switch raw {
        case .conversation(let m):
            return TrainingExample(body: .sft(try conversation(m, source)), weight: weight, source: source)
        case .text(let p, let c):
            return TrainingExample(body: .sft(try text(p, c, source)), weight: weight, source: source)
        case .preference(let p, let c, let r):
            return TrainingExample(
                body: .preference(chosen: try conversation(p + c, source), rejected: try conversation(p + r, source)),
                weight: weight, source: source)
        case .textPreference(let p, let c, let r):
            return TrainingExample(
                body: .preference(chosen: try text(p, c, source), rejected: try text(p, r, source)),
                weight: weight, source: source)
        }
    }

    /// The rendered conversation, cut into alternating unscored and scored (assistant) text.
    func conversation(_ messages: [TemplateMessage], _ source: String) throws -> ScoredSequence {
        var pieces: [(String, Bool)] = []
        var done = ""
        for (i, m) in messages.enumerated() where m.role == "assistant" {
            let before = try template.render(Array(messages[..<i]), addGenerationPrompt: true)
            let through = try template.render(Array(messages[...i]), addGenerationPrompt: false)
            guard before.hasPrefix(done), through.hasPrefix(before) else {
                throw TrainingError(
                    "\(source): the \(template.name) template does not render this conversation turn by turn")
            }
            pieces.append((String(before.dropFirst(done.count)), false))
            pieces.append((String(through.dropFirst(before.count)), true))
            done = through
        }
        let whole = try template.render(messages, addGenerationPrompt: false)
        if whole.count > done.count { pieces.append((String(whole.dropFirst(done.count)), false)) }
        return try sequence(pieces, source)
    }

    /// Plain text: the prompt, then the completion and the end-of-sequence token, scored.
    func text(_ prompt: String, _ completion: String, _ source: String) throws -> ScoredSequence {
        let eos = tokenizer.eos.map { tokenizer.tokens[Int($0)] } ?? ""
        return try sequence([(prompt, false), (completion + eos, true)], source)
    }

    func sequence(_ pieces: [(String, Bool)], _ source: String) throws -> ScoredSequence {
        var tokens: [Int32] = []
        var scored: [Bool] = []
        let bosText = tokenizer.bos.map { tokenizer.tokens[Int($0)] }
        let first = pieces.first?.0 ?? ""
        if tokenizer.addBOS, let bos = tokenizer.bos, !(bosText.map { !$0.isEmpty && first.hasPrefix($0) } ?? false) {
            tokens.append(bos)
            scored.append(false)
        }
        let ends = tokenizer.endOfGeneration
        for (text, isAnswer) in pieces where !text.isEmpty {
            let ids = tokenizer.encode(text, addSpecial: false, parseSpecial: true)
            // An answer's trailing text after its end-of-turn token (a newline) is not trained on.
            let lastEnd = isAnswer ? (ids.lastIndex(where: { ends.contains($0) }) ?? ids.count - 1) : -1
            for (j, id) in ids.enumerated() {
                tokens.append(id)
                scored.append(allTokens || (isAnswer && j <= lastEnd))
            }
        }
        if !scored.isEmpty { scored[0] = false }
        if tokens.count > maxLength {
            tokens.removeLast(tokens.count - maxLength)
            scored.removeLast(scored.count - maxLength)
        }
        guard scored.contains(true) else {
            throw TrainingError("\(source): no answer token within the first \(maxLength) tokens (--max-length)")
        }
        return ScoredSequence(tokens: tokens, scored: scored)
    }
}
