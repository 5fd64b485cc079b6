import Foundation
import PRSCore

/// Training and evaluation data made from a run's trees, in the formats trainers read:
/// TRL's conversational language-modeling (`sft`) and preference (`dpo`) formats, improving
/// pairs (`refine`), AlpacaEval's outputs (`alpaca-eval`), and every node (`trees`).
public enum Exports {
    public enum Format: String, Sendable, CaseIterable { case sft, dpo, refine, alpacaEval = "alpaca-eval", trees }

    /// How DPO pairs are formed: the best response against the worst, or against a random
    /// other scored response (seeded); or `verified`: by the prompt's constraints, not the reward,
    /// the response that follows the most of them against the one that follows the fewest, kept only
    /// when chosen follows every constraint rejected follows and more, and has the higher graded
    /// rubric score (ground truth to measure any reward against; the rubric is right on all of them).
    public enum Pairing: String, Sendable, CaseIterable {
        case bestWorst = "best-worst", bestRandom = "best-random", verified
    }

    /// Which prompt the training examples show: `conditioned` (the prompt with the preference,
    /// as PRS sampled it; the default) or `plain` (the prompt alone).
    public enum PromptForm: String, Sendable, CaseIterable { case conditioned, plain }

    public struct Options: Sendable {
        public var minReward: Double?
        /// SFT: the k best distinct responses of each prompt instead of the single best.
        public var topK = 1
        public var pairing = Pairing.bestWorst
        public var minMargin = 0.0
        public var seed: UInt64 = 0
        public var prompt = PromptForm.conditioned
        public var generator = "prs"
        public var templates = PromptTemplates.standard
        /// refine: which pairs become examples (improving refinements, synthetic pairs, or both).
        public var refinePairs = RefinePairs.improving
        /// Synthetic pairs: the least reward gap between the draft and the refinement.
        public var syntheticMargin = RefinePairs.defaultMargin
        /// Synthetic pairs: the verifier's critique of the draft, or the policy's own feedback.
        public var syntheticFeedback = SyntheticFeedback.verifier
        /// Concurrent feedback generations (`syntheticFeedback == .policy`).
        public var concurrency = 8
        public init() {}
    }

    /// What an export wrote and what it skipped, with the reasons.
    public struct Report: Sendable {
        public var data: Data
        public var written = 0
        public var skipped: [String: Int] = [:]
        mutating func skip(_ why: String) { skipped[why, default: 0] += 1 }
    }

    struct Message: Encodable {
        var role: String
        var content: String
    }

    /// The seed step of a draft's feedback generated for a synthetic pair (apart from the tree's own steps).
    public static let syntheticFeedbackStep = 1 << 20

