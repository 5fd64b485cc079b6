import Foundation
import PRSCore
import PRSStore
import Testing

func tempRun(_ name: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("prs-store-\(name)-\(UUID().uuidString.prefix(8))")
}

func node(_ id: Int, _ kind: NodeKind = .initial, reward: Double? = 0.5, parent: Int? = nil) -> Node {
    Node(
        id: id, parentID: parent, kind: kind, layer: kind == .initial ? 0 : 1, text: "text \(id) — ünïcode",
        reward: kind == .feedback ? nil : reward,
        rewards: kind == .feedback ? nil : ["judge": reward ?? 0, "rubric/x": 1], seed: UInt64.max - UInt64(id),
        params: SamplingParameters(temperature: 0.8, topK: 50, seed: 7),
        usage: TokenUsage(promptTokens: 3, completionTokens: 4),
        latencyMs: 12.5, finishReason: .length, improving: kind == .refinement ? true : nil,
        source: kind == .feedback ? "verifier" : nil)
}

@Suite struct RunStoreTests {
    let items = [
        PromptItem(id: "a", instruction: "x"),
        PromptItem(id: "b", instruction: "y", preference: Preference(text: "short")),
    ]

    @Test func nodesRoundTripExactly() throws {
        let dir = tempRun("roundtrip")
        let store = try RunStore.open(directory: dir)
        try store.register(items.enumerated().map { ($0.offset, $0.element) })
        try store.begin("a")
        let nodes = [
            node(0), node(1, reward: 0.9), node(2, .feedback, parent: 1), node(3, .refinement, reward: 0.95, parent: 2),
        ]
        try store.append(Array(nodes.prefix(2)), to: "a")
        try store.append(Array(nodes.suffix(2)), to: "a")
        #expect(try store.nodes(of: "a") == nodes)
        #expect(try store.counts()[.running] == 1)
        try store.finish(Tree(id: "a", strategy: "prs", nodes: nodes), elapsedMs: 5)
        #expect(try store.trees(strategy: "prs").map(\.bestID) == [3])
        #expect(try store.counts() == [.pending: 1, .running: 0, .done: 1, .failed: 0])
        #expect(try store.items().map(\.item) == items)
    }

    @Test func aSecondWriterIsRefusedNamingTheFirst() throws {
        let dir = tempRun("lock")
        let first = try RunStore.open(directory: dir)
        #expect {
            _ = try RunStore.open(directory: dir)
        } throws: { error in
            "\(error)".contains("in use by another prs process (pid \(getpid())")
        }
        _ = first
    }

    @Test func settingsDifferencesAreNamed() throws {
        let dir = tempRun("settings")
        let store = try RunStore.open(directory: dir)
        #expect(try store.info() == nil)
        let info = RunInfo(
            settings: ["budget": "8", "seed": "1"], prsVersion: "0.1", policy: "p", reward: "r", feedback: "self",
            files: ["a": "fnv1a64:1"])
        try store.saveInfo(info)
        let stored = try #require(try store.info())
        #expect(stored.settings == info.settings)
        var other = info
        other.settings = ["budget": "4", "seed": "1", "shard": "0/2"]
        #expect(stored.differences(from: other) == ["budget", "shard"])
        #expect(stored.differences(from: other, ignoring: ["shard"]) == ["budget"])
    }

    @Test func failuresKeepTheirNodesAndCountAttempts() throws {
        let store = try RunStore.open(directory: tempRun("fail"))
        try store.register([(0, items[0])])
        try store.begin("a")
        try store.append([node(0)], to: "a")
        try store.fail("a", error: "server said 500")
        try store.begin("a")
        let s = try #require(try store.items().first)
        #expect(s.attempts == 1 && s.state == .running, "a failure counts; starting again does not")
        #expect(try store.nodes(of: "a").count == 1)
    }

    @Test func aCorruptedFileIsAClearErrorAndIsLeftAlone() throws {
        let dir = tempRun("corrupt")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("run.sqlite")
        let garbage = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try garbage.write(to: url)
        #expect {
            _ = try RunStore.open(directory: dir)
        } throws: { error in
            "\(error)".contains("run.sqlite: cannot use the run store: it is not an SQLite database")
        }
        #expect(try Data(contentsOf: url) == garbage)
    }

    @Test func aTruncatedStoreIsAClearErrorAndIsLeftAlone() throws {
        let dir = tempRun("truncated")
        do {
            let store = try RunStore.open(directory: dir)
            try store.register(
                (0..<300).map {
                    ($0, PromptItem(id: "i\($0)", instruction: String(repeating: "long prompt ", count: 40)))
                })
        }
        let url = dir.appendingPathComponent("run.sqlite")
        let data = try Data(contentsOf: url)
        let cut = data.prefix(data.count / 2)
        try cut.write(to: url)
        #expect(throws: StoreError.self) { _ = try RunStore.open(directory: dir) }
        #expect(try Data(contentsOf: url) == cut)
    }

    @Test func mergingRefusesOverlappingShards() throws {
        let a = try RunStore.open(directory: tempRun("shard-a"))
        try a.register([(0, items[0])])
        let b = try RunStore.open(directory: tempRun("shard-b"))
        try b.register([(0, items[0]), (1, items[1])])
        let merged = try RunStore.open(directory: tempRun("merged"))
        try merged.merge(from: a)
        #expect {
            try merged.merge(from: b)
        } throws: { error in
            "\(error)".contains("item \"a\" is in more than one shard")
        }
        #expect(try merged.items().count == 1, "a refused merge changes nothing")
    }
}
