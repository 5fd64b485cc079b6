import Foundation
import GRDB
import PRSCore

extension RunStore {
    /// Adds items not yet in the store as pending, at their position in the prompt set.
    /// Items already stored keep their state and nodes.
    public func register(_ items: [(position: Int, item: PromptItem)]) throws {
        try write("register the prompts") { db in
            for (position, item) in items {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO item (id, position, prompt, state) VALUES (?, ?, ?, 'pending')",
                    arguments: [item.id, position, try Self.json(item)])
            }
        }
    }

    /// Every stored item, in prompt-set order.
    public func items() throws -> [StoredItem] {
        try read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, position, prompt, state, attempts, error FROM item ORDER BY position, id"
            ).map { row in
                StoredItem(
                    item: try Self.decode(PromptItem.self, row["prompt"]), position: row["position"],
                    state: ItemState(rawValue: row["state"]) ?? .pending, attempts: row["attempts"], error: row["error"]
                )
            }
        }
    }

    /// Items per state (every state present, zero when none).
    public func counts() throws -> [ItemState: Int] {
        try read { db in
            var out = Dictionary(uniqueKeysWithValues: ItemState.allCases.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM item GROUP BY state") {
                if let s = ItemState(rawValue: row["state"]) { out[s] = row["n"] }
            }
            return out
        }
    }

    /// Marks an item as being worked on.
    public func begin(_ id: String) throws {
        try write("start item \(id)") { db in
            try db.execute(
                sql: "UPDATE item SET state = 'running', started_at = ? WHERE id = ?",
                arguments: [Date(), id])
        }
    }

    /// New nodes of an item's tree, committed together with the item's state.
    public func append(_ nodes: [Node], to id: String) throws {
        try write("save nodes of item \(id)") { db in
            for n in nodes { try Self.upsert(db, n, item: id) }
            try db.execute(sql: "UPDATE item SET state = 'running' WHERE id = ?", arguments: [id])
        }
    }

    /// The finished tree: every node as finally scored, the best answer, state done.
    public func finish(_ tree: Tree, elapsedMs: Double) throws {
        try write("finish item \(tree.id)") { db in
            for n in tree.nodes { try Self.upsert(db, n, item: tree.id) }
            try db.execute(
                sql:
                    "UPDATE item SET state = 'done', best_node = ?, finished_at = ?, elapsed_ms = "
                    + "COALESCE(elapsed_ms, 0) + ?, error = NULL WHERE id = ?",
                arguments: [tree.bestID, Date(), elapsedMs, tree.id])
        }
    }

    /// A failed attempt, counted: its nodes stay (a retry continues from them), the error is kept.
    /// Attempts cut short by a kill or a signal are not counted, so they never use up retries.
    public func fail(_ id: String, error: String) throws {
        try write("record the failure of item \(id)") { db in
            try db.execute(
                sql:
                    "UPDATE item SET state = 'failed', attempts = attempts + 1, error = ?, finished_at = ? "
                    + "WHERE id = ?",
                arguments: [error, Date(), id])
            try Self.event(db, "item-failed", item: id, detail: error)
        }
    }

    /// An item's nodes in generation order, with their reward components.
    public func nodes(of id: String) throws -> [Node] {
        try read { db in try Self.nodes(db, item: id) }
    }

    /// The trees of finished items, in prompt-set order.
    public func trees(strategy: String) throws -> [Tree] {
        try read { db in
            try String.fetchAll(db, sql: "SELECT id FROM item WHERE state = 'done' ORDER BY position, id").map { id in
                Tree(id: id, strategy: strategy, nodes: try Self.nodes(db, item: id))
            }
        }
    }

    static func upsert(_ db: Database, _ n: Node, item: String) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO node (item_id, node_id, parent_id, kind, layer, text, reward, reward_error, \
                seed, params,
                    prompt_tokens, completion_tokens, latency_ms, finish_reason, improving, source, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                item, n.id, n.parentID, n.kind.rawValue, n.layer, n.text, n.reward, n.rewardError,
                n.seed.map { Int64(bitPattern: $0) }, try json(n.params), n.usage.promptTokens,
                n.usage.completionTokens,
                n.latencyMs, n.finishReason.rawValue, n.improving, n.source, Date(),
            ])
        try db.execute(sql: "DELETE FROM node_reward WHERE item_id = ? AND node_id = ?", arguments: [item, n.id])
        for (component, value) in n.rewards ?? [:] {
            try db.execute(
                sql: "INSERT INTO node_reward (item_id, node_id, component, value) VALUES (?, ?, ?, ?)",
                arguments: [item, n.id, component, value])
        }
    }

    static func nodes(_ db: Database, item: String) throws -> [Node] {
        var rewards: [Int: [String: Double]] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT node_id, component, value FROM node_reward WHERE item_id = ?", arguments: [item])
        {
            rewards[row["node_id"], default: [:]][row["component"]] = row["value"]
        }
        return try Row.fetchAll(db, sql: "SELECT * FROM node WHERE item_id = ? ORDER BY node_id", arguments: [item]).map
        { row in
            let id: Int = row["node_id"]
            let seed: Int64? = row["seed"]
            return Node(
                id: id, parentID: row["parent_id"], kind: NodeKind(rawValue: row["kind"]) ?? .initial,
                layer: row["layer"],
                text: row["text"], reward: row["reward"], rewards: rewards[id], rewardError: row["reward_error"],
                seed: seed.map { UInt64(bitPattern: $0) }, params: try decode(SamplingParameters.self, row["params"]),
                usage: TokenUsage(promptTokens: row["prompt_tokens"], completionTokens: row["completion_tokens"]),
                latencyMs: row["latency_ms"], finishReason: FinishReason(rawValue: row["finish_reason"]) ?? .other,
                improving: row["improving"], source: row["source"])
        }
    }
}
