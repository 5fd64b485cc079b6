import Foundation

extension Check {
    /// Checks `text`: a graded score in [0, 1] (1 exactly when followed) and, when not followed,
    /// a sentence saying what is wrong. The rules follow IFEval's checkers unless
    /// docs/constraints.md says otherwise.
    func evaluate(_ text: String) -> (score: Double, critique: String?) {
        func count(_ what: String, _ n: Int, _ target: Int, _ r: Relation) -> (Double, String?) {
            let s = r.score(n, target)
            return (s, s == 1 ? nil : "The answer has \(n) \(what); it should have \(r.rawValue) \(target).")
        }
        func binary(_ ok: Bool, _ critique: @autoclosure () -> String) -> (Double, String?) {
            ok ? (1, nil) : (0, critique())
        }
        switch self {
        case .words(let target, let r):
            return count("words", TextCounts.words(text).count, target, r)
        case .sentences(let target, let r):
            return count("sentences", TextCounts.sentences(text).count, target, r)
        case .starParagraphs(let target):
            let n = Self.starParagraphCount(text)
            guard let n else { return (0, "The answer has an empty paragraph between *** dividers.") }
            return count("paragraphs separated by ***", n, target, .exactly)
        case .nthParagraphFirstWord(let target, let nth, let word):
            let paras = TextCounts.paragraphs(text)
            let first = paras.count >= nth ? Self.firstWord(paras[nth - 1]) : ""
            let countScore = Relation.exactly.score(paras.count, target)
            let wordOK = first == word
            let score = (countScore + (wordOK ? 1 : 0)) / 2
            if score == 1 { return (1, nil) }
            var why: [String] = []
            if paras.count != target { why.append("has \(paras.count) paragraphs instead of \(target)") }
            if !wordOK { why.append("paragraph \(nth) starts with \"\(first)\" instead of \"\(word)\"") }
            return (score, "The answer " + why.joined(separator: " and ") + ".")
        case .paragraphs(let target, let r):
            return count("paragraphs", TextCounts.paragraphs(text).count, target, r)
        case .bullets(let target):
            return count("bullet points", Self.bulletCount(text), target, .exactly)
        case .numberedSteps(let target, let r):
            return count("numbered steps", TextCounts.matches(#"(?m)^\s*\d+[.)]\s+\S"#, in: text).count, target, r)
        case .title:
            let titles = TextCounts.matches(#"<<[^\n]+>>"#, in: text)
            let ok = titles.contains { !$0.dropFirst(2).dropLast(2).trimmingCharacters(in: .whitespaces).isEmpty }
            return binary(ok, "The answer has no title wrapped in double angular brackets, like <<title>>.")
        case .sections(let splitter, let target):
            let pattern = #"\s?"# + NSRegularExpression.escapedPattern(for: splitter) + #"\s?\d+\s?"#
            let n = TextCounts.split(text, on: pattern).count - 1
            return count("sections marked \"\(splitter) X\"", n, target, .atLeast)
        case .markdownSections(let target, let r):
            return count("Markdown headers", TextCounts.matches(#"(?m)^\s{0,3}#{1,6}\s+\S"#, in: text).count, target, r)
        case .json:
            return binary(Self.isJSON(text), "The answer is not valid JSON; reply with the JSON only.")
        case .quotation:
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return binary(
                t.count > 1 && t.hasPrefix("\"") && t.hasSuffix("\""),
                "The answer is not wrapped in double quotation marks.")
        case .postscript(let marker):
            return binary(Self.hasPostscript(text, marker), "The answer has no postscript starting with \(marker)")
        case .highlights(let target):
            return count("highlighted sections", Self.highlightCount(text), target, .atLeast)
        case .constrainedResponse:
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
            let ok = ["My answer is yes.", "My answer is no.", "My answer is maybe."].contains { t.contains($0) }
            return binary(ok, "The answer does not contain one of the fixed replies, such as \"My answer is yes.\"")
        case .twoResponses:
            return binary(Self.hasTwoResponses(text), "The answer is not two different responses separated by ******.")
        case .keywords(let keywords):
            let missing = keywords.filter { !Self.contains(text, $0) }
            let score = Double(keywords.count - missing.count) / Double(keywords.count)
            return (score, missing.isEmpty ? nil : "The answer does not include \(Check.list(missing)).")
        case .keywordFrequency(let keyword, let target, let r):
            let n = TextCounts.matches(
                NSRegularExpression.escapedPattern(for: keyword), in: text, options: .caseInsensitive
            ).count
            return count("uses of \"\(keyword)\"", n, target, r)
        case .forbidden(let words):
            let used = words.filter { Self.containsWord(text, $0) }
            let score = 1 - Double(used.count) / Double(words.count)
            return (score, used.isEmpty ? nil : "The answer uses the forbidden words \(Check.list(used)).")
        case .letterFrequency(let letter, let target, let r):
            let n = text.lowercased().filter { $0 == letter }.count
            return count("times the letter \"\(letter)\"", n, target, r)
        case .startWith(let phrase):
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            return binary(
                t.hasPrefix(phrase.trimmingCharacters(in: .whitespaces).lowercased()),
                "The answer does not start with \"\(phrase)\".")
        case .endWith(let phrase):
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(
                in: CharacterSet(charactersIn: "\"")
            ).lowercased()
            return binary(
                t.hasSuffix(phrase.trimmingCharacters(in: .whitespaces).lowercased()),
                "The answer does not end with the exact phrase \"\(phrase)\".")
        case .repeatPrompt(let prompt):
            let t = text.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
            return binary(
                t.hasPrefix(prompt.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()),
                "The answer does not begin by repeating the request word for word.")
        case .placeholders(let target):
            return count(
                "placeholders in square brackets", TextCounts.matches(#"\[.*?\]"#, in: text).count, target, .atLeast)
        case .noComma:
            let n = text.filter { $0 == "," }.count
            return (n == 0 ? 1 : 1 / Double(n + 1), n == 0 ? nil : "The answer uses \(n) commas; it should use none.")
        case .language(let lang):
            return binary(LanguageCheck.isWritten(in: lang, text), "The answer is not written in \(lang.name).")
        case .lowercase:
            return Self.caseScore(text, upper: false, "The answer has capital letters; it should be all lowercase.")
        case .uppercase:
            return Self.caseScore(text, upper: true, "The answer has lowercase letters; it should be all capitals.")
        case .capitalWords(let target, let r):
            let n = TextCounts.words(text).filter { TextCounts.isAllCase(String($0), upper: true) }.count
            return count("words in all capitals", n, target, r)
        }
    }

    /// IFEval's paragraphs divided by `***`: empty leading/trailing parts are dropped; an empty
    /// part in the middle makes the answer fail (nil).
    static func starParagraphCount(_ text: String) -> Int? {
        let parts = TextCounts.split(text, on: #"\s?\*\*\*\s?"#)
        var n = parts.count
        for (i, p) in parts.enumerated() where p.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            if i == 0 || i == parts.count - 1 { n -= 1 } else { return nil }
        }
        return n
    }

    static func firstWord(_ paragraph: String) -> String {
        guard let w = paragraph.split(whereSeparator: { $0.isWhitespace }).first else { return "" }
        var out = ""
        for c in w.drop(while: { $0 == "'" || $0 == "\"" }) {
            if ".,?!'\"".contains(c) { break }
            out += c.lowercased()
        }
        return out
    }

    /// Lines starting with `* ` (not `**`) or `-`, as IFEval counts Markdown bullets.
    static func bulletCount(_ text: String) -> Int {
        TextCounts.matches(#"(?m)^\s*\*[^\*].*$"#, in: text).count
            + TextCounts.matches(#"(?m)^\s*-.*$"#, in: text).count
    }

    static func highlightCount(_ text: String) -> Int {
        let spans = TextCounts.matches(#"\*[^\n\*]*\*"#, in: text) + TextCounts.matches(#"\*\*[^\n\*]*\*\*"#, in: text)
        return spans.filter {
            !$0.trimmingCharacters(in: CharacterSet(charactersIn: "*")).trimmingCharacters(in: .whitespaces).isEmpty
        }.count
    }

    /// The whole answer parses as JSON, after removing a Markdown code fence around it.
    static func isJSON(_ text: String) -> Bool {
        var t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        for fence in ["```json", "```Json", "```JSON", "```"] where t.hasPrefix(fence) {
            t.removeFirst(fence.count)
            break
        }
        if t.hasSuffix("```") { t.removeLast(3) }
        t = t.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !t.isEmpty, let data = t.data(using: .utf8) else { return false }
        return (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) != nil
    }

    static func hasPostscript(_ text: String, _ marker: String) -> Bool {
        let m = marker.lowercased()
        let pattern: String
        if m == "p.p.s" || m == "p.p.s." {
            pattern = #"(?m)\s*p\.\s?p\.\s?s.*$"#
        } else if m == "p.s." || m == "p.s" {
            pattern = #"(?m)\s*p\.\s?s\..*$"#
        } else {
            pattern = #"(?m)\s*"# + NSRegularExpression.escapedPattern(for: m) + ".*$"
        }
        return !TextCounts.matches(pattern, in: text.lowercased()).isEmpty
    }

    static func hasTwoResponses(_ text: String) -> Bool {
        let parts = text.components(separatedBy: "******")
        var valid: [String] = []
        for (i, p) in parts.enumerated() {
            let t = p.trimmingCharacters(in: .whitespacesAndNewlines)
            if t.isEmpty {
                if i != 0 && i != parts.count - 1 { return false }
            } else {
                valid.append(t)
            }
        }
        return valid.count == 2 && valid[0] != valid[1]
    }

    /// Case-insensitive substring match, as IFEval's `re.search(keyword, …)` (prs takes the
    /// keyword literally rather than as a regular expression).
    static func contains(_ text: String, _ keyword: String) -> Bool {
        text.range(of: keyword, options: .caseInsensitive) != nil
    }

    /// Case-insensitive whole-word match (`\bword\b`).
    static func containsWord(_ text: String, _ word: String) -> Bool {
        !TextCounts.matches(
            #"\b"# + NSRegularExpression.escapedPattern(for: word) + #"\b"#, in: text, options: .caseInsensitive
        ).isEmpty
    }

    /// Followed when every cased letter is in the case (Python's `isupper`/`islower`); partial
    /// credit is the share of cased letters in the right case.
    static func caseScore(_ text: String, upper: Bool, _ critique: String) -> (Double, String?) {
        if TextCounts.isAllCase(text, upper: upper) { return (1, nil) }
        let cased = text.filter(\.isCased)
        guard !cased.isEmpty else { return (0, critique) }
        let right = cased.filter { upper ? $0.isUppercase : $0.isLowercase }.count
        return (min(Double(right) / Double(cased.count), 0.99), critique)
    }
}
