import Foundation

/// How the constraint checkers count words, sentences and paragraphs. The definitions are in
/// docs/constraints.md; each says where it differs from IFEval.
public enum TextCounts {
    /// Words: maximal runs of letters, digits, combining marks and `_` (IFEval's `\w+`), so
    /// "don't" is two words and "3.5" is two.
    public static func words(_ text: String) -> [Substring] {
        var out: [Substring] = []
        var start: String.Index?
        for i in text.indices {
            if isWordCharacter(text[i]) {
                if start == nil { start = i }
            } else if let s = start {
                out.append(text[s..<i])
                start = nil
            }
        }
        if let s = start { out.append(text[s...]) }
        return out
    }

    static func isWordCharacter(_ c: Character) -> Bool {
        c == "_" || c.unicodeScalars.contains { CharacterSet.alphanumerics.contains($0) }
    }

    static let abbreviations: Set<String> = [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "inc", "ltd", "co",
        "no", "fig", "approx", "dept", "est", "min", "max", "jan", "feb", "mar", "apr", "jun", "jul", "aug",
        "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "a.m", "p.m",
    ]

    /// Sentences: a sentence ends at `.`, `!`, `?` or `…` (with any closing quotes or brackets
    /// after them) followed by whitespace or the end of the text, unless the word before a `.`
    /// is a listed abbreviation ("Dr.", "e.g.") or a single letter ("J. Smith"), or the next word
    /// starts with a lowercase letter ("“Stop!” she said"); a blank line also ends one. Text
    /// without terminal punctuation is one sentence.
    public static func sentences(_ text: String) -> [Substring] {
        let chars = Array(text.indices)
        var out: [Substring] = []
        var start = text.startIndex
        func close(_ end: String.Index) {
            let s = text[start..<end]
            if s.contains(where: { isWordCharacter($0) }) { out.append(s) }
            start = end
        }
        var k = 0
        while k < chars.count {
            let c = text[chars[k]]
            if c == "\n", k + 1 < chars.count, blankLineFollows(text, chars, from: k) {
                close(chars[k])
            } else if c == "." || c == "!" || c == "?" || c == "…" {
                var j = k
                while j + 1 < chars.count, ".!?…\"'”’)]".contains(text[chars[j + 1]]) { j += 1 }
                let atEnd = j + 1 >= chars.count
                if atEnd || text[chars[j + 1]].isWhitespace {
                    let abbreviation = c == "." && j == k && endsWithAbbreviation(text[start..<chars[k]])
                    if !abbreviation && !nextWordIsLowercase(text, chars, from: j + 1) {
                        close(atEnd ? text.endIndex : chars[j + 1])
                    }
                }
                k = j
            }
            k += 1
        }
        close(text.endIndex)
        return out
    }

    static func blankLineFollows(_ text: String, _ chars: [String.Index], from k: Int) -> Bool {
        var j = k + 1
        while j < chars.count, text[chars[j]] != "\n", text[chars[j]].isWhitespace { j += 1 }
        return j < chars.count && text[chars[j]] == "\n"
    }

    static func nextWordIsLowercase(_ text: String, _ chars: [String.Index], from k: Int) -> Bool {
        var j = k
        while j < chars.count, text[chars[j]].isWhitespace { j += 1 }
        return j < chars.count && text[chars[j]].isLowercase
    }

    static func endsWithAbbreviation(_ s: Substring) -> Bool {
        let last = s.split(whereSeparator: { $0.isWhitespace }).last.map { $0.lowercased() } ?? ""
        let word = String(last.drop(while: { !$0.isLetter }))
        if word.count == 1, word.first?.isLetter == true { return true }
        return abbreviations.contains(word)
    }

    /// Paragraphs: blocks of text separated by one or more blank lines (lines holding only
    /// whitespace), ignoring empty blocks.
    public static func paragraphs(_ text: String) -> [String] {
        var out: [String] = []
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.allSatisfy(\.isWhitespace) {
                if !current.isEmpty { out.append(current.joined(separator: "\n")) }
                current = []
            } else {
                current.append(line)
            }
        }
        if !current.isEmpty { out.append(current.joined(separator: "\n")) }
        return out
    }

    /// Python's `str.isupper()`/`islower()`: at least one cased character, and all cased
    /// characters in that case.
    public static func isAllCase(_ text: String, upper: Bool) -> Bool {
        var cased = false
        for c in text where c.isCased {
            cased = true
            if upper ? c.isLowercase : c.isUppercase { return false }
        }
        return cased
    }

    /// Occurrences of `pattern` (a regular expression) in `text`.
    static func matches(_ pattern: String, in text: String, options: NSRegularExpression.Options = []) -> [String] {
        guard let re = try? NSRegularExpression(pattern: pattern, options: options) else { return [] }
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) }
    }

    /// `text` split on `pattern`, like Python's `re.split`.
    static func split(_ text: String, on pattern: String) -> [String] {
        guard let re = try? NSRegularExpression(pattern: pattern) else { return [text] }
        let ns = text as NSString
        var out: [String] = []
        var last = 0
        for m in re.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
            out.append(ns.substring(with: NSRange(location: last, length: m.range.location - last)))
            last = m.range.location + m.range.length
        }
        out.append(ns.substring(from: last))
        return out
    }
}
