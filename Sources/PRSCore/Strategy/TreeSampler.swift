/// Why a tree could not be completed.
public enum SamplerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The backend returned a different number of completions than asked for.
    case wrongCount(asked: Int, got: Int)
    /// No response of the tree so far has a reward, so there is nothing to refine.
    case nothingScored(layer: Int, firstError: String?)

    public var description: String {
        switch self {
        case .wrongCount(let asked, let got):
            "the generator returned \(got) completions for a request of \(asked)"
        case .nothingScored(let layer, let err):
            "no response up to layer \(layer) could be scored, so there is no draft to refine"
                + (err.map { " (first reward error: \($0))" } ?? "")
        }
    }
}

/// Samples one tree per prompt with a strategy (Algorithm 1 of the PRS paper for `prs`).
///
/// Requests are numbered in tree order: step 0 is the first layer; layer `l ≥ 1` is
/// step `2l-1` (feedback) and step `2l` (its refinements). Each step's seed derives from
/// the run seed, the item id and the step (`Seeds.base`), so reruns ask the same things.
public struct TreeSampler: Sendable {
    public let config: StrategyConfig
    public let policy: any TextGenerator
    public let feedback: any FeedbackSource
    public let reward: any RewardModel

    public init(
        config: StrategyConfig, policy: any TextGenerator, feedback: (any FeedbackSource)? = nil,
        reward: any RewardModel
    ) {
        self.config = config
        self.policy = policy
        self.feedback =
            feedback
            ?? GeneratorFeedback(
                generator: policy, templates: config.templates, parameters: config.feedbackSampling)
        self.reward = reward
    }

    /// Samples the tree of `item`. Nodes in `existing` (from an interrupted run) are kept and
    /// their steps are not asked again; every new step's nodes are passed to `onNodes` as soon
    /// as they are scored, before the next step starts.
    public func sample(
        _ item: PromptItem, existing: [Node] = [],
        onNodes: @Sendable ([Node]) async throws -> Void = { _ in }
    ) async throws -> Tree {
        var state = State(nodes: existing.sorted { $0.id < $1.id })
        let t = config.templates
        switch config.kind {
        case .rand:
            try await respond(
                &state, item, .initial, layer: 0, t.plainMessages(item), n: config.budget, config.sampling, step: 0,
                parent: nil, onNodes)
        case .prand:
            try await respond(
                &state, item, .initial, layer: 0, t.conditionedMessages(item), n: config.budget, config.sampling,
                step: 0, parent: nil, onNodes)
        case .greedy:
            let p = SamplingParameters(temperature: 0, maxTokens: config.sampling.maxTokens, stop: config.sampling.stop)
            try await respond(
                &state, item, .initial, layer: 0, t.conditionedMessages(item), n: 1, p, step: 0, parent: nil, onNodes)
        case .prs, .prsNoFeedback:
            try await respond(
                &state, item, .initial, layer: 0, t.conditionedMessages(item), n: config.split[0], config.sampling,
                step: 0, parent: nil, onNodes)
            for layer in 1..<config.split.count {
                guard let draft = Selection.best(among: state.nodes) else {
                    throw SamplerError.nothingScored(
                        layer: layer - 1, firstError: state.nodes.compactMap(\.rewardError).first)
                }
                var parent = draft.id
                var feedbackText: String?
                if config.kind == .prs {
                    let fb = try await feedbackNode(&state, item, draft: draft, layer: layer, onNodes)
                    parent = fb.id
                    feedbackText = fb.text
                }
                let messages = t.refineMessages(item, draft: draft.text, feedback: feedbackText)
                try await respond(
                    &state, item, .refinement, layer: layer, messages, n: config.split[layer], config.sampling,
                    step: 2 * layer, parent: parent, draftReward: draft.reward, onNodes)
            }
        }
        return Tree(id: item.id, strategy: config.kind.rawValue, nodes: state.nodes)
    }

    struct State {
        var nodes: [Node]
        func existing(_ kind: NodeKind, layer: Int) -> [Node] { nodes.filter { $0.kind == kind && $0.layer == layer } }
    }

    private func feedbackNode(
        _ state: inout State, _ item: PromptItem, draft: Node, layer: Int,
        _ onNodes: @Sendable ([Node]) async throws -> Void
    ) async throws -> Node {
        if let done = state.existing(.feedback, layer: layer).first { return done }
        let seed = Seeds.base(run: config.runSeed, item: item.id, step: 2 * layer - 1)
        let (g, params) = try await feedback.feedback(on: draft.text, for: item, seed: seed)
        let node = Node(
            id: state.nodes.count, parentID: draft.id, kind: .feedback, layer: layer, text: g.text,
            seed: g.seed ?? seed, params: params, usage: g.usage, latencyMs: g.latencyMs, finishReason: g.finishReason,
            source: feedback.name)
        try await onNodes([node])
        state.nodes.append(node)
        return node
    }

    private func respond(
        _ state: inout State, _ item: PromptItem, _ kind: NodeKind, layer: Int, _ messages: [ChatMessage], n: Int,
        _ parameters: SamplingParameters, step: Int, parent: Int?, draftReward: Double? = nil,
        _ onNodes: @Sendable ([Node]) async throws -> Void
    ) async throws {
        if !state.existing(kind, layer: layer).isEmpty { return }
        var p = parameters
        p.seed = Seeds.base(run: config.runSeed, item: item.id, step: step)
        let generations = try await policy.generate(GenerationRequest(messages: messages, n: n, parameters: p))
        guard generations.count == n else { throw SamplerError.wrongCount(asked: n, got: generations.count) }
        let inputs = generations.map {
            RewardInput(prompt: item.prompt, preference: item.preference, response: $0.text)
        }
        let results = try await reward.score(inputs)
        guard results.count == n else { throw SamplerError.wrongCount(asked: n, got: results.count) }
        var new: [Node] = []
        for (i, (g, r)) in zip(generations, results).enumerated() {
            var np = p
            np.seed = g.seed ?? p.seed.map { $0 + UInt64(i) }
            var improving: Bool?
            if kind == .refinement, let v = r.value, let d = draftReward { improving = v > d }
            new.append(
                Node(
                    id: state.nodes.count + i, parentID: parent, kind: kind, layer: layer, text: g.text,
                    reward: r.value, rewards: r.components.isEmpty ? nil : r.components, rewardError: r.failure,
                    seed: np.seed, params: np, usage: g.usage, latencyMs: g.latencyMs, finishReason: g.finishReason,
                    improving: improving))
        }
        state.nodes = config.normalization.apply(state.nodes + new)
        try await onNodes(Array(state.nodes.suffix(new.count)))
    }
}
