import Foundation
import LMEngine
import PRSCore

/// A `TextGenerator` running a GGUF model in-process (`embedded:PATH.gguf`).
///
/// Messages are rendered with the model's chat template (or one named), and `n` is native:
/// the prompt is evaluated once and its KV cache serves the `n` continuations, with seeds
/// `seed, seed+1, …`. One engine per model file serves every request of the process (policy,
/// judge and feedback alike), batching requests in flight together.
public struct EmbeddedGenerator: TextGenerator {
    public let identity: String
    public let engine: Engine
    let template: ChatTemplate
    let tokenizer: Tokenizer
    /// The LoRA adapters every request of this generator runs with (nil: the base model).
    let adapters: AdapterStack?

    /// Loads `path` (once per process for the same path and context size), with `adapters`
    /// (`A.gguf` or `A.gguf@SCALE`) applied without merging; generators of one model share its
    /// engine whatever their adapters, and their requests batch together.
    public init(
        path: String, adapters adapterSpecs: [String] = [], template name: String? = nil, contextTokens: Int = 4096,
        threads: Int = 2,
        maxBatch: Int? = nil, cacheTokens: Int? = nil
    ) throws {
        let model = try EngineCache.shared.model(path)
        adapters = adapterSpecs.isEmpty ? nil : try EngineCache.shared.adapters(adapterSpecs, model: model)
        template = try ChatTemplate.of(model, named: name)
        tokenizer = model.tokenizer
        var settings = EngineSettings(contextTokens: contextTokens, cacheTokens: cacheTokens, threads: threads)
        if let maxBatch { settings.maxBatch = maxBatch }
        engine = EngineCache.shared.engine(path, model: model, settings: settings)
        identity = "embedded:" + ([path] + adapterSpecs).joined(separator: "+")
    }

    /// The prompt tokens of `messages`: rendered, then tokenized with special tokens parsed
    /// (BOS added as the model asks unless the template wrote it).
    public func promptTokens(_ messages: [ChatMessage], prefill: String? = nil) throws -> [Int32] {
        try template.promptTokens(
            messages.map { TemplateMessage(role: $0.role.rawValue, content: $0.content) }, prefill: prefill,
            tokenizer: tokenizer)
    }

    public func generate(_ request: GenerationRequest) async throws -> [Generation] {
        let p = request.parameters
        var prefill = request.prefill
        var allowed: [Int32]?
        // Choices that are not single tokens here are not forced: the reply is free, with its alternatives.
        if let choices = request.choices, let forced = choiceTokens(choices, after: prefill ?? "") {
            (prefill, allowed) = forced
        }
        let prompt = try promptTokens(request.messages, prefill: prefill)
        let sampler = SamplerSettings(
            temperature: Float(p.temperature ?? 0.8), topK: p.topK ?? 0, topP: Float(p.topP ?? 1),
            minP: Float(p.minP ?? 0),
            repetitionPenalty: Float(p.repetitionPenalty ?? 1), presencePenalty: Float(p.presencePenalty ?? 0),
            frequencyPenalty: Float(p.frequencyPenalty ?? 0), seed: p.seed ?? 0, allowed: allowed)
        let options = CompletionOptions(
            maxTokens: allowed == nil ? (p.maxTokens ?? 512) : 1, stop: p.stop ?? [], sampler: sampler,
            topLogprobs: allowed != nil ? allowed!.count : p.logprobs == true ? (p.topLogprobs ?? 0) : 0)
        let completions = try await engine.complete(
            prompt: prompt, n: max(1, request.n), options: options, adapters: adapters)
        return completions.map { c in
            let lp: [TokenLogprob]? =
                p.logprobs == true || allowed != nil
                ? c.logprobs.map { s in
                    TokenLogprob(
                        token: piece(s.token), logprob: Double(s.logprob),
                        top: s.top.map { TokenLogprob.Alternative(token: piece($0.token), logprob: Double($0.logprob)) }
                    )
                } : nil
            return Generation(
                text: c.text, finishReason: c.finish == .stop ? .stop : .length,
                usage: TokenUsage(promptTokens: prompt.count, completionTokens: c.tokens.count),
                seed: c.seed, latencyMs: c.milliseconds, logprobs: lp)
        }
    }

