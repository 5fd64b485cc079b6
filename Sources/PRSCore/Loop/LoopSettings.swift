/// The iterative offline-RL loop's settings, as PRSCore sees them: the chains (one strategy
/// each, same seeds and budget), iterations, data selection and the evaluation.
public struct LoopSettings: Sendable, Hashable {
    public struct Chain: Sendable, Hashable {
        /// The chain's name and directory (`prs`, `rand`, …).
        public var label: String
        public var strategy: StrategyConfig
        /// This chain's refinement examples, overriding `select.refine` and `refinePairs` (a PRS
        /// chain training on synthetic pairs beside one training on improving pairs); nil: the loop's.
        public var refinePairs: RefinePairs?
        public init(label: String, strategy: StrategyConfig, refinePairs: RefinePairs? = nil) {
            self.label = label
            self.strategy = strategy
            self.refinePairs = refinePairs
        }
    }

    /// How a tree's responses become training data.
    public struct Select: Sendable, Hashable {
        public enum SFT: Sendable, Hashable {
            case best
            case topK(Int)
        }
        public var sft = SFT.best
        /// Responses scoring below this are not trained on.
        public var minReward: Double?
        /// Improving pairs (a refinement that beat the draft it refined) as refinement examples;
        /// nil: on for tree-building chains (PRS), off for the others.
        public var refine: Bool?
        /// Which pairs become refinement examples when refining is on.
        public var refinePairs = RefinePairs.improving
        /// Synthetic pairs: the least reward gap between draft and refinement.
        public var syntheticMargin = RefinePairs.defaultMargin
        /// Synthetic pairs: where the feedback on the draft comes from.
        public var syntheticFeedback = SyntheticFeedback.verifier
        /// Best-vs-worst preference pairs at least `minMargin` apart.
        public var dpo = false
        public var minMargin = 0.0
        public init() {}

        public func refines(_ kind: StrategyKind) -> Bool {
            refine ?? (kind == .prs || kind == .prsNoFeedback)
        }
    }

    public enum Init: String, Sendable, Hashable, CaseIterable {
        /// π(k) continues π(k−1) on iteration k's data.
        case previous
        /// π(k) is trained from the base on the data of iterations 1…k.
        case base
    }

    /// How a policy is evaluated on the held-out prompts: `samples` temperature samples per prompt
    /// (conditioned on the preference) and, with `greedy`, one temperature-0 answer.
    public struct Evaluate: Sendable, Hashable {
        public var samples = 4
        public var greedy = true
        public var sampling = SamplingParameters.paper
        /// When set, each evaluation also samples the held-out prompts with PRS (N/2 + N/2) and
        /// PRand at this budget N with the policy: PRS against PRand at equal budget, and
        /// refinement success on held-out prompts, iteration by iteration.
        public var search: Int?
        /// The chains whose policies are searched (the base always is); nil: every chain.
        public var searchChains: Set<String>?
        public init() {}
    }

    public var chains: [Chain]
    public var iterations: Int
    /// Training prompts sampled per iteration: iteration k takes the k-th slice of this size
    /// (wrapping around); nil samples every training prompt each iteration.
    public var promptsPerIteration: Int?
    public var select = Select()
    public var initFrom = Init.previous
    public var evaluate = Evaluate()
    /// The loop's seed: iteration k samples with run seed `seed + k`; every evaluation uses `seed`.
    public var seed: UInt64 = 0

    public init(chains: [Chain], iterations: Int) {
        self.chains = chains
        self.iterations = iterations
    }

    /// The prompts iteration `k` (1-based) samples.
    public func trainingPrompts(_ all: [PromptItem], iteration k: Int) -> [PromptItem] {
        guard let size = promptsPerIteration, size < all.count, !all.isEmpty else { return all }
        let start = ((k - 1) * size) % all.count
        return (0..<size).map { all[(start + $0) % all.count] }
    }
}

/// The stages of a loop, in the order they run.
public enum LoopStage: String, Sendable, Hashable, Codable, CaseIterable {
    case sample, select, train, evaluate
}

/// One stage of one chain's iteration. Iteration 0 has only `evaluate`, shared by every chain
/// (the starting policy is the same): its chain is `LoopPlan.baseChain`.
public struct StageKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public var chain: String
    public var iteration: Int
    public var stage: LoopStage
    public init(chain: String, iteration: Int, stage: LoopStage) {
        self.chain = chain
        self.iteration = iteration
        self.stage = stage
    }
    public var description: String { "\(chain) iteration \(iteration) \(stage.rawValue)" }
}

public enum LoopPlan {
    /// The chain name of the starting policy's evaluation.
    public static let baseChain = "base"

    /// Every stage: the starting policy's evaluation, then each chain's iterations in turn.
    public static func stages(chains: [String], iterations: Int) -> [StageKey] {
        var out = [StageKey(chain: baseChain, iteration: 0, stage: .evaluate)]
        for c in chains {
            for k in stride(from: 1, through: iterations, by: 1) {
                for s in LoopStage.allCases { out.append(StageKey(chain: c, iteration: k, stage: s)) }
            }
        }
        return out
    }
}

/// Which pairs become refinement examples: refinements that beat the draft they refined
/// (`improving`, the paper's), synthetic pairs made of two responses to one prompt, the worse
/// as the draft and the better as its refinement (`synthetic`), or both.
public enum RefinePairs: String, Sendable, Hashable, CaseIterable {
    case improving, synthetic
    case both = "improving+synthetic"
    /// The least reward gap of a synthetic pair, on rewards in [0, 1].
    public static let defaultMargin = 0.1
}

/// Where a synthetic pair's feedback on its draft comes from.
public enum SyntheticFeedback: String, Sendable, Hashable, CaseIterable {
    /// With constraints, the verifier's critique of the draft (the sentences of the constraints it
    /// fails); without, the policy's feedback on that draft if its tree holds one, else none.
    case verifier
    /// The policy's own feedback on the draft: the tree's when PRS critiqued that draft, else
    /// generated for it with the feedback template by the policy that sampled the tree.
    case policy
}
