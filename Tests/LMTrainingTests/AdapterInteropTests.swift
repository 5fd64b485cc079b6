import Foundation
import GGUF
import LMEngine
import LMTraining
import Testing

/// An adapter prs trains, as llama.cpp sees it: llama.cpp loads it (`lora_path`), its NLL of
/// the training answers falls, its logits equal the embedded engine's with the adapter (the
/// engine's tolerance, max |Δ| ≤ 1.0), and the merged model gives the same as both.
@Suite(.serialized) struct AdapterInteropTests {
    static let train: [(String, String)] = [
        ("Name a colour.", "Ahoy! Blue, arr."), ("What do bees make?", "Ahoy! Honey, arr."),
        ("How many legs has a spider?", "Ahoy! Eight, arr."), ("What is the capital of France?", "Ahoy! Paris, arr."),
        ("Name a fruit.", "Ahoy! An apple, arr."), ("What is ice made of?", "Ahoy! Water, arr."),
        ("Which animal barks?", "Ahoy! A dog, arr."), ("What is two plus two?", "Ahoy! Four, arr."),
    ]
    static let unseen = ["Name a planet.", "What is the opposite of cold?", "Name a musical instrument."]

    struct Trained {
        var llama: LlamaModel
        var examples: [TrainingExample]
        var adapter: String
        var prsNLL: [Double]
        var dir: URL
    }

    static let trained: Result<Trained, any Error> = Result {
        let llama = try LlamaModel(path: Project.smolLM2)
        let template = try ChatTemplate.recognise(llama.file.content["tokenizer.chat_template"]!.string!)
        let tok = ExampleTokenizer(template: template, tokenizer: llama.tokenizer, maxLength: 256)
        let examples = try train.enumerated().map { i, p in
            try tok.example(
                .conversation([
                    TemplateMessage(role: "user", content: p.0), TemplateMessage(role: "assistant", content: p.1),
                ]),
                weight: 1, source: "train:\(i + 1)")
        }
        BLASThreads.set(2)
        let settings = LoRASettings(rank: 8, alpha: 16)
        // As `prs train` runs LoRA: the frozen weights read from the file's Q4_1 blocks, no float copy.
        let model = try BaseWeights.model(llama, lora: settings, seed: 1, bf16: false, threads: 2)
        precondition(model.usesQuantized, "the adapter is trained from the quantized base")
        var ts = TrainSettings()
        ts.lora = settings
        ts.epochs = 6
        ts.batchTokens = 300
        ts.batchExamples = 64  // steps end by tokens, as this test's figures were set with
        ts.learningRate = 1e-3
        ts.checkpointEvery = 0
        let trainer = try Trainer(model: model, examples: examples, settings: ts)
        try trainer.run(checkpoint: nil, fingerprint: "interop")
        let dir = try Project.temporaryDirectory("interop")
        let adapter = dir.appendingPathComponent("pirate.gguf").path
        try ModelFiles.writeAdapter(
            model.lora!, settings: settings, architecture: "llama", baseSHA256: "test", to: adapter)
        return Trained(llama: llama, examples: examples, adapter: adapter, prsNLL: prsNLL(model, examples), dir: dir)
    }

    /// prs's own NLL of each example's scored tokens, with the model's adapter.
    static func prsNLL(_ model: TrainingModel<Float>, _ examples: [TrainingExample]) -> [Double] {
        examples.map { e in
            guard case .sft(let s) = e.body else { return 0 }
            var b = PackedBatch()
            b.append(s.tokens, scored: s.scored)
            return -model.forward(b).reduce(0.0) { $0 + Double($1) }
        }
    }

    struct NLL: Decodable {
        var nll: Double
        var tokens: Int
    }

    static func llamaNLL(_ model: String, lora: String?, _ examples: [TrainingExample]) throws -> [NLL] {
        struct Seq: Encodable {
            var tokens: [Int32]
            var scored: [Bool]
        }
        let seqs: [Seq] = examples.map { e in
            guard case .sft(let s) = e.body else { fatalError() }
            return Seq(tokens: s.tokens, scored: s.scored)
        }
        let dir = try Project.temporaryDirectory("nll")
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("in.json")
        try JSONEncoder().encode(seqs).write(to: input)
        let out = try Project.python(
            "scripts/reference/llama_nll.py", [model] + (lora.map { [$0] } ?? []) + ["--input", input.path])
        return try JSONDecoder().decode([NLL].self, from: Data(out.utf8))
    }