    /// The tokens of a forced choice after `prefill`: each choice must be one token there. When the
    /// tokenizer joins a space to what follows it (" 5" is one token), a prefill ending in a space
    /// gives that space to the choices instead.
    func choiceTokens(_ choices: [String], after prefill: String) -> (String, [Int32])? {
        func single(_ prefill: String, _ lead: String) -> [Int32]? {
            let head = tokenizer.encode(prefill, addSpecial: false, parseSpecial: false)
            var ids: [Int32] = []
            for c in choices {
                let all = tokenizer.encode(prefill + lead + c, addSpecial: false, parseSpecial: false)
                guard all.count == head.count + 1, Array(all.prefix(head.count)) == head else { return nil }
                ids.append(all[head.count])
            }
            return ids
        }
        if let ids = single(prefill, "") { return (prefill, ids) }
        if prefill.hasSuffix(" "), let ids = single(String(prefill.dropLast()), " ") {
            return (String(prefill.dropLast()), ids)
        }
        return nil
    }

    func piece(_ t: Int32) -> String { String(decoding: tokenizer.bytes(of: t, special: true), as: UTF8.self) }
}

/// Models and engines by file path, so a run's policy, judge and feedback share one copy.
final class EngineCache: @unchecked Sendable {
    static let shared = EngineCache()
    private let lock = NSLock()
    private var models: [String: LlamaModel] = [:]
    private var engines: [String: Engine] = [:]

    func model(_ path: String) throws -> LlamaModel {
        lock.lock()
        defer { lock.unlock() }
        if let m = models[path] { return m }
        let m = try LlamaModel(path: path)
        models[path] = m
        return m
    }

    /// The adapter stack of `specs` on `model`, loaded once per process.
    func adapters(_ specs: [String], model: LlamaModel) throws -> AdapterStack {
        lock.lock()
        defer { lock.unlock() }
        let key = model.file.path + "|" + specs.joined(separator: "+")
        if let s = stacks[key] { return s }
        let loaded = try specs.map { spec in
            let (path, scale) = try LoRAAdapter.parseSpec(spec)
            return try LoRAAdapter(path: path, scale: scale, model: model)
        }
        let s = AdapterStack(loaded, layers: model.config.layers)
        stacks[key] = s
        return s
    }
    private var stacks: [String: AdapterStack] = [:]

    /// The engine of `path` with this context size; the first caller's batch and cache settings win.
    func engine(_ path: String, model: LlamaModel, settings: EngineSettings) -> Engine {
        lock.lock()
        defer { lock.unlock() }
        let key = "\(path)#\(settings.contextTokens)"
        if let e = engines[key] { return e }
        let e = Engine(model: model, settings: settings)
        engines[key] = e
        return e
    }
}

extension EmbeddedGenerator: EngineReporting {
    public func resetEngineReport() { engine.resetStatistics() }

    public func engineReport() -> EngineReport {
        let s = engine.statistics()
        return EngineReport(
            requests: s.requests, steps: s.steps, largestDecodeBatch: s.largestDecodeBatch,
            meanDecodeBatch: s.meanDecodeBatch,
            largestBatch: s.largestBatch, decodeBatches: s.decodeBatches, maxBatch: s.maxBatch,
            promptTokens: s.promptTokens,
            promptTokensCached: s.promptTokensCached, prefixHitRate: s.prefixHitRate,
            generatedTokens: s.generatedTokens,
            evictions: s.evictions, cacheTokens: s.cacheTokens, isa: InstructionSet.active)
    }
}
