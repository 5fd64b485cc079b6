import GGUF

/// Why a model's tokenizer cannot be built from its metadata.
public struct TokenizerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// A tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata, meant to give exactly
/// llama.cpp's token ids (`llama_tokenize`): byte-level BPE (`gpt2`: SmolLM2, Qwen2, Llama 3)
/// or SentencePiece (`llama`: Gemma, Llama 2, Mistral, TinyLlama).
public struct Tokenizer: Sendable {
    /// ggml's token types (`tokenizer.ggml.token_type`).
    public enum TokenType: Int32, Sendable {
        case undefined = 0
        case normal = 1
        case unknown = 2
        case control = 3
        case userDefined = 4
        case unused = 5
        case byte = 6
    }

    public let tokens: [String]
    public let types: [TokenType]
    public let bos: Int32?
    public let eos: Int32?
    /// The padding and unknown tokens the file names, if any.
    public let padding: Int32?
    public let unknown: Int32?
    public let addBOS: Bool
    public let addEOS: Bool
    /// The vocabulary's algorithm (`tokenizer.ggml.model`).
    public enum Model: String, Sendable {
        case bpe = "gpt2"
        case sentencePiece = "llama"
    }
    public let model: Model
    /// The BPE vocabulary's word splitting (unused by SentencePiece).
    public let preTokenizer: PreTokenizer
    /// SentencePiece: whether raw text at the start or after a special token gets a leading space.
    public let addSpacePrefix: Bool
    /// The merging of raw text between special tokens, one per vocabulary algorithm.
    enum Encoder: Sendable {
        case bpe(BPE)
        case sentencePiece(SentencePiece)
    }
    let encoder: Encoder
    /// Special tokens matched in raw text, longest first: (UTF-8 text, id, is control or unknown).
    let specials: [([UInt8], Int32, Bool)]
    /// Token ids that end a generation (`eos`, `eot`, and control tokens named as such).
    public let endOfGeneration: Set<Int32>

    public var count: Int { tokens.count }

