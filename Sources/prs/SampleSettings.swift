import Foundation
import PRSBackends
import PRSCore
import PRSStore
import Yams

/// The settings of `prs sample` after merging the YAML config and the flags.
struct SampleSettings {
    var prompts: String
    var out: String
    var strategy: StrategyConfig
    var policy: PolicySpec
    var reward: RewardSpec
    var feedback: FeedbackSpec
    var concurrency: Int
    var timeout: Double
    var retries: Int
    var skipInvalid: Bool
    var template: String?
    var contextTokens: Int
    var threads: Int
    var maxBatch: Int?
    var cacheTokens: Int?
    var shard: Shard?
    var force: Bool
    var durability: RunStore.Durability
    var maxAttempts: Int

    /// The settings that shape a run's data, compared when a run directory is reused.
    /// Throughput settings (concurrency, threads, timeouts) may change between resumes.
    var runSettings: RunSettings {
        RunSettings(
            strategy: strategy, policy: policy.description, reward: reward.description, feedback: feedback.description,
            shard: shard)
    }

    var backendOptions: BackendOptions {
        BackendOptions(
            concurrency: concurrency, timeout: timeout, retries: retries, template: template,
            contextTokens: contextTokens, threads: threads, maxBatch: maxBatch, cacheTokens: cacheTokens)
    }

