import Foundation

/// What shapes a run's data: stored with the run, and compared key by key when its directory is
/// reused (`prs sample`, `prs compare`, and every run a loop makes). Throughput settings
/// (concurrency, threads, timeouts) are not in it: they may change between resumes. A loop's own
/// fingerprint takes its sampling keys from ``samplingFields(_:)``, so a setting is told apart
/// wherever it is set.
///
/// A run stores it as a flat map of strings (``fields``), the form runs have always stored, so
/// stores written before this type existed open as they are.
public struct RunSettings: Sendable, Hashable, Codable {
    public var strategy: StrategyKind
    public var budget: Int
    /// Samples per layer.
    public var split: [Int]
    public var seed: UInt64
    public var sampling: SamplingParameters
    /// The prompt templates' content hash; nil in runs stored without one (a loop's, before).
    public var templates: String?
    /// Weights of z-normalised reward components; nil: the reward as it is.
    public var normalize: [String: Double]?
    /// The policy as written (`embedded:PATH[+ADAPTER]`, `openai:URL#model`).
    public var policy: String
    /// The reward's spec or identity.
    public var reward: String
    /// The feedback's spec; nil in runs stored without one.
    public var feedback: String?
    public var shard: Shard?
    /// The loop stage a loop's run belongs to (`prs iteration 1 sample`).
    public var loopStage: String?

    public init(
        strategy config: StrategyConfig, policy: String, reward: String, feedback: String?,
        shard: Shard? = nil, loopStage: String? = nil
    ) {
        strategy = config.kind
        budget = config.budget
        split = config.split
        seed = config.runSeed
        sampling = config.sampling
        let t = config.templates
        templates = ContentHash.fnv1a64(
            Array([t.conditioned, t.feedback, t.refine, t.refineWithoutFeedback].joined(separator: "\u{0}").utf8))
        if case .zScore(let w) = config.normalization { normalize = w }
        self.policy = policy
        self.reward = reward
        self.feedback = feedback
        self.shard = shard
        self.loopStage = loopStage
    }

    /// The sampling keys of a run's (and a loop's) fingerprint: every parameter that changes what is sampled.
    public static func samplingFields(_ p: SamplingParameters) -> [String: String] {
        func s<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "" }
        return [
            "temperature": s(p.temperature), "top_k": s(p.topK), "top_p": s(p.topP), "min_p": s(p.minP),
            "presence_penalty": s(p.presencePenalty), "frequency_penalty": s(p.frequencyPenalty),
            "repetition_penalty": s(p.repetitionPenalty), "max_tokens": s(p.maxTokens),
            "stop": (p.stop ?? []).joined(separator: "\u{1F}"),
        ]
    }

    /// The flat map a run stores and compares.
    public var fields: [String: String] {
        var out = Self.samplingFields(sampling)
        out["strategy"] = strategy.rawValue
        out["budget"] = "\(budget)"
        out["split"] = split.map(String.init).joined(separator: ",")
        out["seed"] = "\(seed)"
        out["policy"] = policy
        out["reward"] = reward
        out["templates"] = templates ?? ""
        out["shard"] = shard?.description ?? ""
        if let feedback { out["feedback"] = feedback }
        if let normalize {
            out["normalize"] = normalize.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(
                separator: ",")
        }
        if let loopStage { out["loop_stage"] = loopStage }
        return out
    }

    /// Reads a stored map; a key a store lacks (it was added later) reads as unset.
    public init(fields f: [String: String]) throws {
        func bad(_ key: String) -> SpecError { SpecError("run settings: \(key) \"\(f[key] ?? "")\" is not readable") }
        func opt<T: LosslessStringConvertible>(_ key: String) throws -> T? {
            guard let v = f[key], !v.isEmpty else { return nil }
            guard let t = T(v) else { throw bad(key) }
            return t
        }
        guard let kind = StrategyKind(rawValue: f["strategy"] ?? "") else {
            throw SpecError("run settings: unknown strategy \"\(f["strategy"] ?? "")\"")
        }
        strategy = kind
        budget = try opt("budget") ?? 1
        split = try (f["split"] ?? "").split(separator: ",").map {
            guard let v = Int($0) else { throw bad("split") }
            return v
        }
        seed = try opt("seed") ?? 0
        let stop = (f["stop"] ?? "").split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        sampling = SamplingParameters(
            temperature: try opt("temperature"), topP: try opt("top_p"), topK: try opt("top_k"), minP: try opt("min_p"),
            presencePenalty: try opt("presence_penalty"), frequencyPenalty: try opt("frequency_penalty"),
            repetitionPenalty: try opt("repetition_penalty"), maxTokens: try opt("max_tokens"),
            stop: (f["stop"] ?? "").isEmpty ? nil : stop)
        templates = f["templates"].flatMap { $0.isEmpty ? nil : $0 }
        if let n = f["normalize"], !n.isEmpty {
            var w: [String: Double] = [:]
            for part in n.split(separator: ",") {
                let kv = part.split(separator: "=", maxSplits: 1)
                guard kv.count == 2, let v = Double(kv[1]) else { throw bad("normalize") }
                w[String(kv[0])] = v
            }
            normalize = w
        }
        policy = f["policy"] ?? ""
        reward = f["reward"] ?? ""
        feedback = f["feedback"]
        shard = try f["shard"].flatMap { $0.isEmpty ? nil : try Shard($0) }
        loopStage = f["loop_stage"]
    }

    public init(from decoder: any Decoder) throws {
        let map = try decoder.singleValueContainer().decode([String: String].self)
        do { try self.init(fields: map) } catch let e as SpecError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(fields)
    }

    /// Keys whose values differ between a stored map and this invocation's, sorted. A key one side
    /// lacks reads as empty: a setting added in a later version, left at its default, is no difference,
    /// so directories written before it was added still resume.
    public static func differences(_ a: [String: String], _ b: [String: String], ignoring: Set<String> = []) -> [String]
    {
        Set(a.keys).union(b.keys).subtracting(ignoring).filter { (a[$0] ?? "") != (b[$0] ?? "") }.sorted()
    }
}
