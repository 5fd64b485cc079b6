import Foundation
import GRDB
import PRSCore

/// A loop stage as the store holds it.
public struct StoredStage: Sendable, Hashable {
    public enum State: String, Sendable, Hashable, Codable { case running, done, failed }
    public var key: StageKey
    public var state: State
    /// The stage's outcome (JSON the runner wrote), when done.
    public var result: Data?
    /// Seconds spent on the stage, summed over every process that worked on it.
    public var seconds: Double
    public var attempts: Int
    public var error: String?
}

/// The loop store, `LOOP/loop.sqlite`: the loop's settings and each stage's state and outcome,
/// the source of truth of a loop. A stage is marked done in one transaction with its outcome, so
/// a killed loop redoes at most the stage it was in (which resumes from its own files: a sample
/// run's store, a trainer's checkpoint).
public struct LoopStore: Sendable {
    let writer: any DatabaseWriter
    public let url: URL
    let lock: RunLock?

    /// Opens (creating) `directory/loop.sqlite` for writing, taking `directory/loop.lock`.
    public static func open(directory: URL) throws -> LoopStore {
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw StoreError("\(directory.path): cannot create the loop directory: \(error.localizedDescription)")
        }
        let lock = try RunLock(directory: directory, name: "loop.lock")
        return try LoopStore(url: directory.appendingPathComponent("loop.sqlite"), lock: lock, readOnly: false)
    }

    /// Opens an existing loop store to read (reports); takes no lock.
    public static func read(directory: URL) throws -> LoopStore {
        let url = directory.appendingPathComponent("loop.sqlite")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw StoreError("\(url.path): no loop store here (is \(directory.path) a prs loop directory?)")
        }
        return try LoopStore(url: url, lock: nil, readOnly: true)
    }

    public static func isLoop(_ directory: URL) -> Bool {
        FileManager.default.fileExists(atPath: directory.appendingPathComponent("loop.sqlite").path)
    }

    init(url: URL, lock: RunLock?, readOnly: Bool) throws {
        self.url = url
        self.lock = lock
        var config = Configuration()
        config.readonly = readOnly
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        do {
            writer =
                readOnly
                ? try DatabaseQueue(path: url.path, configuration: config)
                : try DatabasePool(path: url.path, configuration: config)
            let check = try writer.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
            guard check == "ok" else { throw StoreError("the integrity check says: \(check ?? "nothing")") }
            if !readOnly { try Self.migrator.migrate(writer) }
        } catch {
            throw StoreError(
                "\(url.path): cannot use the loop store: \(RunStore.explain(error)). The file is left as it is; move "
                    + "the loop directory away to start over"
            )
        }
    }

    /// The store's migrations; a shipped one is never edited.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.create(table: "loop") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("settings", .text).notNull()  // JSON: flat settings compared on resume
                t.column("created_at", .datetime).notNull()
            }
            try db.create(table: "stage") { t in
                t.column("chain", .text).notNull()
                t.column("iteration", .integer).notNull()
                t.column("stage", .text).notNull()
                t.primaryKey(["chain", "iteration", "stage"])
                t.column("state", .text).notNull()  // running, done, failed
                t.column("result", .blob)  // JSON written by the runner
                t.column("seconds", .double).notNull().defaults(to: 0)
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("error", .text)
                t.column("started_at", .datetime)
                t.column("finished_at", .datetime)
            }
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull()
                t.column("kind", .text).notNull()
                t.column("detail", .text)
            }
        }
        return m
    }

    func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        do { return try writer.write(body) } catch let e as DatabaseError {
            throw StoreError("\(url.path): cannot \(what): \(RunStore.explain(e))")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try writer.read(body) } catch let e as DatabaseError {
            throw StoreError("\(url.path): cannot read: \(RunStore.explain(e))")
        }
    }

    /// The settings the loop was started with (nil for a new loop).
    public func settings() throws -> [String: String]? {
        try read { db in
            guard let text = try String.fetchOne(db, sql: "SELECT settings FROM loop WHERE id = 1") else { return nil }
            return try JSONDecoder().decode([String: String].self, from: Data(text.utf8))
        }
    }

    public func saveSettings(_ settings: [String: String]) throws {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        let text = String(decoding: try e.encode(settings), as: UTF8.self)
        try write("record the loop's settings") { db in
            try db.execute(
                sql:
                    "INSERT INTO loop (id, settings, created_at) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    + "settings = excluded.settings",
                arguments: [text, Date()])
        }
    }

    public func stages() throws -> [StoredStage] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM stage ORDER BY rowid").compactMap(Self.stage)
        }
    }

    public func stage(_ key: StageKey) throws -> StoredStage? {
        try read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM stage WHERE chain = ? AND iteration = ? AND stage = ?",
                arguments: [key.chain, key.iteration, key.stage.rawValue]
            ).flatMap(Self.stage)
        }
    }

    static func stage(_ row: Row) -> StoredStage? {
        guard let s = LoopStage(rawValue: row["stage"]), let state = StoredStage.State(rawValue: row["state"]) else {
            return nil
        }
        return StoredStage(
            key: StageKey(chain: row["chain"], iteration: row["iteration"], stage: s), state: state,
            result: row["result"], seconds: row["seconds"], attempts: row["attempts"], error: row["error"])
    }

    /// Marks a stage running (a stage left running by a killed process stays so until it ends).
    public func begin(_ key: StageKey) throws {
        try write("start \(key)") { db in
            try db.execute(
                sql: """
                    INSERT INTO stage (chain, iteration, stage, state, started_at) VALUES (?, ?, ?, 'running', ?)
                    ON CONFLICT(chain, iteration, stage) DO UPDATE SET state = 'running', started_at = \
                    excluded.started_at, error = NULL
                    """, arguments: [key.chain, key.iteration, key.stage.rawValue, Date()])
            try Self.event(db, "begin", "\(key)")
        }
    }

    /// Records the stage's outcome and the seconds this process spent on it, in one transaction.
    public func finish(_ key: StageKey, result: Data, seconds: Double) throws {
        try write("finish \(key)") { db in
            try db.execute(
                sql: """
                    UPDATE stage SET state = 'done', result = ?, seconds = seconds + ?, finished_at = ?
                    WHERE chain = ? AND iteration = ? AND stage = ?
                    """, arguments: [result, seconds, Date(), key.chain, key.iteration, key.stage.rawValue])
            try Self.event(db, "finish", "\(key)")
        }
    }

    /// Records a failed attempt and the seconds it took.
    public func fail(_ key: StageKey, error: String, seconds: Double) throws {
        try write("record the failure of \(key)") { db in
            try db.execute(
                sql: """
                    UPDATE stage SET state = 'failed', error = ?, attempts = attempts + 1, seconds = seconds + ?
                    WHERE chain = ? AND iteration = ? AND stage = ?
                    """, arguments: [error, seconds, key.chain, key.iteration, key.stage.rawValue])
            try Self.event(db, "fail", "\(key): \(error)")
        }
    }

    /// Adds time spent on a stage that was interrupted (so wall time survives a resume).
    public func addSeconds(_ key: StageKey, _ seconds: Double) throws {
        try write("record the time of \(key)") { db in
            try db.execute(
                sql: "UPDATE stage SET seconds = seconds + ? WHERE chain = ? AND iteration = ? AND stage = ?",
                arguments: [seconds, key.chain, key.iteration, key.stage.rawValue])
        }
    }

    public func log(_ kind: String, detail: String? = nil) throws {
        try write("log") { db in try Self.event(db, kind, detail) }
    }

    static func event(_ db: Database, _ kind: String, _ detail: String?) throws {
        try db.execute(sql: "INSERT INTO event (at, kind, detail) VALUES (?, ?, ?)", arguments: [Date(), kind, detail])
    }
}
