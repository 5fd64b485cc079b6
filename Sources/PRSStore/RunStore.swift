import Foundation
import GRDB
import PRSCore

/// The run store, `RUN/run.sqlite`: the source of truth of a run. SQLite through GRDB, in WAL
/// mode. Every write method is one transaction that keeps the store consistent: a node and its
/// rewards are committed with the item's state change, so a crash at any point loses at most
/// the request in flight and never leaves half a step.
///
/// Durability: `synchronous=FULL` by default (a committed node survives power loss);
/// `.normal` trades that for speed (a committed node survives a crash of prs, not of the machine).
public struct RunStore: Sendable {
    public enum Durability: String, Sendable, CaseIterable { case full, normal }

    let writer: any DatabaseWriter
    public let url: URL
    /// Held while the store is open for writing; released when the last copy goes.
    let lock: RunLock?

    /// Opens (creating) `directory/run.sqlite` for writing, taking the directory's lock.
    public static func open(directory: URL, durability: Durability = .full) throws -> RunStore {
        do { try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true) } catch {
            throw StoreError("\(directory.path): cannot create the run directory: \(error.localizedDescription)")
        }
        let lock = try RunLock(directory: directory)
        return try RunStore(
            url: directory.appendingPathComponent("run.sqlite"), lock: lock, durability: durability, readOnly: false)
    }

    /// Opens an existing store to read (inspect, export, merge sources); takes no lock.
    public static func read(directory: URL) throws -> RunStore {
        let url = directory.appendingPathComponent("run.sqlite")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw StoreError("\(url.path): no run store here (is \(directory.path) a run directory?)")
        }
        return try RunStore(url: url, lock: nil, durability: .full, readOnly: true)
    }

    init(url: URL, lock: RunLock?, durability: Durability, readOnly: Bool) throws {
        self.url = url
        self.lock = lock
        var config = Configuration()
        config.readonly = readOnly
        config.foreignKeysEnabled = true
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
        }
        do {
            if readOnly {
                writer = try DatabaseQueue(path: url.path, configuration: config)
            } else {
                writer = try DatabasePool(path: url.path, configuration: config)
            }
            // A damaged file is reported before anything is written to it.
            let check = try writer.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
            guard check == "ok" else { throw StoreError("the integrity check says: \(check ?? "nothing")") }
            if !readOnly { try Schema.migrator.migrate(writer) }
        } catch {
            throw StoreError(
                "\(url.path): cannot use the run store: \(Self.explain(error)). The file is left as it is; move it "
                    + "(and its -wal/-shm files) away to start the run over"
            )
        }
    }

    static func explain(_ error: any Error) -> String {
        if let e = error as? DatabaseError {
            switch e.resultCode {
            case .SQLITE_NOTADB: return "it is not an SQLite database (corrupted or not a prs store)"
            case .SQLITE_CORRUPT: return "the database is corrupted (\(e.message ?? ""))"
            case .SQLITE_FULL: return "the disk is full"
            case .SQLITE_READONLY, .SQLITE_CANTOPEN, .SQLITE_PERM:
                return "it cannot be written (\(e.message ?? "read-only"))"
            default: return e.message ?? "\(e)"
            }
        }
        return "\(error)"
    }

    /// Runs a write transaction, turning SQLite's errors into ones that say what to do.
    func write<T>(_ what: String, _ body: (Database) throws -> T) throws -> T {
        do { return try writer.write(body) } catch let e as DatabaseError {
            let hint =
                e.resultCode == .SQLITE_FULL
                ? "; work committed before this is kept: free space and run the same command to resume" : ""
            throw StoreError("\(url.path): cannot \(what): \(Self.explain(e))\(hint)")
        }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try writer.read(body) } catch let e as DatabaseError {
            throw StoreError("\(url.path): cannot read: \(Self.explain(e))")
        }
    }
}
