import Foundation
import Logging
import PRSBackends
import PRSCore

/// The concrete backends of a run, built from specs. The only place that names them.
struct Backends {
    let policy: any TextGenerator
    let reward: any RewardModel
    let feedback: (any FeedbackSource)?

    init(settings: SampleSettings, logger: Logger) throws {
        let policy = try Self.generator(settings.policy, settings: settings, logger: logger)
        self.policy = policy
        reward = try Self.reward(settings.reward, policy: policy, settings: settings, logger: logger)
        switch settings.feedback {
        case .selfFeedback:
            feedback = nil
        case .model(let spec):
            let g = try Self.generator(spec, settings: settings, logger: logger)
            feedback = GeneratorFeedback(generator: g, templates: settings.strategy.templates,
                                         parameters: settings.strategy.feedbackSampling, name: "model:\(spec)")
        }
    }

    static func generator(_ spec: PolicySpec, settings: SampleSettings, logger: Logger) throws -> any TextGenerator {
        switch spec {
        case .openAI(let endpoints):
            let env = ProcessInfo.processInfo.environment
            return OpenAIGenerator(
                endpoints: endpoints, concurrencyPerEndpoint: max(settings.concurrency * 2, 4),
                timeout: settings.timeout, retry: RetryPolicy(maxRetries: settings.retries),
                apiKey: env["PRS_API_KEY"] ?? env["OPENAI_API_KEY"], logger: logger)
        case .embedded(let path):
            do {
                return try EmbeddedGenerator(path: path, template: settings.template, contextTokens: settings.contextTokens, threads: settings.threads)
            } catch {
                throw CLIFailure.badInput("policy embedded:\(path): \(error)")
            }
        }
    }

    static func reward(_ spec: RewardSpec, policy: any TextGenerator, settings: SampleSettings, logger: Logger) throws -> any RewardModel {
        switch spec {
        case .judge(nil):
            return JudgeReward(generator: policy)
        case .judge(let p?):
            return JudgeReward(generator: try generator(p, settings: settings, logger: logger))
        case .rubric, .http:
            throw CLIFailure.badInput("reward \"\(spec)\" is not available in this version; use judge or judge:POLICY")
        case .mix(let parts):
            return WeightedReward(try parts.map { part in
                (part.weight, part.1.description, try reward(part.1, policy: policy, settings: settings, logger: logger))
            })
        }
    }
}
