import Foundation

/// A constraint with its arguments read and typed: what to check and how to say it.
enum Check: Sendable, Hashable {
    case words(Int, Relation)
    case sentences(Int, Relation)
    case starParagraphs(Int)
    case nthParagraphFirstWord(count: Int, nth: Int, word: String)
    case paragraphs(Int, Relation)
    case bullets(Int)
    case numberedSteps(Int, Relation)
    case title
    case sections(splitter: String, count: Int)
    case markdownSections(Int, Relation)
    case json
    case quotation
    case postscript(marker: String)
    case highlights(Int)
    case constrainedResponse
    case twoResponses
    case keywords([String])
    case keywordFrequency(String, Int, Relation)
    case forbidden([String])
    case letterFrequency(Character, Int, Relation)
    case startWith(String)
    case endWith(String)
    case repeatPrompt(String)
    case placeholders(Int)
    case noComma
    case language(LanguageCheck.Language)
    case lowercase
    case uppercase
    case capitalWords(Int, Relation)

    init(kind: ConstraintKind, arguments: [String: JSONValue]) throws(ConstraintError) {
        let a = Arguments(arguments)
        switch kind {
        case .numberWords: self = .words(try a.int("num_words"), try a.relation("relation"))
        case .numberSentences: self = .sentences(try a.int("num_sentences"), try a.relation("relation"))
        case .numberParagraphs: self = .starParagraphs(try a.int("num_paragraphs"))
        case .nthParagraphFirstWord:
            let count = try a.int("num_paragraphs")
            let nth = try a.int("nth_paragraph", min: 1)
            guard nth <= count else {
                throw ConstraintError(field: "nth_paragraph", message: "is \(nth), past num_paragraphs \(count)")
            }
            self = .nthParagraphFirstWord(count: count, nth: nth, word: try a.string("first_word").lowercased())
        case .paragraphs: self = .paragraphs(try a.int("num_paragraphs"), try a.relation("relation", default: .exactly))
        case .bulletList: self = .bullets(try a.int("num_bullets"))
        case .numberedSteps:
            self = .numberedSteps(try a.int("num_steps"), try a.relation("relation", default: .exactly))
        case .title: self = .title
        case .sections:
            self = .sections(
                splitter: try a.string("section_spliter", default: "Section"), count: try a.int("num_sections"))
        case .markdownSections:
            self = .markdownSections(try a.int("num_sections"), try a.relation("relation", default: .atLeast))
        case .jsonFormat: self = .json
        case .quotation: self = .quotation
        case .postscript: self = .postscript(marker: try a.string("postscript_marker", default: "P.S."))
        case .highlights: self = .highlights(try a.int("num_highlights"))
        case .constrainedResponse: self = .constrainedResponse
        case .twoResponses: self = .twoResponses
        case .keywordsExist: self = .keywords(try a.strings("keywords"))
        case .keywordFrequency:
            self = .keywordFrequency(try a.string("keyword"), try a.int("frequency"), try a.relation("relation"))
        case .forbiddenWords: self = .forbidden(try a.strings("forbidden_words"))
        case .letterFrequency:
            let letter = try a.string("letter").lowercased()
            guard letter.count == 1, let ch = letter.first, ch.isLetter else {
                throw ConstraintError(field: "letter", message: "expected a single letter, found \"\(letter)\"")
            }
            self = .letterFrequency(ch, try a.int("let_frequency"), try a.relation("let_relation"))
        case .startWith: self = .startWith(try a.string("start_phrase"))
        case .endWith: self = .endWith(try a.string("end_phrase"))
        case .repeatPrompt: self = .repeatPrompt(try a.string("prompt_to_repeat"))
        case .placeholders: self = .placeholders(try a.int("num_placeholders"))
        case .noComma: self = .noComma
        case .language:
            let code = try a.string("language")
            guard let lang = LanguageCheck.Language(code: code) else {
                throw ConstraintError(
                    field: "language",
                    message:
                        "\"\(code)\" is not a language prs can check; supported: "
                        + "\(LanguageCheck.supportedCodes.joined(separator: ", "))"
                )
            }
            self = .language(lang)
        case .lowercase: self = .lowercase
        case .uppercase: self = .uppercase
        case .capitalWords: self = .capitalWords(try a.int("capital_frequency"), try a.relation("capital_relation"))
        }
    }