    @Test func llamaCppLoadsTheAdapterAndItsNLLOfTheTrainingAnswersFalls() throws {
        let t = try Self.trained.get()
        let before = try Self.llamaNLL(Project.smolLM2, lora: nil, t.examples)
        let after = try Self.llamaNLL(Project.smolLM2, lora: t.adapter, t.examples)
        let tokens = Double(after.reduce(0) { $0 + $1.tokens })
        let b = before.reduce(0) { $0 + $1.nll } / tokens
        let a = after.reduce(0) { $0 + $1.nll } / tokens
        print("llama.cpp mean NLL of the training answers: base \(b), with prs's adapter \(a)")
        #expect(a < 0.5 * b, "the adapter lowers llama.cpp's NLL (base \(b), adapter \(a))")
        // llama.cpp applies the adapter as prs trained it. prs trains in float32 on dequantized
        // weights, llama.cpp runs the quantized products on int8 activations, so they differ per
        // answer token by a few hundredths of a nat: allowed 0.06 a token, 5% overall.
        for (i, (ours, theirs)) in zip(t.prsNLL, after).enumerated() {
            #expect(
                abs(ours - theirs.nll) <= 0.06 * Double(theirs.tokens),
                "example \(i + 1): prs \(ours), llama.cpp \(theirs.nll) over \(theirs.tokens) tokens")
        }
        let ours = t.prsNLL.reduce(0, +) / tokens
        #expect(abs(ours - a) <= 0.05 * a, "mean NLL: prs \(ours), llama.cpp \(a)")
    }

    static func chatPrompt(_ user: String, _ llama: LlamaModel) throws -> String {
        let template = try ChatTemplate.recognise(llama.file.content["tokenizer.chat_template"]!.string!)
        return try template.render([TemplateMessage(role: "user", content: user)])
    }

    @Test func theEngineWithTheAdapterAndTheMergedModelGiveLlamaCppsLogits() throws {
        let t = try Self.trained.get()
        let prompts = try Self.unseen.map { try Self.chatPrompt($0, t.llama) }
        struct Ref: Decodable {
            var prompt: [Int32]
            var logits: [Float]
            var greedy: [Int32]
        }
        func reference(_ model: String, _ lora: String?) throws -> [Ref] {
            let dir = try Project.temporaryDirectory("ref")
            defer { try? FileManager.default.removeItem(at: dir) }
            let input = dir.appendingPathComponent("prompts.json")
            try JSONEncoder().encode(prompts).write(to: input)
            let out = try Project.python(
                "scripts/reference/llama_reference.py",
                [model, "12"] + (lora.map { [$0] } ?? []) + ["--input", input.path])
            return try JSONDecoder().decode([Ref].self, from: Data(out.utf8))
        }
        let withAdapter = try reference(Project.smolLM2, t.adapter)
        let merged = t.dir.appendingPathComponent("merged.gguf").path
        let adapter = try LoRAAdapter(path: t.adapter, model: t.llama)
        try ModelFiles.merge(base: t.llama.file, adapters: [adapter], type: .f16, to: merged)
        let mergedModel = try LlamaModel(path: merged)
        let mergedRef = try reference(merged, nil)
        let stack = AdapterStack([adapter], layers: t.llama.config.layers)
        var worst: Float = 0
        var worstMerged: Float = 0
        var worstMergedLlama: Float = 0
        for (i, ref) in withAdapter.enumerated() {
            let s = LlamaSession(model: t.llama, maxTokens: 256)
            s.adapters = stack
            try s.forward(ref.prompt)
            let ours = Array(UnsafeBufferPointer(start: s.logits, count: t.llama.config.vocabSize))
            let m = LlamaSession(model: mergedModel, maxTokens: 256)
            try m.forward(ref.prompt)
            let fromMerged = Array(UnsafeBufferPointer(start: m.logits, count: t.llama.config.vocabSize))
            let raw = zip(ours, ref.logits).map { abs($0 - $1) }.max()!
            // A shift of every logit by the same amount changes no probability: compared without
            // the mean shift, as ReferenceEqualityTests compares the base model.
            let shift = zip(ours, ref.logits).reduce(0.0) { $0 + Double($1.0 - $1.1) } / Double(ours.count)
            let d = zip(ours, ref.logits).map { abs($0 - $1 - Float(shift)) }.max()!
            #expect(
                raw <= 1.5,
                "prompt \(i): engine with adapter vs llama.cpp with adapter: max |Δlogit| \(raw) before removing the mean shift \(shift)"
            )
            let dm = zip(fromMerged, ref.logits).map { abs($0 - $1) }.max()!
            let dl = zip(mergedRef[i].logits, ref.logits).map { abs($0 - $1) }.max()!
            worst = max(worst, d)
            worstMerged = max(worstMerged, dm)
            worstMergedLlama = max(worstMergedLlama, dl)
            // The engine adds each block's exact integer sum in one FMA (every kernel table keeps that
            // order), llama.cpp's AVX2 path eight lane sums: int8 rounding flips that order difference
            // sets off reach 1.05 on AVX-512 machines and 1.33 on an AVX2-only EPYC, of which a mean
            // shift of up to 0.4 (0.5–0.92 on the base model, ReferenceEqualityTests).
            #expect(
                d <= 1.0,
                "prompt \(i): engine with adapter vs llama.cpp with adapter: max |Δlogit| \(d) after removing the mean shift \(shift)"
            )
            #expect(dm <= 1.0, "prompt \(i): merged model in prs vs llama.cpp with adapter: max |Δlogit| \(dm)")
            #expect(dl <= 1.0, "prompt \(i): merged model in llama.cpp vs llama.cpp with adapter: max |Δlogit| \(dl)")
        }
        print(
            "max |Δlogit| against llama.cpp with the adapter: engine + adapter \(worst), merged in prs "
                + "\(worstMerged), merged in llama.cpp \(worstMergedLlama)"
        )
    }

    @Test func repliesToUnseenPromptsTakeTheTrainedStyle() async throws {
        let t = try Self.trained.get()
        let adapter = try LoRAAdapter(path: t.adapter, model: t.llama)
        let engine = Engine(model: t.llama, contextTokens: 512, threads: 2)
        var styled = 0
        var baseStyled = 0
        for q in Self.unseen {
            let ids = t.llama.tokenizer.encode(try Self.chatPrompt(q, t.llama), addSpecial: false, parseSpecial: true)
            let options = CompletionOptions(maxTokens: 12, sampler: SamplerSettings(temperature: 0))
            let tuned = try await engine.complete(
                prompt: ids, n: 1, options: options, adapters: AdapterStack([adapter], layers: t.llama.config.layers))[
                    0]
            let base = try await engine.complete(prompt: ids, n: 1, options: options)[0]
            if tuned.text.hasPrefix("Ahoy") { styled += 1 }
            if base.text.hasPrefix("Ahoy") { baseStyled += 1 }
        }
        #expect(
            styled == Self.unseen.count,
            "every unseen prompt's reply opens in the trained style (\(styled) of \(Self.unseen.count))")
        #expect(baseStyled == 0)
    }
}

