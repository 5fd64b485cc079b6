import Foundation

/// A value in a chat template, with Python's semantics as Jinja2 gives them: truthiness, `+`,
/// comparisons, `str()` and `repr()` of lists and dicts, and dicts that keep their keys' order.
public indirect enum JinjaValue: Sendable, Hashable {
    case none
    /// An undefined name (renders as nothing; any attribute of it is an error).
    case undefined(String)
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    case dict([(String, JinjaValue)])
    /// A macro or a built-in function, by name (called through the renderer).
    case callable(String)
    /// `namespace(...)`: a mutable record, by its slot in the renderer.
    case namespace(Int)

    public static func == (a: JinjaValue, b: JinjaValue) -> Bool {
        switch (a, b) {
        case (.none, .none): true
        case (.undefined, .undefined): true
        case (.bool(let x), .bool(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.list(let x), .list(let y)): x == y
        case (.dict(let x), .dict(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.callable(let x), .callable(let y)): x == y
        case (.namespace(let x), .namespace(let y)): x == y
        default:
            if let x = a.number, let y = b.number { x == y } else { false }
        }
    }

    public func hash(into h: inout Hasher) { h.combine(str) }

    /// Numbers as Double (booleans count, as in Python).
    var number: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        case .bool(let b): b ? 1 : 0
        default: nil
        }
    }

    var isDefined: Bool { if case .undefined = self { false } else { true } }

    var truthy: Bool {
        switch self {
        case .none, .undefined: false
        case .bool(let b): b
        case .int(let i): i != 0
        case .double(let d): d != 0
        case .string(let s): !s.isEmpty
        case .list(let l): !l.isEmpty
        case .dict(let d): !d.isEmpty
        case .callable, .namespace: true
        }
    }

    subscript(key: String) -> JinjaValue? {
        guard case .dict(let d) = self else { return nil }
        return d.first { $0.0 == key }?.1
    }

    /// Python's `str()`.
    var str: String {
        switch self {
        case .none: "None"
        case .undefined: ""
        case .bool(let b): b ? "True" : "False"
        case .int(let i): String(i)
        case .double(let d): Self.pythonFloat(d)
        case .string(let s): s
        case .list, .dict: repr
        case .callable(let n): "<function \(n)>"
        case .namespace: "<Namespace>"
        }
    }

    /// Python's `repr()`.
    var repr: String {
        switch self {
        case .string(let s): Self.pythonRepr(s)
        case .list(let l): "[" + l.map(\.repr).joined(separator: ", ") + "]"
        case .dict(let d): "{" + d.map { Self.pythonRepr($0.0) + ": " + $0.1.repr }.joined(separator: ", ") + "}"
        default: str
        }
    }

    static func pythonFloat(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
        return "\(d)"
    }

    /// A string as Python's repr writes it: single quotes unless the text has one and no double.
    static func pythonRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for ch in s.unicodeScalars {
            if let e = commonEscape(ch) {
                out += e
            } else if Character(ch) == quote {
                out += "\\" + String(quote)
            } else if ch.value < 0x20 || ch.value == 0x7F {
                out += String(format: "\\x%02x", ch.value)
            } else {
                out.unicodeScalars.append(ch)
            }
        }
        return out + String(quote)
    }

    /// JSON as Python's `json.dumps(x, ensure_ascii=False)` writes it (transformers' `tojson`),
    /// with `indent` spaces per level when given.
    public func json(indent: Int?, level: Int = 0) -> String {
        let pad = indent.map { "\n" + String(repeating: " ", count: $0 * (level + 1)) }
        let close = indent.map { "\n" + String(repeating: " ", count: $0 * level) }
        switch self {
        case .none, .undefined: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d):
            return d.isFinite ? Self.pythonFloat(d) : (d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity"))
        case .string(let s): return Self.jsonString(s)
        case .list(let l):
            if l.isEmpty { return "[]" }
            let items = l.map { $0.json(indent: indent, level: level + 1) }
            if let pad, let close { return "[" + pad + items.joined(separator: "," + pad) + close + "]" }
            return "[" + items.joined(separator: ", ") + "]"
        case .dict(let d):
            if d.isEmpty { return "{}" }
            let items = d.map { Self.jsonString($0.0) + ": " + $0.1.json(indent: indent, level: level + 1) }
            if let pad, let close { return "{" + pad + items.joined(separator: "," + pad) + close + "}" }
            return "{" + items.joined(separator: ", ") + "}"
        case .callable, .namespace: return "null"
        }
    }

    /// The escapes Python's repr and JSON share: backslash, newline, carriage return, tab.
    static func commonEscape(_ ch: Unicode.Scalar) -> String? {
        switch ch {
        case "\\": "\\\\"
        case "\n": "\\n"
        case "\r": "\\r"
        case "\t": "\\t"
        default: nil
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            if let e = commonEscape(ch) {
                out += e
                continue
            }
            switch ch {
            case "\"": out += "\\\""
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if ch.value < 0x20 { out += String(format: "\\u%04x", ch.value) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out + "\""
    }

    /// The value of a JSON-like Swift value (strings, numbers, booleans, arrays, string-keyed dictionaries).
    public static func from(_ any: Any?) -> JinjaValue {
        switch any {
        case nil: return .none
        case let v as JinjaValue: return v
        case let s as String: return .string(s)
        case let b as Bool: return .bool(b)
        case let i as Int: return .int(i)
        case let d as Double: return .double(d)
        case let a as [Any]: return .list(a.map { from($0) })
        case let pairs as [(String, Any)]: return .dict(pairs.map { ($0.0, from($0.1)) })
        case let d as [String: Any]: return .dict(d.keys.sorted().map { ($0, from(d[$0])) })
        default: return .string("\(any!)")
        }
    }
}
