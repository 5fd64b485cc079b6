import Foundation
import PRSCore

/// Reading a request body into the shared JSON value (PRSCore): checked for size, depth and
/// encoding first, with errors a client can act on.
extension JSONValue {
    /// The deepest nesting of arrays and objects in `bytes` (strings skipped), stopping early past `limit`.
    static func depth(of bytes: some Collection<UInt8>, limit: Int) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for b in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if b == UInt8(ascii: "\\") {
                    escaped = true
                } else if b == UInt8(ascii: "\"") {
                    inString = false
                }
                continue
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                deepest = max(deepest, depth)
                if deepest > limit { return deepest }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            default: break
            }
        }
        return deepest
    }

    /// Parses a request body: an object, at most 32 levels deep.
    static func parseObject(_ bytes: [UInt8]) throws(APIError) -> [String: JSONValue] {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw .invalid("the request body is empty; expected a JSON object")
        }
        guard depth(of: bytes, limit: 32) <= 32 else {
            throw .invalid("the request body nests arrays or objects more than 32 levels deep")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw .invalid("the request body is not valid UTF-8")
        }
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) } catch {
            throw .invalid("the request body is not valid JSON: \(Self.reason(error))")
        }
        guard case .object(let o) = value else { throw .invalid("the request body must be a JSON object") }
        return o
    }

    static func reason(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let c) = error {
            return (c.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                ?? c.debugDescription
        }
        return "\(error)"
    }

}

/// Typed, range-checked reads of a request's fields; every error names its field. Fields the
/// server does not know are ignored, as OpenAI's clients expect.
struct Fields {
    let object: [String: JSONValue]
    /// The prefix of nested fields' names (`stream_options.`).
    var prefix = ""

    subscript(_ name: String) -> JSONValue? {
        guard let v = object[name], v != .null else { return nil }
        return v
    }

    func wrong(_ name: String, _ expected: String, _ v: JSONValue) -> APIError {
        .invalid("\(prefix + name) must be \(expected), not \(v.typeName)", param: prefix + name)
    }

    func int(_ name: String, _ range: ClosedRange<Int64>) throws(APIError) -> Int? {
        guard let v = self[name] else { return nil }
        let i: Int64
        switch v {
        case .int(let x): i = x
        case .double(let d) where d == d.rounded() && abs(d) < 9e15: i = Int64(d)
        case .double: throw .invalid("\(prefix + name) must be an integer", param: prefix + name)
        default: throw wrong(name, "an integer", v)
        }
        guard range.contains(i) else {
            throw .invalid(
                "\(prefix + name) must be between \(range.lowerBound) and \(range.upperBound); got \(i)",
                param: prefix + name)
        }
        return Int(i)
    }

    func double(_ name: String, _ range: ClosedRange<Double>) throws(APIError) -> Double? {
        guard let v = self[name] else { return nil }
        let d: Double
        switch v {
        case .int(let x): d = Double(x)
        case .double(let x): d = x
        default: throw wrong(name, "a number", v)
        }
        guard range.contains(d) else {
            throw .invalid(
                "\(prefix + name) must be between \(Self.show(range.lowerBound)) and \(Self.show(range.upperBound)); "
                    + "got \(Self.show(d))",
                param: prefix + name)
        }
        return d
    }

    static func show(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d) }

    func bool(_ name: String) throws(APIError) -> Bool? {
        guard let v = self[name] else { return nil }
        guard case .bool(let b) = v else { throw wrong(name, "a boolean", v) }
        return b
    }

    func string(_ name: String) throws(APIError) -> String? {
        guard let v = self[name] else { return nil }
        guard case .string(let s) = v else { throw wrong(name, "a string", v) }
        return s
    }

    func object(_ name: String) throws(APIError) -> Fields? {
        guard let v = self[name] else { return nil }
        guard case .object(let o) = v else { throw wrong(name, "an object", v) }
        return Fields(object: o, prefix: prefix + name + ".")
    }

    /// `stop`: a string or an array of up to `limit` strings.
    func strings(_ name: String, limit: Int) throws(APIError) -> [String]? {
        guard let v = self[name] else { return nil }
        switch v {
        case .string(let s): return [s]
        case .array(let a):
            guard a.count <= limit else {
                throw .invalid("\(prefix + name) holds at most \(limit) strings; got \(a.count)", param: prefix + name)
            }
            var out: [String] = []
            for (i, e) in a.enumerated() {
                guard case .string(let s) = e else {
                    throw .invalid("\(prefix + name)[\(i)] must be a string, not \(e.typeName)", param: prefix + name)
                }
                out.append(s)
            }
            return out
        default: throw wrong(name, "a string or an array of strings", v)
        }
    }
}