    static func resolve(flags: SampleOptions) throws -> SampleSettings {
        let file = try flags.config.map(ConfigFile.load) ?? ConfigFile()
        func need<T>(_ v: T?, _ name: String) throws -> T {
            guard let v else {
                throw CLIFailure.badInput(
                    "missing --\(name) (or \(name.replacingOccurrences(of: "-", with: "_")) in --config)")
            }
            return v
        }
        let prompts = try need(flags.prompts ?? file.prompts, "prompts")
        let out = try need(flags.out ?? file.out, "out")
        let kindName = flags.strategy ?? file.strategy ?? "prs"
        guard let kind = StrategyKind(rawValue: kindName) else {
            throw CLIFailure.badInput(
                "strategy \"\(kindName)\": expected one of "
                    + "\(StrategyKind.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        var split: [Int]?
        if let s = flags.split ?? file.split {
            split = try s.split(separator: ",").map { part in
                guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else {
                    throw CLIFailure.badInput(
                        "split \"\(s)\": \"\(part)\" is not a whole number; write layer sizes like 4,4")
                }
                return v
            }
        }
        let budget = flags.budget ?? file.budget ?? split?.reduce(0, +) ?? 8
        var sampling = SamplingParameters.paper
        sampling.temperature = flags.temperature ?? file.temperature ?? sampling.temperature
        sampling.topK = flags.topK ?? file.topK ?? sampling.topK
        sampling.topP = flags.topP ?? file.topP
        sampling.minP = flags.minP ?? file.minP
        sampling.presencePenalty = flags.presencePenalty ?? file.presencePenalty ?? sampling.presencePenalty
        sampling.frequencyPenalty = file.frequencyPenalty
        sampling.maxTokens = flags.maxTokens ?? file.maxTokens ?? sampling.maxTokens
        sampling.stop = file.stop
        if let mt = sampling.maxTokens, mt < 1 { throw CLIFailure.badInput("max-tokens must be at least 1, got \(mt)") }
        if let t = sampling.temperature, t < 0 { throw CLIFailure.badInput("temperature must be 0 or more, got \(t)") }

        var templates = PromptTemplates.standard
        for (key, path) in file.templates ?? [:] {
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw CLIFailure.badInput("template \(key): cannot read \(path): \(error.localizedDescription)")
            }
            switch key {
            case "conditioned": templates.conditioned = text
            case "feedback": templates.feedback = text
            case "refine": templates.refine = text
            case "refine_nofeedback": templates.refineWithoutFeedback = text
            default:
                throw CLIFailure.badInput(
                    "templates.\(key): unknown template; known: conditioned, feedback, refine, refine_nofeedback")
            }
        }
        let strategy: StrategyConfig
        do {
            try templates.validate()
            strategy = try StrategyConfig(
                kind: kind, budget: budget, split: split, sampling: sampling,
                runSeed: flags.seed ?? file.seed ?? 0, templates: templates)
        } catch let e as ConfigError {
            throw CLIFailure.badInput(e.description)
        }
        guard
            let policyText = flags.policy ?? file.policy ?? ProcessInfo.processInfo.environment["PRS_POLICY"]
                ?? DefaultModel.spec()
        else {
            throw CLIFailure.badInput(
                "no --policy, and the default model is not at \(DefaultModel.relativePath): run scripts/setup.sh, or "
                    + "pass --policy embedded:PATH.gguf or openai:http://HOST:PORT/v1"
            )
        }
        let concurrency = flags.concurrency ?? file.concurrency ?? 4
        guard concurrency >= 1 else { throw CLIFailure.badInput("concurrency must be at least 1, got \(concurrency)") }
        do {
            let reward = try RewardSpec.read(flags.reward ?? file.reward ?? "judge")
            var strategy = strategy
            if flags.normalize || (file.normalize ?? false) {
                guard case .mix(let parts) = reward else {
                    throw CLIFailure.badInput(
                        "--normalize z-normalises the parts of a mixed reward within each tree; give a mix such as "
                            + "0.5*rubric+0.5*judge (one reward's ranking would not change)"
                    )
                }
                strategy.normalization = .zScore(
                    weights: parts.reduce(into: [:]) { $0[$1.1.description, default: 0] += $1.weight })
            }
            return SampleSettings(
                prompts: prompts, out: out, strategy: strategy,
                policy: try PolicySpec.parse(policyText),
                reward: reward,
                feedback: try FeedbackSpec.parse(flags.feedback ?? file.feedback ?? "self"),
                concurrency: concurrency,
                timeout: flags.timeout ?? file.timeout ?? 300,
                retries: flags.retries ?? file.retries ?? 4,
                skipInvalid: flags.skipInvalid || (file.skipInvalid ?? false),
                template: flags.template ?? file.template,
                contextTokens: file.contextTokens ?? 4096,
                threads: flags.threads ?? file.threads ?? ProcessInfo.processInfo.activeProcessorCount,
                maxBatch: try (flags.maxBatch ?? file.maxBatch).map { n in
                    guard n >= 1 else { throw CLIFailure.badInput("max-batch must be at least 1, got \(n)") }
                    return n
                },
                cacheTokens: try (flags.kvCacheTokens ?? file.kvCacheTokens).map { n in
                    guard n >= 16 else { throw CLIFailure.badInput("kv-cache-tokens must be at least 16, got \(n)") }
                    return n
                },
                shard: try (flags.shard ?? file.shard).map(Shard.init),
                force: flags.force,
                durability: try {
                    let d = flags.durability ?? file.durability ?? "full"
                    guard let v = RunStore.Durability(rawValue: d) else {
                        throw CLIFailure.badInput(
                            "durability \"\(d)\": expected full (a committed node survives power loss) or normal "
                                + "(faster; survives a crash of prs)"
                        )
                    }
                    return v
                }(),
                maxAttempts: try {
                    let n = flags.maxAttempts ?? file.maxAttempts ?? 3
                    guard n >= 1 else { throw CLIFailure.badInput("max-attempts must be at least 1, got \(n)") }
                    return n
                }())
        } catch let e as SpecError {
            throw CLIFailure.badInput(e.description)
        }
    }
}

/// The YAML config of `prs sample`: the flags' names in snake_case.
struct ConfigFile: Decodable {
    var prompts: String?
    var out: String?
    var strategy: String?
    var budget: Int?
    var split: String?
    var policy: String?
    var reward: String?
    var feedback: String?
    var concurrency: Int?
    var seed: UInt64?
    var maxTokens: Int?
    var temperature: Double?
    var topK: Int?
    var topP: Double?
    var minP: Double?
    var presencePenalty: Double?
    var frequencyPenalty: Double?
    var stop: [String]?
    var timeout: Double?
    var retries: Int?
    var skipInvalid: Bool?
    var templates: [String: String]?
    var template: String?
    var contextTokens: Int?
    var threads: Int?
    var maxBatch: Int?
    var kvCacheTokens: Int?
    var normalize: Bool?
    var shard: String?
    var durability: String?
    var maxAttempts: Int?