    /// The records of `format` from `trees`. `feedback` writes the policy's own feedback on the
    /// drafts of synthetic pairs whose tree never critiqued them (`options.syntheticFeedback ==
    /// .policy`); it is required then, and unused otherwise.
    public static func export(
        _ format: Format, trees: [Tree], items: [String: PromptItem], options: Options,
        feedback source: (any FeedbackSource)? = nil
    ) async throws -> Report {
        var report = Report(data: Data())
        var records: [any Encodable] = []
        // Synthetic pairs waiting for the policy's feedback on their draft: record index and prompt.
        var pending: [(index: Int, item: PromptItem)] = []
        for tree in trees {
            guard let item = items[tree.id] else {
                report.skip("no prompt stored for the tree")
                continue
            }
            let prompt =
                options.prompt == .plain
                ? options.templates.plainMessages(item) : options.templates.conditionedMessages(item)
            let messages = prompt.map { Message(role: $0.role.rawValue, content: $0.content) }
            switch format {
            case .trees:
                records.append(tree)
            case .sft:
                let ranked = ranked(tree).filter { options.minReward == nil || $0.reward! >= options.minReward! }
                if ranked.isEmpty {
                    report.skip(tree.scoredResponses.isEmpty ? "no scored response" : "best reward below --min-reward")
                    continue
                }
                for n in ranked.prefix(options.topK) {
                    records.append(
                        SFT(
                            id: tree.id, messages: messages + [Message(role: "assistant", content: n.text)],
                            reward: n.reward!))
                }
            case .dpo where options.pairing == .verified:
                let constraints = item.preference?.constraints ?? []
                guard !constraints.isEmpty else {
                    report.skip("no constraints to verify with")
                    continue
                }
                var seen: Set<String> = []
                let answers = tree.responses.filter { seen.insert($0.text).inserted }.map { n in
                    let outcomes = Rubric.check(n.text, against: constraints)
                    return (node: n, followed: outcomes.map(\.follow), graded: outcomes.map(\.score).reduce(0, +))
                }
                func key(_ a: (node: Node, followed: [Bool], graded: Double)) -> (Int, Double, Int) {
                    (a.followed.filter { $0 }.count, a.graded, -a.node.id)
                }
                guard let most = answers.max(by: { key($0) < key($1) }),
                    let fewest = answers.min(by: { key($0) < key($1) }),
                    // Chosen follows every constraint rejected follows, and more; and scores higher.
                    zip(most.followed, fewest.followed).allSatisfy({ $0 || !$1 }),
                    most.followed.filter({ $0 }).count > fewest.followed.filter({ $0 }).count,
                    most.graded > fewest.graded
                else {
                    report.skip("no response follows more constraints than another")
                    continue
                }
                let (mostFollows, fewestFollows) = (
                    most.followed.filter { $0 }.count, fewest.followed.filter { $0 }.count
                )
                records.append(
                    DPO(
                        id: tree.id, prompt: messages, chosen: [Message(role: "assistant", content: most.node.text)],
                        rejected: [Message(role: "assistant", content: fewest.node.text)],
                        scoreChosen: most.node.reward, scoreRejected: fewest.node.reward,
                        category: item.preference?.category,
                        followsChosen: mostFollows, followsRejected: fewestFollows, constraints: constraints.count))
            case .dpo:
                let ranked = ranked(tree)
                guard ranked.count >= 2, let best = ranked.first else {
                    report.skip("fewer than two scored distinct responses")
                    continue
                }
                if let m = options.minReward, best.reward! < m {
                    report.skip("best reward below --min-reward")
                    continue
                }
                let candidates = ranked.dropFirst().filter {
                    best.reward! - $0.reward! >= options.minMargin && best.reward! > $0.reward!
                }
                guard !candidates.isEmpty else {
                    report.skip("no response below the best by --min-margin")
                    continue
                }
                let rejected: Node
                switch options.pairing {
                case .bestWorst, .verified: rejected = candidates.last!  // verified pairs are made above
                case .bestRandom:
                    let r = Seeds.base(run: options.seed, item: tree.id, step: 0)
                    rejected = Array(candidates)[Int(r % UInt64(candidates.count))]
                }
                records.append(
                    DPO(
                        id: tree.id, prompt: messages, chosen: [Message(role: "assistant", content: best.text)],
                        rejected: [Message(role: "assistant", content: rejected.text)],
                        scoreChosen: best.reward!, scoreRejected: rejected.reward!))
            case .refine:
                var made: [Refine] = []
                if options.refinePairs != .synthetic {
                    for (draft, feedback, better) in improvingPairs(tree) {
                        made.append(
                            Refine(
                                id: tree.id, prompt: item.prompt, preference: item.preference?.text ?? "",
                                draft: draft.text,
                                feedback: feedback?.text, improved: better.text, draftReward: draft.reward!,
                                improvedReward: better.reward!, pairing: "improving"))
                    }
                }
                if options.refinePairs != .improving {
                    switch syntheticPair(
                        tree, item: item, margin: options.syntheticMargin, feedback: options.syntheticFeedback)
                    {
                    case .success(let pair):
                        // Both kinds asked for: a pair the tree already made by refining is not repeated.
                        if !made.contains(where: { $0.draft == pair.draft.text && $0.improved == pair.better.text }) {
                            if options.syntheticFeedback == .policy && pair.feedback == nil {
                                pending.append((records.count + made.count, item))
                            }
                            made.append(
                                Refine(
                                    id: tree.id, prompt: item.prompt, preference: item.preference?.text ?? "",
                                    draft: pair.draft.text, feedback: pair.feedback, improved: pair.better.text,
                                    draftReward: pair.draft.reward!, improvedReward: pair.better.reward!,
                                    pairing: "synthetic", feedbackSource: pair.source))
                        }
                    case .failure(let why):
                        if made.isEmpty {
                            report.skip(why.reason)
                            continue
                        }
                    }
                }
                if made.isEmpty {
                    report.skip("no improving pair")
                    continue
                }
                records += made as [any Encodable]
            case .alpacaEval:
                guard let best = tree.best else {
                    report.skip("no scored response")
                    continue
                }
                records.append(
                    Alpaca(instruction: item.prompt, output: best.text, generator: options.generator, id: tree.id))
            }
        }
        if !pending.isEmpty {
            guard let source else {
                throw RunError("synthetic pairs with the policy's feedback need the policy to write it")
            }
            let texts = try await generateFeedback(
                pending.map { (records[$0.index] as! Refine, $0.item) }, source: source, options: options)
            for (p, text) in zip(pending, texts) {
                var r = records[p.index] as! Refine
                r.feedback = text
                r.feedbackSource = source.name
                r.feedbackGenerated = true
                records[p.index] = r
            }
        }
        report.written = records.count
        if format == .alpacaEval {
            report.data = try RunFiles.prettyJSON(records.map(AnyEncodable.init))
        } else {
            report.data = try RunFiles.jsonLines(records.map(AnyEncodable.init))
        }
        return report
    }

