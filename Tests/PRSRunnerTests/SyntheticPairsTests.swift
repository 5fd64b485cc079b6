import Foundation
import Logging
import PRSCore
import PRSRunner
import PRSStore
import PRSTestSupport
import Testing

/// Synthetic improving pairs (`refine --pairing synthetic`, the loop's `select.refine: synthetic`):
/// draft and refinement from the same prompt, the refinement higher by the stated margin, with
/// constraints a constraint the draft fails and the refinement follows, and never a held-out prompt.
@Suite struct SyntheticPairsTests {
    static let constraints = [
        try! Constraint(json: .object(["id": .string("keywords:existence"), "keywords": .array([.string("moon")])]))
    ]

    func node(
        _ id: Int, _ text: String, reward: Double?, kind: NodeKind = .initial, parent: Int? = nil, layer: Int = 0
    ) -> Node {
        Node(
            id: id, parentID: parent, kind: kind, layer: layer, text: text, reward: reward, seed: nil,
            params: SamplingParameters(),
            usage: TokenUsage(), latencyMs: 0, finishReason: .stop, improving: nil,
            source: kind == .feedback ? "self" : nil)
    }

    func rows(_ data: Data) throws -> [[String: Any]] {
        try data.split(separator: UInt8(ascii: "\n")).map {
            try #require(try JSONSerialization.jsonObject(with: Data($0)) as? [String: Any])
        }
    }

    @Test func pairsTheBestWithTheLowestAnswerTheMarginBelowIt() async throws {
        let plain = PromptItem(id: "p", instruction: "Why rain?", preference: Preference(text: "short"))
        let tree = Tree(
            id: "p", strategy: "rand",
            nodes: [
                node(0, "Clouds.", reward: 0.50), node(1, "Water vapour cools and falls.", reward: 0.90),
                node(2, "It rains.", reward: 0.85), node(3, "Because.", reward: 0.20),
                node(4, "Try saying why clouds form.", reward: nil, kind: .feedback, parent: 3, layer: 1),
            ])
        var options = Exports.Options()
        options.refinePairs = .synthetic
        options.syntheticMargin = 0.3
        let report = try await Exports.export(.refine, trees: [tree], items: ["p": plain], options: options)
        let row = try #require(try rows(report.data).first)
        #expect(report.written == 1)
        #expect(row["id"] as? String == "p" && row["pairing"] as? String == "synthetic")
        #expect(row["improved"] as? String == "Water vapour cools and falls." && row["draft"] as? String == "Because.")
        #expect((row["improved_reward"] as! Double) - (row["draft_reward"] as! Double) >= 0.3)
        // Without constraints: the policy's own feedback on that draft, from the tree.
        #expect(row["feedback"] as? String == "Try saying why clouds form.")
        // No answer 0.45 below the best: skipped, with the reason.
        options.syntheticMargin = 0.75
        let none = try await Exports.export(.refine, trees: [tree], items: ["p": plain], options: options)
        #expect(none.written == 0 && none.skipped == ["no response below the best by the synthetic margin": 1])
    }

