/// What a trainer is given to make the next policy of a loop: the selected data of this
/// iteration (and, when training from the base, of the earlier ones), the base model, the
/// policy to start from, and a directory of its own.
public struct TrainingJob: Sendable, Hashable {
    public var chain: String
    public var iteration: Int
    /// SFT files (TRL's conversational `messages`), refinement files (prs's `refine.jsonl`)
    /// and preference files (TRL's `prompt`/`chosen`/`rejected`), oldest first.
    public var sft: [String]
    public var refine: [String]
    public var dpo: [String]
    /// The base model's policy spec (`embedded:M.gguf`, `openai:URL#model`).
    public var base: PolicySpec
    /// The policy to start from (nil: the base) and its adapter file when it has one.
    public var initPolicy: PolicySpec?
    public var initAdapter: String?
    /// Where the trainer writes: `adapter.gguf` and `train.jsonl` by convention.
    public var directory: String
    public var seed: UInt64

    public init(
        chain: String, iteration: Int, sft: [String], refine: [String], dpo: [String], base: PolicySpec,
        initPolicy: PolicySpec?, initAdapter: String?, directory: String, seed: UInt64
    ) {
        self.chain = chain
        self.iteration = iteration
        self.sft = sft
        self.refine = refine
        self.dpo = dpo
        self.base = base
        self.initPolicy = initPolicy
        self.initAdapter = initAdapter
        self.directory = directory
        self.seed = seed
    }

    /// Every data file, SFT then refinement then preference.
    public var files: [String] { sft + refine + dpo }
}

/// The new policy a trainer made.
public struct TrainedPolicy: Sendable, Hashable, Codable {
    /// A policy spec the loop samples and evaluates with: `embedded:M.gguf+A.gguf`, a merged
    /// `embedded:M2.gguf`, or a served model `openai:URL#name`.
    public var policy: PolicySpec
    /// The adapter file, when the policy is the base plus one.
    public var adapter: String?
    /// Training examples used, and the loss per optimizer step (empty when the trainer does not say).
    public var examples: Int
    public var losses: [Double]
    /// Tokens trained on (summed over steps), when known.
    public var tokens: Int?

    public init(policy: PolicySpec, adapter: String? = nil, examples: Int, losses: [Double] = [], tokens: Int? = nil) {
        self.policy = policy
        self.adapter = adapter
        self.examples = examples
        self.losses = losses
        self.tokens = tokens
    }

    public var finalLoss: Double? { losses.last }
}

/// Where a training job stands (passed to the progress callback).
public struct TrainingProgress: Sendable {
    public var step: Int
    public var steps: Int
    public var loss: Double?
    public var elapsedSeconds: Double
    public init(step: Int, steps: Int, loss: Double?, elapsedSeconds: Double) {
        self.step = step
        self.steps = steps
        self.loss = loss
        self.elapsedSeconds = elapsedSeconds
    }
}

/// Makes policy π(k) from π(k−1)'s selected data. An implementation resumes a job it was
/// given before (the same job, after a crash) rather than starting it over where it can.
public protocol PolicyTrainer: Sendable {
    /// Names the trainer and its settings; a loop directory refuses another identity on resume.
    var identity: String { get }
    func train(
        _ job: TrainingJob, onProgress: @escaping @Sendable (TrainingProgress) -> Void
    ) async throws -> TrainedPolicy
}
