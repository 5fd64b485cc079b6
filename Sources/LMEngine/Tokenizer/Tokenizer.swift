import GGUF

/// Why a model's tokenizer cannot be built from its metadata.
public struct TokenizerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// A byte-level BPE tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, meant to
/// give exactly llama.cpp's token ids (`llama_tokenize`).
public struct Tokenizer: Sendable {
    /// ggml's token types (`tokenizer.ggml.token_type`).
    public enum TokenType: Int32, Sendable {
        case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public let tokens: [String]
    public let types: [TokenType]
    public let bos: Int32?
    public let eos: Int32?
    public let addBOS: Bool
    public let addEOS: Bool
    public let preTokenizer: PreTokenizer
    let bpe: BPE
    /// Special tokens matched in raw text, longest first: (text, id, is control or unknown).
    let specials: [(String, Int32, Bool)]
    /// Token ids that end a generation (`eos`, `eot`, and control tokens named as such).
    public let endOfGeneration: Set<Int32>

    public var count: Int { tokens.count }

    /// Builds the tokenizer, checking the metadata a hostile or broken file could get wrong.
    public init(gguf c: GGUFContent) throws {
        guard let model = c["tokenizer.ggml.model"]?.string else { throw TokenizerError("tokenizer.ggml.model is missing") }
        guard model == "gpt2" else {
            throw TokenizerError("tokenizer.ggml.model \"\(model)\" is not supported (prs reads byte-level BPE, \"gpt2\")")
        }
        guard case .strings(let tokens)? = c["tokenizer.ggml.tokens"]?.array else {
            throw TokenizerError("tokenizer.ggml.tokens must be an array of strings, found \(c["tokenizer.ggml.tokens"]?.typeDescription ?? "nothing")")
        }
        guard !tokens.isEmpty, tokens.count < Int(Int32.max) else { throw TokenizerError("tokenizer.ggml.tokens is empty") }
        var types = [TokenType](repeating: .normal, count: tokens.count)
        if let raw = c["tokenizer.ggml.token_type"] {
            guard case .integers(let t, _)? = raw.array else {
                throw TokenizerError("tokenizer.ggml.token_type must be an array of integers, found \(raw.typeDescription)")
            }
            guard t.count == tokens.count else {
                throw TokenizerError("tokenizer.ggml.token_type has \(t.count) entries but tokenizer.ggml.tokens has \(tokens.count)")
            }
            types = t.map { TokenType(rawValue: Int32(truncatingIfNeeded: $0)) ?? .undefined }
        }
        if let scores = c["tokenizer.ggml.scores"] {
            guard case .floats(let s)? = scores.array else {
                throw TokenizerError("tokenizer.ggml.scores must be an array of float32, found \(scores.typeDescription)")
            }
            guard s.count == tokens.count else {
                throw TokenizerError("tokenizer.ggml.scores has \(s.count) entries but tokenizer.ggml.tokens has \(tokens.count)")
            }
        }
        guard case .strings(let merges)? = c["tokenizer.ggml.merges"]?.array else {
            throw TokenizerError("tokenizer.ggml.merges must be an array of strings, found \(c["tokenizer.ggml.merges"]?.typeDescription ?? "nothing")")
        }
        var ranks: [String: Int] = [:]
        ranks.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() {
            guard m.split(separator: " ", omittingEmptySubsequences: false).count == 2 else {
                throw TokenizerError("tokenizer.ggml.merges[\(i)] \"\(m)\" is not two symbols separated by one space")
            }
            if ranks[m] == nil { ranks[m] = i }
        }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() {
            if types[i] == .byte, !Self.isByteToken(t) {
                throw TokenizerError("token \(i) \"\(t)\" has type byte but is not of the form <0xHH>")
            }
            if ids[t] == nil { ids[t] = Int32(i) }
        }
        func tokenID(_ key: String) throws -> Int32? {
            guard let v = c[key] else { return nil }
            guard let i = v.integer else { throw TokenizerError("\(key) must be an integer, found \(v.typeDescription)") }
            guard i >= 0, i < tokens.count else { throw TokenizerError("\(key) is \(i), outside the vocabulary of \(tokens.count) tokens") }
            return Int32(i)
        }
        bos = try tokenID("tokenizer.ggml.bos_token_id")
        eos = try tokenID("tokenizer.ggml.eos_token_id")
        let eot = try tokenID("tokenizer.ggml.eot_token_id")
        addBOS = c["tokenizer.ggml.add_bos_token"]?.bool ?? false
        addEOS = c["tokenizer.ggml.add_eos_token"]?.bool ?? false
        if addBOS, bos == nil { throw TokenizerError("tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id is missing") }
        let preName = c["tokenizer.ggml.pre"]?.string ?? "default"
        guard let pre = PreTokenizer.named(preName) else {
            throw TokenizerError("tokenizer.ggml.pre \"\(preName)\" is not supported; supported: smollm, gpt2, llama3 (llama-bpe), qwen2 and their aliases")
        }
        self.tokens = tokens
        self.types = types
        preTokenizer = pre
        bpe = BPE(ranks: ranks, ids: ids, ignoreMerges: pre == .llama3)
        specials = tokens.indices
            .filter { [.control, .userDefined, .unknown].contains(types[$0]) && !tokens[$0].isEmpty }
            .map { (tokens[$0], Int32($0), types[$0] != .userDefined) }
            .sorted { $0.0.utf8.count > $1.0.utf8.count || ($0.0.utf8.count == $1.0.utf8.count && $0.1 < $1.1) }
        var ends = Set([eos, eot].compactMap { $0 })
        for (i, t) in tokens.enumerated() where types[i] == .control && ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"].contains(t) {
            ends.insert(Int32(i))
        }
        endOfGeneration = ends
    }

