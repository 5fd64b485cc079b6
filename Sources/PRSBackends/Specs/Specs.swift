import Foundation
import PRSCore

/// A policy: where responses come from.
public enum PolicySpec: Sendable, Hashable, CustomStringConvertible {
    /// An OpenAI-compatible server, or several balanced.
    case openAI([OpenAIGenerator.Endpoint])
    /// A GGUF file run in-process, with LoRA adapters (`A.gguf` or `A.gguf@SCALE`) applied.
    case embedded(path: String, adapters: [String] = [])

    /// Parses `openai:http://HOST:PORT/v1[#model][,http://…]` or `embedded:PATH.gguf[+ADAPTER.gguf[@SCALE]]...`.
    public static func parse(_ spec: String) throws -> PolicySpec {
        if spec.hasPrefix("openai:") {
            let urls = spec.dropFirst("openai:".count).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            guard !urls.isEmpty else { throw SpecError("policy \"\(spec)\": no base URL after openai:") }
            var endpoints: [OpenAIGenerator.Endpoint] = []
            for u in urls {
                let parts = u.split(separator: "#", maxSplits: 1).map(String.init)
                let base = parts[0]
                guard base.hasPrefix("http://") || base.hasPrefix("https://"), base.count > 8 else {
                    throw SpecError("policy \"\(spec)\": \"\(base)\" is not an http:// or https:// URL")
                }
                endpoints.append(.init(baseURL: base, model: parts.count > 1 && !parts[1].isEmpty ? parts[1] : nil))
            }
            // A model named once applies to every URL that names none.
            if let model = endpoints.compactMap(\.model).first {
                endpoints = endpoints.map { .init(baseURL: $0.baseURL, model: $0.model ?? model) }
            }
            return .openAI(endpoints)
        }
        if spec.hasPrefix("embedded:") {
            let parts = spec.dropFirst("embedded:".count).components(separatedBy: "+")
            guard let path = parts.first, !path.isEmpty else { throw SpecError("policy \"\(spec)\": no file after embedded:") }
            let adapters = Array(parts.dropFirst())
            for a in adapters {
                guard !a.isEmpty, !a.hasPrefix("@") else { throw SpecError("policy \"\(spec)\": an empty adapter after +") }
                if let at = a.lastIndex(of: "@"), Float(a[a.index(after: at)...]) == nil {
                    throw SpecError("policy \"\(spec)\": \"\(a)\": the scale after @ must be a number")
                }
            }
            return .embedded(path: path, adapters: adapters)
        }
        throw SpecError("policy \"\(spec)\": expected openai:http://HOST:PORT/v1[#model] or embedded:PATH.gguf")
    }

    public var description: String {
        switch self {
        case .openAI(let e): "openai:" + e.map { $0.baseURL + ($0.model.map { "#" + $0 } ?? "") }.joined(separator: ",")
        case .embedded(let p, let adapters): "embedded:" + ([p] + adapters).joined(separator: "+")
        }
    }
}

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

    public static func parse(_ spec: String) throws -> RewardSpec {
        let s = spec.trimmingCharacters(in: .whitespaces)
        // Split a mix on '+' outside URLs: a term starts with a weight and '*'.
        let terms = splitTerms(s)
        if terms.count > 1 || terms.first?.weight != nil {
            var parts: [(Double, RewardSpec)] = []
            for t in terms {
                let p = try parseSingle(t.body, whole: spec)
                parts.append((t.weight ?? 1, p))
            }
            return .mix(parts)
        }
        return try parseSingle(s, whole: spec)
    }

    static func parseSingle(_ s: String, whole: String) throws -> RewardSpec {
        if s == "rubric" || s == "rubric:strict" { return .rubric(.strict) }
        if s == "rubric:loose" { return .rubric(.loose) }
        if s == "judge" { return .judge(nil) }
        if s.hasPrefix("judge:") { return .judge(try PolicySpec.parse(String(s.dropFirst("judge:".count)))) }
        if s.hasPrefix("http:") || s.hasPrefix("https:") {
            let url = s.hasPrefix("http:http") ? String(s.dropFirst("http:".count)) : s
            _ = try HTTPRewardSpec.parse(url)  // a bad URL or option is a usage error now, not mid-run
            return .http(url)
        }
        throw SpecError("reward \"\(whole)\": \"\(s)\" is not a reward; expected rubric[:loose], judge[:POLICY], http:URL or a mix like 0.7*rubric+0.3*judge")
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
