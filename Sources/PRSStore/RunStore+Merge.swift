import Foundation
import GRDB
import PRSCore

extension RunStore {
    /// Copies every item of `source` (with its state, nodes and rewards) into this store, in
    /// one transaction. Items already here are an error: shards must not overlap.
    public func merge(from source: RunStore) throws {
        let items = try source.items()
        var trees: [(String, [Node])] = []
        for s in items { trees.append((s.item.id, try source.nodes(of: s.item.id))) }
        try write("merge \(source.url.path)") { db in
            for s in items {
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM item WHERE id = ?", arguments: [s.item.id]) == true {
                    throw StoreError("item \"\(s.item.id)\" is in more than one shard (again in \(source.url.path))")
                }
                try db.execute(
                    sql: "INSERT INTO item (id, position, prompt, state, attempts, error) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [s.item.id, s.position, try Self.json(s.item), s.state.rawValue, s.attempts, s.error])
            }
            for (id, nodes) in trees {
                for n in nodes { try Self.upsert(db, n, item: id) }
                try db.execute(
                    sql: "UPDATE item SET best_node = ? WHERE id = ?",
                    arguments: [Selection.best(among: nodes)?.id, id])
            }
            try Self.event(db, "merged", item: nil, detail: source.url.path)
        }
    }
}
