import Foundation
import LMTraining
import PRSBackends
import PRSCore
import Yams

/// `prs loop`'s settings after merging the YAML config and the flags.
struct LoopConfig {
    var model: String
    var trainPrompts: String
    var evalPrompts: String
    var out: String
    var strategies: [(label: String, kind: StrategyKind, split: [Int]?, refine: RefinePairs?)]
    var iterations: Int
    var promptsPerIteration: Int?
    var budget: Int
    var reward: String
    var feedback: String
    var sampling: SamplingParameters
    var seed: UInt64
    var concurrency: Int
    var threads: Int
    var maxBatch: Int?
    var cacheTokens: Int?
    var select = LoopSettings.Select()
    var initFrom = LoopSettings.Init.previous
    var evaluate = LoopSettings.Evaluate()
    var judge: String?
    var train = TrainSettings()
    var trainMaxLength = 1024
    var template: String?
    var trainerCommand: String?
    /// `serve:`: a running server that takes each iteration's adapter at run time (vLLM's endpoints).
    var serve: (url: String, format: RuntimeAdapterServer.Format, apiKeyEnv: String?, namePrefix: String?)?

    /// The settings that shape the loop's data, compared when a loop directory is reused.
    /// `iterations` may grow (the loop goes on), and throughput settings may change.
    func fingerprint(files: [String: String]) -> [String: String] {
        func s<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "" }
        var out: [String: String] = [
            "model": model, "train_prompts": trainPrompts, "eval_prompts": evalPrompts,
            "strategies": strategies.map {
                $0.label + ($0.split.map { ":" + $0.map(String.init).joined(separator: "+") } ?? "")
                    + ($0.refine.map { "/" + $0.rawValue } ?? "")
            }.joined(separator: ","),
            "prompts_per_iteration": s(promptsPerIteration), "budget": "\(budget)", "reward": reward,
            "feedback": feedback,
            "seed": "\(seed)",
            "select": "sft=\(select.sft) min_reward=\(s(select.minReward)) refine=\(s(select.refine))"
                + (select.refinePairs == .improving
                    ? "" : " pairs=\(select.refinePairs.rawValue) margin=\(select.syntheticMargin)")
                + (select.syntheticFeedback == .verifier
                    ? "" : " synthetic_feedback=\(select.syntheticFeedback.rawValue)")
                + " dpo=\(select.dpo) min_margin=\(select.minMargin)",
            "train.init": initFrom.rawValue,
            "evaluate": "samples=\(evaluate.samples) greedy=\(evaluate.greedy) judge=\(s(judge))"
                + (evaluate.search.map { " search=\($0)" } ?? "")
                + (evaluate.searchChains.map { " search_chains=" + $0.sorted().joined(separator: ",") } ?? ""),
            "trainer": trainerCommand.map { "command:" + $0 } ?? "embedded",
            "train": train.fingerprint + " max_length=\(trainMaxLength) template=\(s(template))",
        ]
        out.merge(RunSettings.samplingFields(sampling)) { a, _ in a }
        if let serve { out["serve"] = "\(serve.url) format=\(serve.format.rawValue) prefix=\(s(serve.namePrefix))" }
        for (k, v) in files { out["file:" + k] = v }
        return out
    }

    /// A flag's value over the config's; both are evaluated, so the config's key is read (and
    /// checked) even when a flag overrides it, and is not taken for an unknown setting.
    /// A strategy as written in `strategies` (`prs:2+2`, `prs/synthetic`) as its chain's name and directory.
    static func chainLabel(_ name: String) -> String {
        name.replacingOccurrences(of: ":", with: "-").replacingOccurrences(of: "+", with: "-").replacingOccurrences(
            of: "/", with: "-")
    }

    static func either<T>(_ flag: T?, _ config: T?) -> T? { flag ?? config }

    static func resolve(_ flags: LoopOptions) throws -> LoopConfig {
        let c =
            try flags.config.map(ConfigReader.load) ?? ConfigReader(file: "(flags)", node: Yams.Node.mapping(.init([])))
        func need<T>(_ v: T?, _ key: String) throws -> T {
            guard let v else {
                throw CLIFailure.badInput(
                    "\(c.file): \(key): missing (set it in the config or with "
                        + "--\(key.replacingOccurrences(of: "_", with: "-")))"
                )
            }
            return v
        }
        var model = try c.string("model") ?? ProcessInfo.processInfo.environment["PRS_POLICY"] ?? DefaultModel.spec()
        if let m = model, !m.hasPrefix("embedded:"), !m.hasPrefix("openai:") { model = "embedded:" + m }
        let trainPrompts = try need(either(flags.trainPrompts, c.string("train_prompts")), "train_prompts")
        let evalPrompts = try need(either(flags.evalPrompts, c.string("eval_prompts")), "eval_prompts")
        let iterations = try either(flags.iterations, c.int("iterations", min: 1)) ?? 3
        guard iterations >= 1 else { throw CLIFailure.badInput("--iterations must be at least 1") }
        let names =
            try either(
                flags.strategies.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } },
                c.list("strategies")) ?? ["prs", "rand"]
        var strategies: [(String, StrategyKind, [Int]?, RefinePairs?)] = []
        for name in names {
            // NAME[:SPLIT][/REFINE]: the chain's own refinement examples (prs/synthetic).
            let slash = name.split(separator: "/", maxSplits: 1).map(String.init)
            let n = slash[0]
            var refine: RefinePairs?
            if slash.count > 1 {
                guard let r = RefinePairs(rawValue: slash[1]) else {
                    throw c.problem(
                        "strategies", "\"\(name)\": after / comes improving, synthetic or improving+synthetic")
                }
                refine = r
            }
            let parts = n.split(separator: ":", maxSplits: 1).map(String.init)
            guard let kind = StrategyKind(rawValue: parts[0]), kind != .greedy else {
                throw c.problem(
                    "strategies",
                    "\"\(name)\": expected rand, prand, prs or prs-nofeedback, optionally with a split (prs:2+2) and "
                        + "refinement pairs (prs/synthetic)"
                )
            }
            var split: [Int]?
            if parts.count > 1 {
                split = try parts[1].split(separator: "+").map { p in
                    guard let v = Int(p) else {
                        throw c.problem("strategies", "\"\(n)\": the split is layer sizes joined by +, like prs:2+2")
                    }
                    return v
                }
            }
            let label = Self.chainLabel(name)
            strategies.append((label, kind, split, refine))
        }
        guard !strategies.isEmpty, Set(strategies.map(\.0)).count == strategies.count else {
            throw c.problem("strategies", "name each strategy once")
        }
        var sampling = SamplingParameters.paper
        sampling.maxTokens = try c.int("max_tokens", min: 1) ?? sampling.maxTokens
        sampling.temperature = try c.double("temperature", range: 0...5) ?? sampling.temperature
        sampling.topK = try c.int("top_k", min: 0) ?? sampling.topK
        sampling.topP = try c.double("top_p", range: 0...1)
        sampling.presencePenalty = try c.double("presence_penalty") ?? sampling.presencePenalty
        var config = LoopConfig(
            model: try need(model, "model"), trainPrompts: trainPrompts, evalPrompts: evalPrompts,
            out: try need(either(flags.out, c.string("out")), "out"), strategies: strategies, iterations: iterations,
            promptsPerIteration: try c.int("prompts_per_iteration", min: 1),
            budget: try c.int("budget", min: 1) ?? 8, reward: try c.string("reward") ?? "rubric",
            feedback: try c.string("feedback") ?? "self",
            sampling: sampling, seed: UInt64(try c.int("seed", min: 0) ?? 0),
            concurrency: try either(flags.concurrency, c.int("concurrency", min: 1)) ?? 8,
            threads: try either(flags.threads, c.int("threads", min: 1))
                ?? ProcessInfo.processInfo.activeProcessorCount,
            maxBatch: try c.int("max_batch", min: 1), cacheTokens: try c.int("kv_cache_tokens", min: 16))
        if let split = try c.string("split") {
            let layers = split.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard layers.reduce(0, +) == config.budget else {
                throw c.problem("split", "\"\(split)\" must sum to the budget \(config.budget)")
            }
            config.strategies = config.strategies.map { s in
                (s.label, s.kind, s.split ?? ((s.kind == .prs || s.kind == .prsNoFeedback) ? layers : nil), s.refine)
            }
        }
        if let s = try c.section("select") {
            if let v = try s.string("sft") {
                if v == "best" {
                    config.select.sft = .best
                } else if v == "top-k" {
                    config.select.sft = .topK(try s.int("top_k", min: 1) ?? 2)
                } else {
                    throw s.problem("sft", "\"\(v)\": expected best or top-k")
                }
            }
            _ = try s.int("top_k", min: 1)
            config.select.minReward = try s.double("min_reward")
            if let v = try s.string("refine") {
                if v == "none" {
                    config.select.refine = false
                } else if let pairs = RefinePairs(rawValue: v) {
                    config.select.refine = true
                    config.select.refinePairs = pairs
                } else {
                    throw s.problem("refine", "\"\(v)\": expected improving, synthetic, improving+synthetic or none")
                }
            }
            if let m = try s.double("synthetic_margin") {
                guard m > 0 else { throw s.problem("synthetic_margin", "\(m): it must be above 0") }
                config.select.syntheticMargin = m
            }
            if let v = try s.string("synthetic_feedback") {
                guard let f = SyntheticFeedback(rawValue: v) else {
                    throw s.problem("synthetic_feedback", "\"\(v)\": expected verifier or policy")
                }
                config.select.syntheticFeedback = f
            }
            if let v = try s.string("dpo") {
                guard v == "none" || v == "best-worst" else {
                    throw s.problem("dpo", "\"\(v)\": expected none or best-worst")
                }
                config.select.dpo = v == "best-worst"
            }
            config.select.minMargin = try s.double("min_margin") ?? 0
            try s.checkUnknown()
        }
        if let e = try c.section("evaluate") {
            config.evaluate.samples = try e.int("samples", min: 1) ?? config.evaluate.samples
            config.evaluate.greedy = try e.bool("greedy") ?? config.evaluate.greedy
            config.evaluate.search = try e.int("search", min: 2)
            if let names = try e.list("search_chains") {
                let labels = Set(config.strategies.map(\.label))
                config.evaluate.searchChains = try Set(
                    names.map { name in
                        let label = Self.chainLabel(name)
                        guard labels.contains(label) else {
                            throw e.problem(
                                "search_chains",
                                "\"\(name)\" is not one of the loop's strategies "
                                    + "(\(config.strategies.map(\.label).joined(separator: ", ")))"
                            )
                        }
                        return label
                    })
                guard config.evaluate.search != nil else { throw e.problem("search_chains", "it needs search: N") }
            }
            config.judge = try e.string("judge")
            try e.checkUnknown()
        }
        config.evaluate.sampling = sampling
        if let t = try c.section("train") { try readTrain(t, into: &config) }
        config.train.threads = config.threads
        if let n = c.node("trainer") {
            if let s = n.scalar?.string {
                guard s == "embedded" else {
                    throw c.problem("trainer", "\"\(s)\": expected embedded, or a mapping with command: \"…\"")
                }
            } else {
                let t = try ConfigReader(file: c.file, node: n, prefix: "trainer.")
                guard let cmd = try t.string("command"), !cmd.isEmpty else {
                    throw c.problem(
                        "trainer", "a mapping needs command: \"…\" ({data}, {base}, {init}, {out} are filled in)")
                }
                config.trainerCommand = cmd
                try t.checkUnknown()
            }
        }
        if let v = try c.section("serve") {
            guard let url = try v.string("url"), url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw c.problem(
                    "serve",
                    "needs url: http://HOST:PORT/v1, a running vLLM (VLLM_ALLOW_RUNTIME_LORA_UPDATING=True) or prs "
                        + "serve --allow-runtime-lora"
                )
            }
            var format = RuntimeAdapterServer.Format.peft
            if let f = try v.string("format") {
                guard let parsed = RuntimeAdapterServer.Format(rawValue: f) else {
                    throw v.problem("format", "\"\(f)\": expected peft (vLLM, prs serve) or gguf (prs serve)")
                }
                format = parsed
            }
            config.serve = (url, format, try v.string("api_key_env"), try v.string("name_prefix"))
            try v.checkUnknown()
        }
        if config.trainerCommand == nil, !config.model.hasPrefix("embedded:") {
            throw c.problem(
                "model", "the embedded trainer fine-tunes a GGUF file; for a served model use trainer: {command: \"…\"}"
            )
        }
        try c.checkUnknown()
        return config
    }

    static func readTrain(_ t: ConfigReader, into config: inout LoopConfig) throws {
        var s = config.train
        if let v = try t.string("objective") {
            guard let o = TrainSettings.Objective(rawValue: v) else {
                throw t.problem("objective", "\"\(v)\": expected sft or dpo")
            }
            s.objective = o
        }
        if let v = try t.string("init") {
            guard let i = LoopSettings.Init(rawValue: v) else {
                throw t.problem("init", "\"\(v)\": expected previous or base")
            }
            config.initFrom = i
        }
        var lora = s.lora ?? LoRASettings()
        lora.rank = try t.int("lora_rank", min: 1) ?? lora.rank
        lora.alpha = try t.double("lora_alpha") ?? lora.alpha
        lora.dropout = try t.double("lora_dropout", range: 0...0.99) ?? lora.dropout
        if let v = try t.string("lora_targets") {
            do { lora.targets = try Projection.parseList(v) } catch { throw t.problem("lora_targets", "\(error)") }
        }
        s.lora = lora
        s.epochs = try t.int("epochs", min: 1) ?? s.epochs
        if let lr = try t.double("lr") {
            guard lr > 0 else { throw t.problem("lr", "must be positive") }
            s.learningRate = lr
        }
        s.batchTokens = try t.int("batch_tokens", min: 1) ?? s.batchTokens
        s.batchExamples = try t.int("batch_examples", min: 1) ?? s.batchExamples
        s.microBatchTokens = try t.int("micro_batch_tokens", min: 1) ?? s.microBatchTokens
        config.trainMaxLength = try t.int("max_length", min: 2) ?? config.trainMaxLength
        if let v = try t.string("schedule") {
            guard let sh = LearningRateSchedule.Shape(rawValue: v) else {
                throw t.problem("schedule", "\"\(v)\": expected cosine, linear or constant")
            }
            s.schedule = sh
        }
        s.warmup = try t.double("warmup", range: 0...0.99) ?? s.warmup
        s.beta = try t.double("beta") ?? s.beta
        s.sftWeight = try t.double("sft_weight") ?? s.sftWeight
        s.weightDecay = try t.double("weight_decay") ?? s.weightDecay
        s.maxGradNorm = try t.double("max_grad_norm") ?? s.maxGradNorm
        if let v = try t.string("precision") {
            guard let p = TrainSettings.Precision(rawValue: v) else {
                throw t.problem("precision", "\"\(v)\": expected fp32 or bf16")
            }
            s.precision = p
        }
        s.checkpointEvery = try t.int("checkpoint_every", min: 0) ?? s.checkpointEvery
        if let v = try t.string("checkpointing") {
            guard let c = TrainSettings.Checkpointing(rawValue: v) else {
                throw t.problem("checkpointing", "\"\(v)\": expected auto, on or off")
            }
            s.checkpointing = c
        }
        config.template = try t.string("template")
        try t.checkUnknown()
        config.train = s
    }
}
