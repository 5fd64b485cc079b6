import Foundation
import Logging
import PRSBackends
import PRSCore

/// How backends reach their models: shared by every command that builds them.
struct BackendOptions {
    var concurrency = 4
    var timeout = 300.0
    var retries = 4
    var template: String?
    var contextTokens = 4096
    var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Embedded engine: sequences decoded together, and KV cache positions (nil: the engine's defaults).
    var maxBatch: Int?
    var cacheTokens: Int?
}

/// The concrete backends of a run, built from specs. The only place that names them.
struct Backends {
    let policy: any TextGenerator
    let reward: any RewardModel
    let feedback: (any FeedbackSource)?

    init(settings: SampleSettings, logger: Logger) throws {
        let options = settings.backendOptions
        let policy = try Self.generator(settings.policy, options: options, logger: logger)
        self.policy = policy
        reward = try Self.reward(settings.reward, policy: { policy }, options: options, logger: logger)
        feedback = try Self.feedback(settings, options: options, logger: logger)
    }

    /// The in-process engine serving this run: the policy's, else a critic's or a judge's.
    var engine: (any EngineReporting)? {
        func of(_ r: any RewardModel) -> (any EngineReporting)? {
            if let j = r as? JudgeReward { return j.generator as? any EngineReporting }
            if let w = r as? WeightedReward { return w.parts.lazy.compactMap { of($0.model) }.first }
            return nil
        }
        return policy as? any EngineReporting ?? (feedback as? GeneratorFeedback)?.generator as? any EngineReporting
            ?? of(reward)
    }

    init(policy: any TextGenerator, reward: any RewardModel, feedback: (any FeedbackSource)?) {
        self.policy = policy
        self.reward = reward
        self.feedback = feedback
    }

    /// The feedback source of `settings` (`nil`: the policy critiques itself).
    static func feedback(
        _ settings: SampleSettings, options: BackendOptions, logger: Logger
    ) throws -> (any FeedbackSource)? {
        switch settings.feedback {
        case .selfFeedback:
            return nil
        case .verifier:
            return VerifierFeedback()
        case .model(let spec):
            let g = try generator(spec, options: options, logger: logger)
            return GeneratorFeedback(
                generator: g, templates: settings.strategy.templates,
                parameters: settings.strategy.feedbackSampling, name: "model:\(spec)")
        }
    }

    static func generator(_ spec: PolicySpec, options: BackendOptions, logger: Logger) throws -> any TextGenerator {
        switch spec {
        case .openAI(let endpoints):
            let env = ProcessInfo.processInfo.environment
            return OpenAIGenerator(
                endpoints: endpoints, concurrencyPerEndpoint: max(options.concurrency * 2, 4),
                timeout: options.timeout, retry: RetryPolicy(maxRetries: options.retries),
                apiKey: env["PRS_API_KEY"] ?? env["OPENAI_API_KEY"], logger: logger)
        case .embedded(let path, let adapters):
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIFailure.badInput(
                    "policy \(spec): \(path): no such file; `make demo` or `bash scripts/setup.sh` downloads the "
                        + "default model (SmolLM2-135M-Instruct) into models/"
                )
            }
            do {
                return try EmbeddedGenerator(
                    path: path, adapters: adapters, template: options.template, contextTokens: options.contextTokens,
                    threads: options.threads, maxBatch: options.maxBatch, cacheTokens: options.cacheTokens)
            } catch {
                throw CLIFailure.badInput("policy \(spec): \(error)")
            }
        }
    }

    /// `policy` is called only when a bare `judge` needs the policy as its judge.
    static func reward(
        _ spec: RewardSpec, policy: () throws -> any TextGenerator, options: BackendOptions, logger: Logger
    ) throws -> any RewardModel {
        switch spec {
        case .judge(nil):
            return JudgeReward(generator: try policy())
        case .judge(let p?):
            return JudgeReward(generator: try generator(p, options: options, logger: logger))
        case .rubric(let mode):
            return RubricReward(mode: mode)
        case .http(let url):
            do {
                return try HTTPRewardModel.make(
                    url: url, logger: logger, timeout: options.timeout, retry: RetryPolicy(maxRetries: options.retries))
            } catch {
                throw CLIFailure.badInput("\(error)")
            }
        case .mix(let parts):
            return WeightedReward(
                try parts.map { part in
                    (
                        part.weight, part.1.description,
                        try reward(part.1, policy: policy, options: options, logger: logger)
                    )
                })
        }
    }
}