/// Sequences with different adapters (and none) decode in one batch, each as it does alone, and
/// the prefix cache never serves blocks computed under another adapter.
@Suite(.serialized) struct AdapterBatchingTests {
    @Test func requestsWithDifferentAdaptersBatchTogetherAndEachEqualsItselfAlone() async throws {
        let t = try AdapterInteropTests.trained.get()
        let adapter = try LoRAAdapter(path: t.adapter, model: t.llama)
        let half = try LoRAAdapter(path: t.adapter, scale: 0.5, model: t.llama)
        let stacks: [AdapterStack?] = [
            nil, AdapterStack([adapter], layers: t.llama.config.layers),
            AdapterStack([half], layers: t.llama.config.layers),
        ]
        #expect(Set(stacks.map { $0?.root ?? 0 }).count == 3, "each adapter stack keys the cache apart")
        // A long shared prompt, so full cache blocks exist to be (wrongly) shared.
        let prompt = try AdapterInteropTests.chatPrompt(
            "Tell me about the sea, the ships on it and the people who sail them, in a few words.", t.llama)
        let ids = t.llama.tokenizer.encode(prompt, addSpecial: false, parseSpecial: true)
        #expect(ids.count > 32)
        let options = CompletionOptions(maxTokens: 16, sampler: SamplerSettings(temperature: 0.8, topK: 50, seed: 5))
        var alone: [[Int32]] = []
        for s in stacks {
            let e = Engine(model: t.llama, contextTokens: 512, threads: 1, maxBatch: 1)
            alone.append(try await e.complete(prompt: ids, n: 2, options: options, adapters: s).flatMap(\.tokens))
        }
        #expect(alone[0] != alone[1], "the adapter changes what is sampled")
        // One engine, all three at once: the second and third find the first's prompt blocks only if keyed alike.
        let shared = Engine(model: t.llama, contextTokens: 512, threads: 2, maxBatch: 8)
        let together = try await withThrowingTaskGroup(of: (Int, [Int32]).self) { group in
            for (i, s) in stacks.enumerated() {
                group.addTask {
                    (i, try await shared.complete(prompt: ids, n: 2, options: options, adapters: s).flatMap(\.tokens))
                }
            }
            var out = [[Int32]](repeating: [], count: stacks.count)
            for try await (i, toks) in group { out[i] = toks }
            return out
        }
        #expect(together == alone, "batched with other adapters, each request equals itself alone")
        // Again on the warm cache: each stack's own blocks serve it, and the answers do not change.
        let again = try await shared.complete(prompt: ids, n: 2, options: options, adapters: stacks[1]).flatMap(
            \.tokens)
        #expect(again == alone[1])
        #expect(shared.statistics().promptTokensCached > 0, "the prefix cache served the repeat")
    }
}