    init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case prompts, out, strategy, budget, split, policy, reward, feedback, concurrency, seed
        case temperature, stop, timeout, retries, templates, template, threads, normalize, shard, durability
        case maxAttempts = "max_attempts"
        case maxBatch = "max_batch"
        case kvCacheTokens = "kv_cache_tokens"
        case contextTokens = "context_tokens"
        case maxTokens = "max_tokens"
        case topK = "top_k"
        case topP = "top_p"
        case minP = "min_p"
        case presencePenalty = "presence_penalty"
        case frequencyPenalty = "frequency_penalty"
        case skipInvalid = "skip_invalid"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func opt<T: Decodable>(_ k: CodingKeys) throws -> T? { try c.decodeIfPresent(T.self, forKey: k) }
        prompts = try opt(.prompts)
        out = try opt(.out)
        strategy = try opt(.strategy)
        budget = try opt(.budget)
        policy = try opt(.policy)
        reward = try opt(.reward)
        feedback = try opt(.feedback)
        concurrency = try opt(.concurrency)
        seed = try opt(.seed)
        maxTokens = try opt(.maxTokens)
        temperature = try opt(.temperature)
        topK = try opt(.topK)
        topP = try opt(.topP)
        minP = try opt(.minP)
        presencePenalty = try opt(.presencePenalty)
        frequencyPenalty = try opt(.frequencyPenalty)
        stop = try opt(.stop)
        timeout = try opt(.timeout)
        retries = try opt(.retries)
        skipInvalid = try opt(.skipInvalid)
        templates = try opt(.templates)
        template = try opt(.template)
        contextTokens = try opt(.contextTokens)
        threads = try opt(.threads)
        normalize = try opt(.normalize)
        shard = try opt(.shard)
        durability = try opt(.durability)
        maxAttempts = try opt(.maxAttempts)
        maxBatch = try opt(.maxBatch)
        kvCacheTokens = try opt(.kvCacheTokens)
        // split may be written 4,4 (a string) or [4, 4] (a list).
        if let list = try? c.decodeIfPresent([Int].self, forKey: .split) {
            split = list.map(String.init).joined(separator: ",")
        } else {
            split = try opt(.split)
        }
    }

    /// Reads `path`, refusing unknown keys (a typo must not be ignored) and naming the line at fault.
    static func load(_ path: String) throws -> ConfigFile {
        guard let node = try ConfigReader.yaml(path) else { return ConfigFile() }
        guard let mapping = node.mapping else {
            throw CLIFailure.badInput("\(path): the config must be a mapping of settings")
        }
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        for key in mapping.keys {
            guard let name = key.string, known.contains(name) else {
                let line = key.mark.map { ":\($0.line)" } ?? ""
                throw CLIFailure.badInput(
                    "\(path)\(line): \(key.string ?? "?"): unknown setting; known: "
                        + "\(known.sorted().joined(separator: ", "))"
                )
            }
        }
        do {
            return try YAMLDecoder().decode(ConfigFile.self, from: node)
        } catch let DecodingError.typeMismatch(type, ctx) {
            let key = ctx.codingPath.map(\.stringValue).joined(separator: ".")
            let line =
                ctx.codingPath.first.flatMap { k in
                    mapping.keys.first { (n: Yams.Node) in n.string == k.stringValue }?.mark
                }.map { ":\($0.line)" } ?? ""
            throw CLIFailure.badInput("\(path)\(line): \(key): expected \(type)")
        } catch {
            throw CLIFailure.badInput("\(path): \(error)")
        }
    }
}

/// The embedded default: SmolLM2-135M-Instruct, installed by scripts/setup.sh into models/.
enum DefaultModel {
    static let relativePath = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    /// `embedded:PATH` when the model is found under the working directory, `PRS_HOME`, or the
    /// checkout that holds this executable (.build/<config>/prs).
    static func spec() -> String? {
        var roots = [FileManager.default.currentDirectoryPath]
        if let home = ProcessInfo.processInfo.environment["PRS_HOME"] { roots.insert(home, at: 0) }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            roots.append(dir.path)
            dir = dir.deletingLastPathComponent()
        }
        for root in roots {
            let path = URL(fileURLWithPath: root).appendingPathComponent(relativePath).path
            if FileManager.default.fileExists(atPath: path) { return "embedded:" + path }
        }
        return nil
    }
}