    /// The policy's feedback on each pair's draft, in order: generated concurrently, each seeded by
    /// the export's seed and its prompt, so a rerun writes the same text.
    static func generateFeedback(
        _ pairs: [(Refine, PromptItem)], source: any FeedbackSource, options: Options
    ) async throws -> [String] {
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            var out = [String](repeating: "", count: pairs.count)
            var next = 0
            func add() {
                let i = next
                let (pair, item) = pairs[i]
                group.addTask {
                    let seed = Seeds.base(run: options.seed, item: item.id, step: syntheticFeedbackStep)
                    return (i, try await source.feedback(on: pair.draft, for: item, seed: seed).0.text)
                }
                next += 1
            }
            while next < min(max(options.concurrency, 1), pairs.count) { add() }
            while let (i, text) = try await group.next() {
                out[i] = text
                if next < pairs.count { add() }
            }
            return out
        }
    }

    /// Scored responses, best first, distinct texts only (ties: earlier first).
    static func ranked(_ tree: Tree) -> [Node] {
        var seen: Set<String> = []
        return tree.scoredResponses.sorted { a, b in a.reward! != b.reward! ? a.reward! > b.reward! : a.id < b.id }
            .filter { seen.insert($0.text).inserted }
    }

    /// (draft, feedback, refinement) for every refinement that scored above the draft it refined.
    static func improvingPairs(_ tree: Tree) -> [(Node, Node?, Node)] {
        let byID = Dictionary(uniqueKeysWithValues: tree.nodes.map { ($0.id, $0) })
        return tree.nodes.compactMap { n in
            guard n.kind == .refinement, n.improving == true, n.reward != nil,
                var parent = n.parentID.flatMap({ byID[$0] })
            else { return nil }
            var feedback: Node?
            if parent.kind == .feedback {
                feedback = parent
                guard let d = parent.parentID.flatMap({ byID[$0] }) else { return nil }
                parent = d
            }
            guard parent.reward != nil else { return nil }
            return (parent, feedback, n)
        }
    }

    struct Skip: Error { var reason: String }

    /// A synthetic improving pair of one tree: its best scored response as the refinement of the
    /// lowest-scoring distinct response at least `margin` below it. When the prompt has
    /// constraints, the draft must fail one the refinement follows (so the pair teaches fixing
    /// something checkable), and the feedback is the verifier's critique of the draft; without
    /// constraints it is the policy's own feedback on that draft when the tree has one, else none.
    /// With `.policy` feedback it is the tree's feedback on the draft when there is one, else nil
    /// (for the caller to generate).
    static func syntheticPair(
        _ tree: Tree, item: PromptItem, margin: Double, feedback choice: SyntheticFeedback = .verifier
    ) -> Result<(draft: Node, feedback: String?, source: String?, better: Node), Skip> {
        let ranked = ranked(tree)
        guard let better = ranked.first, ranked.count >= 2 else {
            return .failure(Skip(reason: "fewer than two scored distinct responses"))
        }
        let constraints = item.preference?.constraints ?? []
        let follows = constraints.isEmpty ? [] : Rubric.check(better.text, against: constraints).map(\.follow)
        let below = ranked.dropFirst().filter { better.reward! - $0.reward! >= margin }
        guard !below.isEmpty else {
            return .failure(Skip(reason: "no response below the best by the synthetic margin"))
        }
        let candidates =
            constraints.isEmpty
            ? Array(below)
            : below.filter { n in
                zip(follows, Rubric.check(n.text, against: constraints).map(\.follow)).contains { $0 && !$1 }
            }
        guard let draft = candidates.last else {
            return .failure(Skip(reason: "no response below the margin fails a constraint the best follows"))
        }
        if choice == .verifier && !constraints.isEmpty {
            return .success((draft, VerifierFeedback.text(on: draft.text, for: item), "verifier", better))
        }
        // The tree's critique of the draft; for `.policy`, only one the policy wrote itself.
        let own = tree.nodes.first {
            $0.kind == .feedback && $0.parentID == draft.id && (choice == .verifier || ($0.source ?? "self") == "self")
        }
        return .success((draft, own?.text, own.map { $0.source ?? "self" }, better))
    }

    struct SFT: Encodable {
        var id: String
        var messages: [Message]
        var reward: Double
    }
    struct DPO: Encodable {
        var id: String
        var prompt: [Message]
        var chosen: [Message]
        var rejected: [Message]
        var scoreChosen: Double?
        var scoreRejected: Double?
        var category: String?
        /// Verified pairs: constraints each answer follows, of `constraints`.
        var followsChosen: Int?
        var followsRejected: Int?
        var constraints: Int?
        enum CodingKeys: String, CodingKey {
            case id, prompt, chosen, rejected, category, constraints, scoreChosen = "score_chosen", scoreRejected =
                "score_rejected"
            case followsChosen = "follows_chosen", followsRejected = "follows_rejected"
        }
    }
    struct Refine: Encodable {
        var id: String
        var prompt: String
        var preference: String
        var draft: String
        var feedback: String?
        var improved: String
        var draftReward: Double
        var improvedReward: Double
        /// `improving` (a refinement the tree made) or `synthetic` (two of its responses paired).
        var pairing: String
        /// Who wrote the feedback: `verifier`, `self` or `model:…` (the tree's or generated for the pair).
        var feedbackSource: String?
        /// True when the feedback was generated for this pair by the export, not taken from the tree.
        var feedbackGenerated: Bool?
        enum CodingKeys: String, CodingKey {
            case id, prompt, preference, draft, feedback, improved, pairing
            case feedbackGenerated = "feedback_generated"
            case draftReward = "draft_reward", improvedReward = "improved_reward", feedbackSource = "feedback_source"
        }
    }
    struct Alpaca: Encodable {
        var instruction: String
        var output: String
        var generator: String
        var id: String
    }
    struct AnyEncodable: Encodable {
        let value: any Encodable
        init(_ v: any Encodable) { value = v }
        func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    }
}
