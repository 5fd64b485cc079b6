import Foundation
import Yams

/// A YAML mapping read key by key: every value is type-checked where it is read, and a problem
/// is reported as `file:line: key: problem`; keys nobody read are unknown and refused.
final class ConfigReader {
    let file: String
    let prefix: String
    let pairs: [(key: String, value: Yams.Node, line: Int?)]
    private var used: Set<String> = []

    init(file: String, node: Yams.Node, prefix: String = "") throws {
        self.file = file
        self.prefix = prefix
        guard let mapping = node.mapping else {
            throw CLIFailure.badInput(
                "\(file)\(Self.line(node.mark?.line)): \(prefix.isEmpty ? "the config" : String(prefix.dropLast())): "
                    + "must be a mapping of settings"
            )
        }
        pairs = mapping.map { (key: $0.key.string ?? "?", value: $0.value, line: $0.key.mark?.line) }
    }

    static func line(_ l: Int?) -> String { l.map { ":\($0)" } ?? "" }

    /// The YAML document of a config file (nil when it is empty).
    static func yaml(_ path: String) throws -> Yams.Node? {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIFailure.badInput("\(path): cannot read the config: \(error.localizedDescription)")
        }
        do { return try Yams.compose(yaml: text) } catch {
            throw CLIFailure.badInput("\(path): not valid YAML: \(error)")
        }
    }

    static func load(_ path: String) throws -> ConfigReader {
        try ConfigReader(file: path, node: try yaml(path) ?? Yams.Node.mapping(.init([])))
    }

    func problem(_ key: String, _ message: String) -> CLIFailure {
        let line = pairs.first { $0.key == key }?.line
        return CLIFailure.badInput("\(file)\(Self.line(line)): \(prefix)\(key): \(message)")
    }

    func node(_ key: String) -> Yams.Node? {
        used.insert(key)
        return pairs.first { $0.key == key }?.value
    }

    func string(_ key: String) throws -> String? {
        guard let n = node(key) else { return nil }
        guard let s = n.scalar?.string else { throw problem(key, "expected a string") }
        return s
    }

    func int(_ key: String, min: Int? = nil) throws -> Int? {
        guard let n = node(key) else { return nil }
        guard let v = n.int else {
            throw problem(key, "expected a whole number, got \"\(n.scalar?.string ?? "a list or mapping")\"")
        }
        if let min, v < min { throw problem(key, "must be at least \(min), got \(v)") }
        return v
    }

    func double(_ key: String, range: ClosedRange<Double>? = nil) throws -> Double? {
        guard let n = node(key) else { return nil }
        guard let v = n.float ?? n.int.map(Double.init) else {
            throw problem(key, "expected a number, got \"\(n.scalar?.string ?? "a list or mapping")\"")
        }
        if let range, !range.contains(v) {
            throw problem(key, "must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
        }
        return v
    }

    func bool(_ key: String) throws -> Bool? {
        guard let n = node(key) else { return nil }
        guard let v = n.bool else { throw problem(key, "expected true or false") }
        return v
    }

    /// A list given as a YAML sequence or as a comma-separated string.
    func list(_ key: String) throws -> [String]? {
        guard let n = node(key) else { return nil }
        if let seq = n.sequence {
            return try seq.map { e in
                guard let s = e.scalar?.string else { throw problem(key, "expected a list of names") }
                return s
            }
        }
        guard let s = n.scalar?.string else { throw problem(key, "expected a list or a comma-separated string") }
        return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    func section(_ key: String) throws -> ConfigReader? {
        guard let n = node(key) else { return nil }
        return try ConfigReader(file: file, node: n, prefix: prefix + key + ".")
    }

    /// Refuses keys that were never read (a typo must not be ignored).
    func checkUnknown() throws {
        let known = used
        for p in pairs where !known.contains(p.key) {
            throw CLIFailure.badInput(
                "\(file)\(Self.line(p.line)): \(prefix)\(p.key): unknown setting; known here: "
                    + "\(known.sorted().joined(separator: ", "))"
            )
        }
    }
}