    /// The constraint as an instruction to the writer, for preferences given only as constraints.
    var instruction: String {
        switch self {
        case .words(let n, let r): "Answer in \(r.rawValue) \(n) words."
        case .sentences(let n, let r): "Answer in \(r.rawValue) \(n) sentences."
        case .starParagraphs(let n): "Write exactly \(n) paragraphs, separated by the divider ***."
        case .nthParagraphFirstWord(let count, let nth, let word):
            "Write exactly \(count) paragraphs separated by blank lines; paragraph \(nth) must start with the word "
                + "\"\(word)\"."
        case .paragraphs(let n, let r): "Write \(r.rawValue) \(n) paragraphs, separated by blank lines."
        case .bullets(let n): "Use exactly \(n) bullet points in Markdown (\"* \" or \"- \")."
        case .numberedSteps(let n, let r): "Give \(r.rawValue) \(n) numbered steps (1., 2., …)."
        case .title: "Give the answer a title wrapped in double angular brackets, like <<title>>."
        case .sections(let s, let n): "Divide the answer into \(n) sections, each starting with \"\(s) X\"."
        case .markdownSections(let n, let r): "Use \(r.rawValue) \(n) sections with Markdown headers (# Header)."
        case .json: "Reply with valid JSON only."
        case .quotation: "Wrap the whole answer in double quotation marks."
        case .postscript(let m): "End with a postscript starting with \(m)"
        case .highlights(let n): "Highlight at least \(n) parts with Markdown, like *highlighted part*."
        case .constrainedResponse:
            "Answer with one of: \"My answer is yes.\", \"My answer is no.\", \"My answer is maybe.\""
        case .twoResponses: "Give two different answers, separated by six asterisks: ******."
        case .keywords(let k): "Include the keywords \(Self.list(k))."
        case .keywordFrequency(let k, let n, let r): "Use the word \"\(k)\" \(r.rawValue) \(n) times."
        case .forbidden(let w): "Do not use the words \(Self.list(w))."
        case .letterFrequency(let l, let n, let r): "Use the letter \"\(l)\" \(r.rawValue) \(n) times."
        case .startWith(let p): "Start the answer with \"\(p)\"."
        case .endWith(let p): "End the answer with the exact phrase \"\(p)\"."
        case .repeatPrompt: "First repeat the request word for word, then answer it."
        case .placeholders(let n): "Include at least \(n) placeholders in square brackets, like [address]."
        case .noComma: "Do not use any commas."
        case .language(let l): "Answer in \(l.name) only."
        case .lowercase: "Write the whole answer in lowercase letters; no capital letters."
        case .uppercase: "Write the whole answer in capital letters."
        case .capitalWords(let n, let r): "Use \(r.rawValue) \(n) words written in all capital letters."
        }
    }

    static func list(_ words: [String]) -> String {
        words.map { "\"\($0)\"" }.joined(separator: ", ")
    }
}

/// Typed access to a constraint's keyword arguments, with errors naming the field.
struct Arguments {
    let fields: [String: JSONValue]
    init(_ fields: [String: JSONValue]) { self.fields = fields }

    func int(_ key: String, min: Int = 0) throws(ConstraintError) -> Int {
        guard let v = fields[key] else { throw ConstraintError(field: key, message: "missing") }
        guard let d = v.wholeNumber, abs(d) < 1_000_000_000 else {
            throw ConstraintError(field: key, message: "expected a whole number, found \(v.typeName)")
        }
        guard Int(d) >= min else {
            throw ConstraintError(field: key, message: "must be at least \(min), got \(Int(d))")
        }
        return Int(d)
    }

    func string(_ key: String, default value: String? = nil) throws(ConstraintError) -> String {
        guard let v = fields[key] else {
            if let value { return value }
            throw ConstraintError(field: key, message: "missing")
        }
        guard case .string(let s) = v, !s.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConstraintError(field: key, message: "expected a non-empty string, found \(v.typeName)")
        }
        return s
    }

    func strings(_ key: String) throws(ConstraintError) -> [String] {
        guard let v = fields[key] else { throw ConstraintError(field: key, message: "missing") }
        guard case .array(let a) = v, !a.isEmpty else {
            throw ConstraintError(field: key, message: "expected a non-empty list of strings, found \(v.typeName)")
        }
        var out: [String] = []
        for (i, e) in a.enumerated() {
            guard let s = e.stringValue, !s.isEmpty else {
                throw ConstraintError(
                    field: "\(key)[\(i)]", message: "expected a non-empty string, found \(e.typeName)")
            }
            out.append(s)
        }
        return out
    }

    func relation(_ key: String, default value: Relation? = nil) throws(ConstraintError) -> Relation {
        guard let v = fields[key] else {
            if let value { return value }
            throw ConstraintError(field: key, message: "missing")
        }
        guard let s = v.stringValue, let r = Relation(rawValue: s) else {
            throw ConstraintError(
                field: key,
                message: "expected one of \(Relation.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        return r
    }
}
