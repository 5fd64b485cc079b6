import Foundation

/// `compare.json`: the runs of a `prs compare` directory, in order, one schema for the command
/// that writes it and the report that reads it.
public struct CompareManifest: Sendable {
    public struct Entry: Codable, Sendable, Hashable {
        /// The run's subdirectory and its name in tables.
        public var label: String
        /// The strategy as given (`prs:2+2@verifier`).
        public var spec: String
        public var strategy: String
        public var feedback: String
        public init(label: String, spec: String, strategy: String, feedback: String) {
            self.label = label
            self.spec = spec
            self.strategy = strategy
            self.feedback = feedback
        }

        /// Only `label` is required: a hand-written list of run directories reads too.
        public init(from decoder: any Decoder) throws {
            enum K: String, CodingKey { case label, spec, strategy, feedback }
            let c = try decoder.container(keyedBy: K.self)
            label = try c.decode(String.self, forKey: .label)
            spec = try c.decodeIfPresent(String.self, forKey: .spec) ?? label
            strategy = try c.decodeIfPresent(String.self, forKey: .strategy) ?? ""
            feedback = try c.decodeIfPresent(String.self, forKey: .feedback) ?? ""
        }
    }

    public static let fileName = "compare.json"

    public static func write(_ entries: [Entry], to root: URL) throws {
        try RunFiles.write(
            try RunFiles.prettyJSON(entries), to: root.appendingPathComponent(fileName), what: "the comparison's list")
    }

    /// The entries of `root/compare.json`; nil when there is none (or it is not one).
    public static func read(_ root: URL) -> [Entry]? {
        guard let data = try? Data(contentsOf: root.appendingPathComponent(fileName)) else { return nil }
        return try? JSONDecoder().decode([Entry].self, from: data)
    }
}