    static func isByteToken(_ t: String) -> Bool {
        let u = Array(t.utf8)
        guard u.count == 6, t.hasPrefix("<0x"), t.hasSuffix(">") else { return false }
        return u[3...4].allSatisfy { (48...57).contains($0) || (65...70).contains($0) || (97...102).contains($0) }
    }

    /// Token ids of `text` as llama.cpp's `llama_tokenize`: with `addSpecial`, BOS (and EOS)
    /// as the metadata asks; with `parseSpecial`, control tokens written in the text are one token each.
    public func encode(_ text: String, addSpecial: Bool = false, parseSpecial: Bool = true) -> [Int32] {
        var out: [Int32] = []
        if addSpecial, addBOS, let bos { out.append(bos) }
        for fragment in partition(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .special(let id): out.append(id)
            case .text(let t):
                for word in preTokenizer.split(t) { bpe.encode(word: Array(word.utf8), into: &out) }
            }
        }
        if addSpecial, addEOS, let eos { out.append(eos) }
        return out
    }

    enum Fragment { case text(String), special(Int32) }

    /// Splits raw text at special tokens, longest first (user-defined ones always; control
    /// ones only with `parseSpecial`).
    func partition(_ text: String, parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = [.text(text)]
        for (special, id, isControl) in specials where parseSpecial || !isControl {
            var next: [Fragment] = []
            for f in fragments {
                guard case .text(let t) = f, t.utf8.count >= special.utf8.count, t.contains(special) else { next.append(f); continue }
                var rest = t[...]
                while let r = rest.range(of: special) {
                    if r.lowerBound > rest.startIndex { next.append(.text(String(rest[..<r.lowerBound]))) }
                    next.append(.special(id))
                    rest = rest[r.upperBound...]
                }
                if !rest.isEmpty { next.append(.text(String(rest))) }
            }
            fragments = next
        }
        return fragments
    }

    /// The bytes of one token: byte-level tokens decoded, `<0xHH>` byte tokens as their byte,
    /// control tokens as their text only when `special`.
    public func bytes(of id: Int32, special: Bool = false) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { return [] }
        let t = tokens[Int(id)]
        switch types[Int(id)] {
        case .control, .unknown: return special ? Array(t.utf8) : []
        case .userDefined: return Array(t.utf8)
        case .byte:
            return UInt8(t.dropFirst(3).dropLast(), radix: 16).map { [$0] } ?? []
        default:
            return ByteLevel.decode(t) ?? Array(t.utf8)
        }
    }

    /// The text of `ids`, invalid UTF-8 repaired.
    public func decode(_ ids: [Int32], special: Bool = false) -> String {
        String(decoding: ids.flatMap { bytes(of: $0, special: special) }, as: UTF8.self)
    }
}
