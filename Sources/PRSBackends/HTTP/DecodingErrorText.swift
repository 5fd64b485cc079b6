/// A decoding error as a path and a reason, e.g. `choices[0].message: expected an object`,
/// so a message about a bad body names the field at fault.
func describeDecodingError(_ error: any Error) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        let p = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().drop { $0 == "." }
            .description
        return p.isEmpty ? "the body" : p
    }
    switch error as? DecodingError {
    case .dataCorrupted(let c)?:
        return c.codingPath.isEmpty ? "it is not valid JSON" : "\(path(c.codingPath)): \(c.debugDescription)"
    case .keyNotFound(let k, let c)?: return "\(path(c.codingPath + [k])) is missing"
    case .typeMismatch(let t, let c)?: return "\(path(c.codingPath)): expected \(t)"
    case .valueNotFound(let t, let c)?: return "\(path(c.codingPath)): expected \(t), found null"
    default: return String(describing: error)
    }
}
