import Foundation
import PRSCore
import PRSStore

/// The files of a run directory written from the store: `trees.jsonl` (one tree a line, every
/// node) and `summary.json`. Each is replaced atomically, so a reader never sees half a file.
public enum RunFiles {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    public static func jsonLines<T: Encodable>(_ values: [T]) throws -> Data {
        var data = Data()
        for v in values {
            data += try encoder.encode(v)
            data.append(UInt8(ascii: "\n"))
        }
        return data
    }

    /// One indented JSON document (summaries, AlpacaEval arrays), ending with a newline.
    public static func prettyJSON<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var data = try e.encode(value)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    public static func write(_ data: Data, to url: URL, what: String) throws {
        do { try data.write(to: url, options: .atomic) } catch {
            throw RunError("\(url.path): cannot write \(what): \(error.localizedDescription)")
        }
    }

    public static func writeTrees(_ trees: [Tree], to directory: URL) throws {
        try write(try jsonLines(trees), to: directory.appendingPathComponent("trees.jsonl"), what: "the trees")
    }

    public static func writeSummary(
        _ s: StrategySummary, failures: [(String, String)], counts: [ItemState: Int],
        interrupted: Bool, engine: EngineReport? = nil, to directory: URL
    ) throws {
        struct Failure: Encodable {
            var id: String
            var error: String
        }
        struct File: Encodable {
            var strategies: [StrategySummary]
            var items: [String: Int]
            var failures: [Failure]
            var interrupted: Bool
            var engine: EngineReport?
        }
        let file = File(
            strategies: [s], items: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            failures: failures.map { Failure(id: $0.0, error: $0.1) }, interrupted: interrupted, engine: engine)
        try write(try prettyJSON(file), to: directory.appendingPathComponent("summary.json"), what: "the summary")
    }

    /// The strategy summaries of a run's `summary.json`, as `writeSummary` wrote them.
    public static func readSummaries(in directory: URL) throws -> [StrategySummary] {
        struct File: Decodable { var strategies: [StrategySummary] }
        let url = directory.appendingPathComponent("summary.json")
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw RunError(
                "\(url.path): cannot read (is \(directory.path) a run directory?): \(error.localizedDescription)")
        }
        do { return try JSONDecoder().decode(File.self, from: data).strategies } catch {
            throw RunError("\(url.path): not a prs summary: \(error)")
        }
    }
}
