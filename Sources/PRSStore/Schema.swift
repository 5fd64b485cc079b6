import GRDB

/// The store's migrations. A shipped migration is never edited: a change is a new one.
enum Schema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.create(table: "run") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("settings", .text).notNull()  // JSON: the settings compared on resume
                t.column("prs_version", .text).notNull()
                t.column("policy", .text).notNull()
                t.column("reward", .text).notNull()
                t.column("feedback", .text).notNull()
                t.column("files", .text).notNull()  // JSON: path → content hash
                t.column("created_at", .datetime).notNull()
                t.column("wall_seconds", .double).notNull().defaults(to: 0)  // summed over every process that worked on the run
            }
            try db.create(table: "item") { t in
                t.primaryKey("id", .text)
                t.column("position", .integer).notNull()
                t.column("prompt", .text).notNull()  // JSON of the PromptItem
                t.column("state", .text).notNull()  // pending, running, done, failed
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("error", .text)
                t.column("best_node", .integer)
                t.column("started_at", .datetime)
                t.column("finished_at", .datetime)
                t.column("elapsed_ms", .double)
            }
            try db.create(table: "node") { t in
                t.column("item_id", .text).notNull().references("item", onDelete: .cascade)
                t.column("node_id", .integer).notNull()
                t.primaryKey(["item_id", "node_id"])
                t.column("parent_id", .integer)
                t.column("kind", .text).notNull()
                t.column("layer", .integer).notNull()
                t.column("text", .text).notNull()
                t.column("reward", .double)
                t.column("reward_error", .text)
                t.column("seed", .integer)
                t.column("params", .text).notNull()  // JSON of the sampling parameters
                t.column("prompt_tokens", .integer).notNull()
                t.column("completion_tokens", .integer).notNull()
                t.column("latency_ms", .double).notNull()
                t.column("finish_reason", .text).notNull()
                t.column("improving", .boolean)
                t.column("source", .text)
                t.column("created_at", .datetime).notNull()
            }
            try db.create(table: "node_reward") { t in
                t.column("item_id", .text).notNull()
                t.column("node_id", .integer).notNull()
                t.column("component", .text).notNull()
                t.column("value", .double).notNull()
                t.primaryKey(["item_id", "node_id", "component"])
                t.foreignKey(["item_id", "node_id"], references: "node", onDelete: .cascade)
            }
            try db.create(table: "invalid_line") { t in
                t.column("file", .text).notNull()
                t.column("line", .integer).notNull()
                t.column("problem", .text).notNull()
                t.primaryKey(["file", "line"])
            }
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull()
                t.column("kind", .text).notNull()
                t.column("item_id", .text)
                t.column("detail", .text)
            }
        }
        return m
    }
}
