/// A small language check for `language:response_language`, in place of IFEval's `langdetect`.
///
/// Languages with their own script are recognised by the share of letters in that script
/// (at least 60%); Latin-script languages by the share of their most common function words
/// among the text's words (the language's list must score highest and reach 10%). It is
/// meant for telling whether a reply is in the asked language, not for identifying close
/// relatives (Russian, Ukrainian and Bulgarian are all "Cyrillic" here).
public enum LanguageCheck {
    public struct Language: Sendable, Hashable {
        public let code: String
        public let name: String
        let script: Script?
        let functionWords: Set<String>

        public init?(code: String) {
            guard let l = LanguageCheck.table.first(where: { $0.code == code.lowercased() }) else { return nil }
            self = l
        }

        init(_ code: String, _ name: String, script: Script? = nil, words: String = "") {
            self.code = code
            self.name = name
            self.script = script
            self.functionWords = Set(words.split(separator: " ").map(String.init))
        }
    }

    enum Script: Sendable, Hashable {
        case cyrillic, arabic, devanagari, bengali, tamil, telugu, gujarati, kannada, gurmukhi, thai, hangul, kana, han,
            greek, hebrew

        func contains(_ v: UInt32) -> Bool {
            switch self {
            case .cyrillic: (0x0400...0x04FF).contains(v)
            case .arabic: (0x0600...0x06FF).contains(v) || (0x0750...0x077F).contains(v)
            case .devanagari: (0x0900...0x097F).contains(v)
            case .bengali: (0x0980...0x09FF).contains(v)
            case .gurmukhi: (0x0A00...0x0A7F).contains(v)
            case .gujarati: (0x0A80...0x0AFF).contains(v)
            case .tamil: (0x0B80...0x0BFF).contains(v)
            case .telugu: (0x0C00...0x0C7F).contains(v)
            case .kannada: (0x0C80...0x0CFF).contains(v)
            case .thai: (0x0E00...0x0E7F).contains(v)
            case .hangul: (0xAC00...0xD7AF).contains(v) || (0x1100...0x11FF).contains(v)
            case .kana: (0x3040...0x30FF).contains(v) || (0x4E00...0x9FFF).contains(v)
            case .han: (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v)
            case .greek: (0x0370...0x03FF).contains(v)
            case .hebrew: (0x0590...0x05FF).contains(v)
            }
        }
    }

    static let table: [Language] = [
        Language(
            "en", "English",
            words: "the and of to is in that it for you are with this on be as have not or was but they"),
        Language(
            "es", "Spanish", words: "el la de que y en los las un una por con para es no se del al lo como más pero"),
        Language("pt", "Portuguese", words: "o a de que e do da em um uma para com não os as é dos das se mais por"),
        Language(
            "fr", "French", words: "le la les de des et est un une que pour dans en du ne pas qui sur au avec vous"),
        Language(
            "de", "German", words: "der die das und ist nicht ein eine zu den mit von sie es ich auf für dem im auch"),
        Language("it", "Italian", words: "il la di che e un una per non sono del della le gli con si è ma come anche"),
        Language("nl", "Dutch", words: "de het een en van is dat niet op te met voor zijn ik je die ook maar er"),
        Language("fi", "Finnish", words: "ja on ei se että oli mutta kun hän tämä ovat myös tai jos niin kuin mitä"),
        Language("sw", "Swahili", words: "na ya wa kwa ni za la katika hii kama lakini pia au huo hiyo yake wao sana"),
        Language("vi", "Vietnamese", words: "và của là có không những một các được cho người này trong với để đã khi"),
        Language("ru", "Russian", script: .cyrillic), Language("uk", "Ukrainian", script: .cyrillic),
        Language("bg", "Bulgarian", script: .cyrillic), Language("ar", "Arabic", script: .arabic),
        Language("fa", "Persian", script: .arabic), Language("ur", "Urdu", script: .arabic),
        Language("hi", "Hindi", script: .devanagari), Language("mr", "Marathi", script: .devanagari),
        Language("ne", "Nepali", script: .devanagari), Language("bn", "Bengali", script: .bengali),
        Language("pa", "Punjabi", script: .gurmukhi), Language("gu", "Gujarati", script: .gujarati),
        Language("ta", "Tamil", script: .tamil), Language("te", "Telugu", script: .telugu),
        Language("kn", "Kannada", script: .kannada), Language("th", "Thai", script: .thai),
        Language("ko", "Korean", script: .hangul), Language("ja", "Japanese", script: .kana),
        Language("zh", "Chinese", script: .han), Language("el", "Greek", script: .greek),
        Language("he", "Hebrew", script: .hebrew),
    ]

    public static var supportedCodes: [String] { table.map(\.code) }

    public static func isWritten(in lang: Language, _ text: String) -> Bool {
        if let script = lang.script {
            let letters = text.unicodeScalars.filter { $0.properties.isAlphabetic }
            guard !letters.isEmpty else { return false }
            let inScript = letters.filter { script.contains($0.value) }.count
            // Japanese needs kana, not only Han characters shared with Chinese.
            if script == .kana, !letters.contains(where: { (0x3040...0x30FF).contains($0.value) }) { return false }
            return Double(inScript) / Double(letters.count) >= 0.6
        }
        let words = TextCounts.words(text.lowercased()).map(String.init)
        guard !words.isEmpty else { return false }
        func share(_ l: Language) -> Double {
            Double(words.filter { l.functionWords.contains($0) }.count) / Double(words.count)
        }
        let mine = share(lang)
        let best = table.filter { $0.script == nil && $0.code != lang.code }.map(share).max() ?? 0
        return mine >= 0.1 && mine >= best
    }
}