    /// Builds the tokenizer, checking the metadata a hostile or broken file could get wrong.
    public init(gguf c: GGUFContent) throws {
        guard let modelName = c["tokenizer.ggml.model"]?.string else {
            throw TokenizerError("tokenizer.ggml.model is missing")
        }
        guard let model = Model(rawValue: modelName) else {
            throw TokenizerError(
                "tokenizer.ggml.model \"\(modelName)\" is not supported (prs reads byte-level BPE, \"gpt2\", and "
                    + "SentencePiece, \"llama\")"
            )
        }
        guard case .strings(let tokens)? = c["tokenizer.ggml.tokens"]?.array else {
            throw TokenizerError(
                "tokenizer.ggml.tokens must be an array of strings, found "
                    + "\(c["tokenizer.ggml.tokens"]?.typeDescription ?? "nothing")"
            )
        }
        guard !tokens.isEmpty, tokens.count < Int(Int32.max) else {
            throw TokenizerError("tokenizer.ggml.tokens is empty")
        }
        var types = [TokenType](repeating: .normal, count: tokens.count)
        if let raw = c["tokenizer.ggml.token_type"] {
            guard case .integers(let t, _)? = raw.array else {
                throw TokenizerError(
                    "tokenizer.ggml.token_type must be an array of integers, found \(raw.typeDescription)")
            }
            guard t.count == tokens.count else {
                throw TokenizerError(
                    "tokenizer.ggml.token_type has \(t.count) entries but tokenizer.ggml.tokens has \(tokens.count)")
            }
            types = t.map { TokenType(rawValue: Int32(truncatingIfNeeded: $0)) ?? .undefined }
        }
        var scores: [Float]? = nil
        if let raw = c["tokenizer.ggml.scores"] {
            guard case .floats(let s)? = raw.array else {
                throw TokenizerError("tokenizer.ggml.scores must be an array of float32, found \(raw.typeDescription)")
            }
            guard s.count == tokens.count else {
                throw TokenizerError(
                    "tokenizer.ggml.scores has \(s.count) entries but tokenizer.ggml.tokens has \(tokens.count)")
            }
            scores = s
        }
        var ranks: [String: Int] = [:]
        if model == .bpe {
            guard case .strings(let merges)? = c["tokenizer.ggml.merges"]?.array else {
                throw TokenizerError(
                    "tokenizer.ggml.merges must be an array of strings, found "
                        + "\(c["tokenizer.ggml.merges"]?.typeDescription ?? "nothing")"
                )
            }
            ranks.reserveCapacity(merges.count)
            for (i, m) in merges.enumerated() {
                guard m.split(separator: " ", omittingEmptySubsequences: false).count == 2 else {
                    throw TokenizerError(
                        "tokenizer.ggml.merges[\(i)] \"\(m)\" is not two symbols separated by one space")
                }
                if ranks[m] == nil { ranks[m] = i }
            }
        } else if scores == nil {
            throw TokenizerError(
                "tokenizer.ggml.scores is missing; a SentencePiece (\"llama\") vocabulary merges by score")
        }
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() {
            if types[i] == .byte, !Self.isByteToken(t) {
                throw TokenizerError("token \(i) \"\(t)\" has type byte but is not of the form <0xHH>")
            }
            // llama.cpp's token_to_id keeps the last of duplicate texts.
            if model == .bpe { ids[t] = Int32(i) }
        }
        func tokenID(_ key: String) throws -> Int32? {
            guard let v = c[key] else { return nil }
            guard let i = v.integer else {
                throw TokenizerError("\(key) must be an integer, found \(v.typeDescription)")
            }
            guard i >= 0, i < tokens.count else {
                throw TokenizerError("\(key) is \(i), outside the vocabulary of \(tokens.count) tokens")
            }
            return Int32(i)
        }
        bos = try tokenID("tokenizer.ggml.bos_token_id")
        eos = try tokenID("tokenizer.ggml.eos_token_id")
        let eot = try tokenID("tokenizer.ggml.eot_token_id")
        padding = try tokenID("tokenizer.ggml.padding_token_id")
        unknown = try tokenID("tokenizer.ggml.unknown_token_id")
        addBOS = c["tokenizer.ggml.add_bos_token"]?.bool ?? false
        addEOS = c["tokenizer.ggml.add_eos_token"]?.bool ?? false
        if addBOS, bos == nil {
            throw TokenizerError("tokenizer.ggml.add_bos_token is set but tokenizer.ggml.bos_token_id is missing")
        }
        let preName = c["tokenizer.ggml.pre"]?.string ?? "default"
        guard let pre = PreTokenizer.named(preName) else {
            throw TokenizerError(
                "tokenizer.ggml.pre \"\(preName)\" is not supported; supported: smollm, gpt2, llama3 (llama-bpe), "
                    + "qwen2 and their aliases"
            )
        }
        self.tokens = tokens
        self.types = types
        self.model = model
        preTokenizer = pre
        switch model {
        case .bpe:
            encoder = .bpe(BPE(ranks: ranks, ids: ids, ignoreMerges: pre == .llama3))
            addSpacePrefix = false
        case .sentencePiece:
            encoder = .sentencePiece(SentencePiece(tokens: tokens, types: types, scores: scores ?? []))
            addSpacePrefix = c["tokenizer.ggml.add_space_prefix"]?.bool ?? true
        }
        specials = tokens.indices
            .filter { [.control, .userDefined, .unknown].contains(types[$0]) && !tokens[$0].isEmpty }
            .map { (Array(tokens[$0].utf8), Int32($0), types[$0] != .userDefined) }
            .sorted { $0.0.count > $1.0.count || ($0.0.count == $1.0.count && $0.1 < $1.1) }
        var ends = Set([eos, eot].compactMap { $0 })
        for (i, t) in tokens.enumerated()
        where types[i] == .control
            && ["<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>"].contains(t)
        {
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
        var afterSpecial = true
        for fragment in partition(text, parseSpecial: parseSpecial) {
            switch fragment {
            case .special(let id):
                out.append(id)
                afterSpecial = true
            case .text(let t):
                guard !t.isEmpty else { continue }
                switch encoder {
                case .bpe(let bpe):
                    // Split at special tokens' boundaries, the bytes are whole characters.
                    for word in preTokenizer.split(String(decoding: t, as: UTF8.self)) {
                        bpe.encode(word: Array(word.utf8), into: &out)
                    }
                case .sentencePiece(let spm):
                    spm.encode(addSpacePrefix && afterSpecial ? [0x20] + t : t, into: &out)
                }
                afterSpecial = false
            }
        }
        if addSpecial, addEOS, let eos { out.append(eos) }
        return out
    }

    enum Fragment {
        case text([UInt8])
        case special(Int32)
    }

    /// Splits raw text at special tokens, longest first (user-defined ones always; control
    /// ones only with `parseSpecial`). Matching is on bytes, as llama.cpp matches: no Unicode
    /// equivalence, so a decomposed "e" + U+0301 stays apart from a precomposed "é".
    func partition(_ text: String, parseSpecial: Bool) -> [Fragment] {
        var fragments: [Fragment] = [.text(Array(text.utf8))]
        for (special, id, isControl) in specials where parseSpecial || !isControl {
            let needle = special
            var next: [Fragment] = []
            next.reserveCapacity(fragments.count)
            for f in fragments {
                guard case .text(let t) = f, t.count >= needle.count, let first = needle.first, t.contains(first) else {
                    next.append(f)
                    continue
                }
                var start = 0
                var i = 0
                let last = t.count - needle.count
                while i <= last {
                    if t[i] == first, t[i..<(i + needle.count)].elementsEqual(needle) {
                        if i > start { next.append(.text(Array(t[start..<i]))) }
                        next.append(.special(id))
                        i += needle.count
                        start = i
                    } else {
                        i += 1
                    }
                }
                if start < t.count { next.append(.text(start == 0 ? t : Array(t[start...]))) }
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
            if model == .sentencePiece {
                return Array(
                    t.split(separator: SentencePiece.space, omittingEmptySubsequences: false).joined(separator: " ")
                        .utf8)
            }
            return ByteLevel.decode(t) ?? Array(t.utf8)
        }
    }

    /// The text of `ids`, invalid UTF-8 repaired.
    public func decode(_ ids: [Int32], special: Bool = false) -> String {
        String(decoding: ids.flatMap { bytes(of: $0, special: special) }, as: UTF8.self)
    }
}
