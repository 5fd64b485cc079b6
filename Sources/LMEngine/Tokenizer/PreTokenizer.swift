/// Splits text into words before BPE, by the rules `tokenizer.ggml.pre` names (llama.cpp's
/// `llama-vocab.cpp` lists the regular expressions of each). Each expression in turn splits
/// every piece so far; the text between matches stays as pieces of its own, as llama.cpp keeps it.
public enum PreTokenizer: String, Sendable, CaseIterable {
    case gpt2
    case smollm
    case llama3
    case qwen2

    /// The names `tokenizer.ggml.pre` may have, mapped to a rule set.
    public static func named(_ name: String) -> PreTokenizer? {
        switch name {
        case "gpt-2", "gpt2", "default", "mpt", "olmo": .gpt2
        case "smollm", "starcoder", "refact", "command-r", "codeshell": .smollm
        case "llama3", "llama-bpe", "llama-v3", "falcon3", "pixtral": .llama3
        case "qwen2", "stablelm2", "deepseek-r1-qwen": .qwen2
        default: nil
        }
    }

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#
    static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    var patterns: [String] {
        switch self {
        case .gpt2: [Self.gpt2Pattern]
        case .smollm: [#"\p{N}"#, Self.gpt2Pattern]
        case .llama3: [Self.llama3Pattern]
        case .qwen2: [Self.qwen2Pattern]
        }
    }

    /// The compiled expressions; Regex is not Sendable, so each call builds its own.
    func regexes() -> [Regex<Substring>] {
        patterns.map { try! Regex($0).matchingSemantics(.unicodeScalar) }
    }

    /// The words of `text`, in order; concatenated they give `text` back.
    public func split(_ text: String) -> [Substring] {
        var pieces: [Substring] = [text[...]]
        for regex in regexes() {
            var next: [Substring] = []
            for piece in pieces {
                var last = piece.startIndex
                for m in piece.matches(of: regex) where !m.range.isEmpty {
                    if last < m.range.lowerBound { next.append(piece[last..<m.range.lowerBound]) }
                    next.append(piece[m.range])
                    last = m.range.upperBound
                }
                if last < piece.endIndex { next.append(piece[last...]) }
            }
            pieces = next
        }
        return pieces
    }
}
