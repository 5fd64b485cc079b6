import Foundation

/// A reward: `rubric[:loose]`, `judge[:POLICY_SPEC]`, `http:URL`, or a weighted mix such as `0.7*rubric+0.3*judge`.
public indirect enum RewardSpec: Sendable, Hashable, CustomStringConvertible {
    /// `rubric` (strict) or `rubric:loose`.
    case rubric(Rubric.Mode)
    /// `nil`: the policy judges.
    case judge(PolicySpec?)
    case http(String)
    case mix([(weight: Double, RewardSpec)])

    public static func == (a: RewardSpec, b: RewardSpec) -> Bool { a.description == b.description }
    public func hash(into h: inout Hasher) { h.combine(description) }

    /// Parses a reward. `checkHTTP` reads an `http:` term's URL and options (PRSBackends passes
    /// its HTTP reward reader, so a bad option is a usage error before a run starts).
    public static func parse(_ spec: String, checkHTTP: (String) throws -> Void = { _ in }) throws -> RewardSpec {
        let s = spec.trimmingCharacters(in: .whitespaces)
        // Split a mix on '+' outside URLs: a term starts with a weight and '*'.
        let terms = splitTerms(s)
        if terms.count > 1 || terms.first?.weight != nil {
            var parts: [(Double, RewardSpec)] = []
            for t in terms {
                let p = try parseSingle(t.body, whole: spec, checkHTTP: checkHTTP)
                parts.append((t.weight ?? 1, p))
            }
            return .mix(parts)
        }
        return try parseSingle(s, whole: spec, checkHTTP: checkHTTP)
    }

    static func parseSingle(_ s: String, whole: String, checkHTTP: (String) throws -> Void) throws -> RewardSpec {
        if s == "rubric" || s == "rubric:strict" { return .rubric(.strict) }
        if s == "rubric:loose" { return .rubric(.loose) }
        if s == "judge" { return .judge(nil) }
        if s.hasPrefix("judge:") { return .judge(try PolicySpec.parse(String(s.dropFirst("judge:".count)))) }
        if s.hasPrefix("http:") || s.hasPrefix("https:") {
            let url = s.hasPrefix("http:http") ? String(s.dropFirst("http:".count)) : s
            try checkHTTP(url)
            return .http(url)
        }
        throw SpecError(
            "reward \"\(whole)\": \"\(s)\" is not a reward; expected rubric[:loose], judge[:POLICY], http:URL or a "
                + "mix like 0.7*rubric+0.3*judge"
        )
    }

    /// Terms of `w*spec+w*spec`; a '+' only separates terms when a weight follows it.
    static func splitTerms(_ s: String) -> [(weight: Double?, body: String)] {
        var terms: [(Double?, String)] = []
        var current = ""
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            if chars[i] == "+", startsWeightedTerm(chars, from: i + 1) {
                terms.append(weighted(current))
                current = ""
            } else {
                current.append(chars[i])
            }
            i += 1
        }
        terms.append(weighted(current))
        return terms
    }

    static func startsWeightedTerm(_ chars: [Character], from i: Int) -> Bool {
        var j = i
        while j < chars.count, chars[j].isNumber || chars[j] == "." { j += 1 }
        return j > i && j < chars.count && chars[j] == "*"
    }

    static func weighted(_ term: String) -> (Double?, String) {
        let t = term.trimmingCharacters(in: .whitespaces)
        if let star = t.firstIndex(of: "*"), let w = Double(t[..<star].trimmingCharacters(in: .whitespaces)) {
            return (w, t[t.index(after: star)...].trimmingCharacters(in: .whitespaces))
        }
        return (nil, t)
    }

    public var description: String {
        switch self {
        case .rubric(let m): m == .strict ? "rubric" : "rubric:loose"
        case .judge(nil): "judge"
        case .judge(let p?): "judge:\(p)"
        case .http(let u): "http:\(u)"
        case .mix(let parts): parts.map { "\($0.weight)*\($0.1)" }.joined(separator: "+")
        }
    }
}

/// A spec that could not be read, with what was expected.
public struct SpecError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