    @Test func withConstraintsTheDraftFailsOneTheRefinementFollows() async throws {
        let item = PromptItem(
            id: "m", instruction: "Why tides?",
            preference: Preference(text: "name the moon", constraints: Self.constraints))
        // The lowest answer names the moon as the best does: it cannot be the draft; the next one can.
        let tree = Tree(
            id: "m", strategy: "prs",
            nodes: [
                node(0, "The moon pulls the sea.", reward: 0.9), node(1, "Gravity, mostly.", reward: 0.5),
                node(2, "The moon.", reward: 0.1),
            ])
        var options = Exports.Options()
        options.refinePairs = .synthetic
        let row = try #require(
            try rows(try await Exports.export(.refine, trees: [tree], items: ["m": item], options: options).data).first)
        #expect(
            row["draft"] as? String == "Gravity, mostly." && row["improved"] as? String == "The moon pulls the sea.")
        let draftFollows = Rubric.check(row["draft"] as! String, against: Self.constraints).map(\.follow)
        let betterFollows = Rubric.check(row["improved"] as! String, against: Self.constraints).map(\.follow)
        #expect(zip(betterFollows, draftFollows).contains { $0 && !$1 })
        // The feedback is the verifier's critique of the draft.
        let expected = VerifierFeedback.text(on: "Gravity, mostly.", for: item)
        #expect(row["feedback"] as? String == expected && expected.lowercased().contains("moon"))
        // When every lower answer follows what the best follows, nothing is made.
        let alike = Tree(
            id: "m", strategy: "prs",
            nodes: [node(0, "The moon pulls the sea.", reward: 0.9), node(1, "The moon.", reward: 0.1)])
        let skipped = try await Exports.export(.refine, trees: [alike], items: ["m": item], options: options)
        #expect(
            skipped.written == 0
                && skipped.skipped == ["no response below the margin fails a constraint the best follows": 1])
    }

    @Test func bothKindsTogetherDoNotRepeatAPair() async throws {
        let item = PromptItem(id: "r", instruction: "Why rain?", preference: Preference(text: "short"))
        // The tree's own improving refinement already pairs the lowest draft with the best answer.
        let tree = Tree(
            id: "r", strategy: "prs",
            nodes: [
                node(0, "Because.", reward: 0.2), node(1, "Clouds.", reward: 0.5),
                node(2, "Say more.", reward: nil, kind: .feedback, parent: 0, layer: 1),
                Node(
                    id: 3, parentID: 2, kind: .refinement, layer: 1, text: "Water vapour cools and falls.", reward: 0.9,
                    seed: nil,
                    params: SamplingParameters(), usage: TokenUsage(), latencyMs: 0, finishReason: .stop,
                    improving: true),
            ])
        var options = Exports.Options()
        options.refinePairs = .both
        let made = try rows(try await Exports.export(.refine, trees: [tree], items: ["r": item], options: options).data)
        #expect(made.map { $0["pairing"] as? String } == ["improving"])
        options.refinePairs = .improving
        #expect(
            try rows(try await Exports.export(.refine, trees: [tree], items: ["r": item], options: options).data).count
                == 1)
    }

    /// The loop's select stage with `refine: synthetic` on a Rand chain: refinement examples from
    /// the sampled training prompts only, each from one prompt's tree and above the margin.
    @Test func theLoopMakesThemFromTrainingPromptsOnly() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prs-synthetic-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var settings = LoopSettings(
            chains: [.init(label: "rand", strategy: try StrategyConfig(kind: .rand, budget: 4))], iterations: 1)
        settings.select.refine = true
        settings.select.refinePairs = .synthetic
        settings.select.syntheticMargin = 0.05
        settings.evaluate.samples = 2
        let train = LoopRunnerTests.items("t", 6)
        let held = LoopRunnerTests.items("e", 4)
        let runner = LoopRunner(
            settings: settings, trainPrompts: train, evalPrompts: held, basePolicy: LoopRunnerTests.base,
            makePolicy: { LoopRunnerTests.generator($0) }, reward: LoopRunnerTests.reward, feedback: nil,
            trainer: ScriptedTrainer(), concurrency: 2, logger: Logger(label: "test"))
        let summary = try await runner.run(directory: dir, store: try LoopStore.open(directory: dir))
        let file = LoopRunner.dataFiles(dir, chain: "rand", iteration: 1).refine
        let made = try rows(try Data(contentsOf: file))
        #expect(!made.isEmpty && made.count == summary.chains["rand"]?[1].refineExamples)
        let trees = try RunStore.read(directory: dir.appendingPathComponent("rand/iter-1/sample")).trees(
            strategy: "rand")
        for row in made {
            let id = try #require(row["id"] as? String)
            #expect(train.contains { $0.id == id } && !held.contains { $0.id == id }, "\(id)")
            let texts = Set(try #require(trees.first { $0.id == id }).responses.map(\.text))
            #expect(
                texts.contains(row["draft"] as! String) && texts.contains(row["improved"] as! String),
                "both from prompt \(id)'s tree")
            #expect((row["improved_reward"] as! Double) - (row["draft_reward"] as! Double) >= 0.05)
            #expect(row["pairing"] as? String == "synthetic")
        }
    }

    /// A chain's own refinement pairs (`strategies: [prs, prs/synthetic]`): the synthetic chain's
    /// examples are synthetic, the other chain keeps the loop's improving pairs.
    @Test func aChainsOwnPairsOverrideTheLoops() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "prs-synthetic-chain-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let settings = LoopSettings(
            chains: [
                .init(label: "prs", strategy: try StrategyConfig(kind: .prs, budget: 4)),
                .init(
                    label: "prs-synthetic", strategy: try StrategyConfig(kind: .prs, budget: 4), refinePairs: .synthetic
                ),
                .init(
                    label: "rand-synthetic", strategy: try StrategyConfig(kind: .rand, budget: 4),
                    refinePairs: .synthetic),
            ], iterations: 1)
        let runner = LoopRunner(
            settings: settings, trainPrompts: LoopRunnerTests.items("t", 6), evalPrompts: LoopRunnerTests.items("e", 2),
            basePolicy: LoopRunnerTests.base, makePolicy: { LoopRunnerTests.generator($0) },
            reward: LoopRunnerTests.reward,
            feedback: nil, trainer: ScriptedTrainer(), concurrency: 2, logger: Logger(label: "test"))
        _ = try await runner.run(directory: dir, store: try LoopStore.open(directory: dir))
        for chain in ["prs-synthetic", "rand-synthetic"] {
            let made = try rows(try Data(contentsOf: LoopRunner.dataFiles(dir, chain: chain, iteration: 1).refine))
            #expect(!made.isEmpty && made.allSatisfy { $0["pairing"] as? String == "synthetic" }, "\(chain)")
        }
        let file = LoopRunner.dataFiles(dir, chain: "prs", iteration: 1).refine
        if let data = try? Data(contentsOf: file) {
            #expect(try rows(data).allSatisfy { $0["pairing"] as? String == "improving" })
        }
    }

    /// Records what it was asked and answers with the draft's text and the seed.
    final class RecordingFeedback: FeedbackSource, @unchecked Sendable {
        let name = "self"
        private let lock = NSLock()
        private(set) var asked: [(draft: String, item: String, seed: UInt64)] = []
        func feedback(on draft: String, for item: PromptItem, seed: UInt64) async throws -> (
            Generation, SamplingParameters
        ) {
            lock.withLock { asked.append((draft, item.id, seed)) }
            return (
                Generation(text: "Fix \"\(draft)\".", finishReason: .stop, usage: .zero, seed: seed, latencyMs: 0),
                SamplingParameters()
            )
        }
    }

    /// `--synthetic-feedback policy`: the policy's own feedback on the draft. Generated (seeded by
    /// the export's seed and the prompt) when the tree never critiqued that draft, taken from the
    /// tree when it did; with constraints too, in place of the verifier's sentences.
    @Test func policyFeedbackIsGeneratedForDraftsTheTreeNeverCritiqued() async throws {
        let plain = PromptItem(id: "p", instruction: "Why rain?", preference: Preference(text: "short"))
        let moon = PromptItem(
            id: "m", instruction: "Why tides?",
            preference: Preference(text: "name the moon", constraints: Self.constraints))
        let critiqued = PromptItem(id: "c", instruction: "Why snow?", preference: Preference(text: "short"))
        let trees = [
            Tree(
                id: "p", strategy: "rand",
                nodes: [node(0, "Because.", reward: 0.1), node(1, "Clouds cool.", reward: 0.8)]),
            Tree(
                id: "m", strategy: "rand",
                nodes: [node(0, "Gravity, mostly.", reward: 0.2), node(1, "The moon pulls the sea.", reward: 0.9)]),
            Tree(
                id: "c", strategy: "prs",
                nodes: [
                    node(0, "Cold.", reward: 0.1), node(1, "Frozen vapour falls.", reward: 0.9),
                    node(2, "Say what freezes.", reward: nil, kind: .feedback, parent: 0, layer: 1),
                ]),
        ]
        let items = ["p": plain, "m": moon, "c": critiqued]
        var options = Exports.Options()
        options.refinePairs = .synthetic
        options.syntheticFeedback = .policy
        options.seed = 7
        let writer = RecordingFeedback()
        let made = try rows(
            try await Exports.export(.refine, trees: trees, items: items, options: options, feedback: writer).data)
        let byID = Dictionary(uniqueKeysWithValues: made.map { ($0["id"] as! String, $0) })
        #expect(made.count == 3)
        #expect(
            byID["p"]?["feedback"] as? String == "Fix \"Because.\"."
                && byID["p"]?["feedback_source"] as? String == "self")
        #expect(byID["m"]?["feedback"] as? String == "Fix \"Gravity, mostly.\".", "the policy's, not the verifier's")
        #expect(byID["c"]?["feedback"] as? String == "Say what freezes.", "the tree's own critique of that draft")
        #expect(byID["p"]?["feedback_generated"] as? Bool == true && byID["c"]?["feedback_generated"] == nil)
        // Only the two drafts without a critique were sent, each seeded by the export's seed and its prompt.
        let asked = writer.asked.sorted { $0.item < $1.item }
        #expect(asked.map(\.item) == ["m", "p"] && asked.map(\.draft) == ["Gravity, mostly.", "Because."])
        #expect(asked.allSatisfy { $0.seed == Seeds.base(run: 7, item: $0.item, step: Exports.syntheticFeedbackStep) })
        // The default stays the verifier's sentences (with constraints) and asks no policy.
        options.syntheticFeedback = .verifier
        let verifier = try rows(
            try await Exports.export(.refine, trees: trees, items: items, options: options, feedback: writer).data)
        #expect(verifier.first { $0["id"] as? String == "m" }?["feedback_source"] as? String == "verifier")
        #expect(verifier.first { $0["id"] as? String == "p" }?["feedback"] == nil && writer.asked.count == 2)
        // Asked for the policy's feedback without a policy: refused, nothing half-written.
        options.syntheticFeedback = .policy
        await #expect(throws: RunError.self) {
            _ = try await Exports.export(.refine, trees: trees, items: items, options: options)
        }
    }

    /// The loop's `select.synthetic_feedback: policy`: every synthetic pair of a Rand chain (whose
    /// trees hold no critique) carries feedback written by π(k−1), the policy that sampled the trees.
    @Test func theLoopsPolicyWritesTheFeedbackOfItsSyntheticPairs() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prs-synthetic-fb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        var settings = LoopSettings(
            chains: [.init(label: "rand", strategy: try StrategyConfig(kind: .rand, budget: 4))], iterations: 2)
        settings.select.refine = true
        settings.select.refinePairs = .synthetic
        settings.select.syntheticMargin = 0.05
        settings.select.syntheticFeedback = .policy
        settings.evaluate.samples = 1
        let runner = LoopRunner(
            settings: settings, trainPrompts: LoopRunnerTests.items("t", 6), evalPrompts: LoopRunnerTests.items("e", 2),
            basePolicy: LoopRunnerTests.base, makePolicy: { LoopRunnerTests.generator($0) },
            reward: LoopRunnerTests.reward, feedback: nil, trainer: ScriptedTrainer(), concurrency: 2,
            logger: Logger(label: "test"))
        _ = try await runner.run(directory: dir, store: try LoopStore.open(directory: dir))
        for (k, writer) in [(1, "base seed"), (2, "base+rand1 seed")] {
            let made = try rows(try Data(contentsOf: LoopRunner.dataFiles(dir, chain: "rand", iteration: k).refine))
            #expect(!made.isEmpty, "iteration \(k)")
            for row in made {
                let feedback = try #require(row["feedback"] as? String, "iteration \(k): \(row)")
                #expect(feedback.hasPrefix(writer) && row["feedback_source"] as? String == "self", "\(k): \(feedback)")
            }
        }
    }
}
