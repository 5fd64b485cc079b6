import Foundation
import GRDB
import PRSCore

extension RunStore {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func json<T: Encodable>(_ v: T) throws -> String { String(decoding: try encoder.encode(v), as: UTF8.self) }
    static func decode<T: Decodable>(_ t: T.Type, _ s: String) throws -> T {
        try JSONDecoder().decode(t, from: Data(s.utf8))
    }

    /// The run's stored settings and identities; `nil` for a new store.
    public func info() throws -> RunInfo? {
        try read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = 1") else { return nil }
            return RunInfo(
                settings: try Self.decode([String: String].self, row["settings"]),
                prsVersion: row["prs_version"], policy: row["policy"], reward: row["reward"], feedback: row["feedback"],
                files: try Self.decode([String: String].self, row["files"]), createdAt: row["created_at"])
        }
    }

    /// Records the run's settings; with `replace`, over different ones (`--force`).
    public func saveInfo(_ info: RunInfo, replace: Bool = false) throws {
        try write("record the run's settings") { db in
            try db.execute(
                sql: """
                    INSERT \(replace ? "OR REPLACE" : "") INTO run (id, settings, prs_version, policy, reward, \
                    feedback, files, created_at)
                    VALUES (1, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    try Self.json(info.settings), info.prsVersion, info.policy, info.reward, info.feedback,
                    try Self.json(info.files), info.createdAt,
                ])
            try Self.event(db, "settings", item: nil, detail: replace ? "replaced (--force)" : "recorded")
        }
    }

    /// Adds the wall time of one process's work to the run's total.
    public func addWallTime(_ seconds: Double) throws {
        try write("record the wall time") { db in
            try db.execute(sql: "UPDATE run SET wall_seconds = wall_seconds + ? WHERE id = 1", arguments: [seconds])
        }
    }

    /// Wall time of every process that worked on the run.
    public func wallTime() throws -> Double {
        try read { db in try Double.fetchOne(db, sql: "SELECT wall_seconds FROM run WHERE id = 1") ?? 0 }
    }

    /// Appends to the run's event log (run started, resumed, interrupted, items failed).
    public func log(_ kind: String, item: String? = nil, detail: String? = nil) throws {
        try write("log an event") { db in try Self.event(db, kind, item: item, detail: detail) }
    }

    static func event(_ db: Database, _ kind: String, item: String?, detail: String?) throws {
        try db.execute(
            sql: "INSERT INTO event (at, kind, item_id, detail) VALUES (?, ?, ?, ?)",
            arguments: [Date(), kind, item, detail])
    }

    /// Prompt lines that could not be read and were skipped, so a resume does not report them again.
    public func recordInvalidLines(_ problems: [PromptProblem]) throws {
        try write("record skipped prompt lines") { db in
            for p in problems {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO invalid_line (file, line, problem) VALUES (?, ?, ?)",
                    arguments: [p.file, p.line, p.description])
            }
        }
    }

    public func invalidLineCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM invalid_line") ?? 0 }
    }
}
