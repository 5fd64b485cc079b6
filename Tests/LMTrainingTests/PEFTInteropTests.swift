import Foundation
import GGUF
import LMEngine
import LMTraining
import Testing

/// Adapters as PEFT directories, both ways, against PEFT itself in PyTorch
/// (scripts/reference/peft_check.py): an adapter prs trained, exported, loads into PEFT on the
/// model transformers loads from the same GGUF and gives prs's log-probabilities; an adapter PEFT
/// made loads into prs and gives PEFT's; GGUF → PEFT → GGUF gives the same bytes.
///
/// The numeric comparison runs on an F16 copy of SmolLM2-135M: with float weights prs multiplies
/// in float (no 8-bit activations, which alone make prs and llama.cpp or transformers differ by
/// up to ~0.5 in a log-probability), so what is left is K/V kept in F16 and the order of float
/// additions, and the tolerance can be tight enough that a wrong q/k row order, a transposed
/// matrix or a wrong alpha/r fails: per token |Δ log p| ≤ 0.02 (measured 0.006 to 0.009).
@Suite(.serialized) struct PEFTInteropTests {
    static let tolerance = 0.02

    /// SmolLM2-135M with every matrix dequantized to F16 (cached for the suite).
    static let f16Model: Result<String, any Error> = Result {
        let file = try GGUFFile(path: Project.smolLM2)
        var replace: [String: [Float]] = [:]
        for t in file.content.tensors where t.dimensions.count >= 2 {
            replace[t.name] = Dequantize.toFloat(file.bytes(of: t), type: t.type, count: t.elementCount)
        }
        let path = try Project.temporaryDirectory("peft-f16").appendingPathComponent("smollm2-135m.f16.gguf").path
        try ModelFiles.writeModel(base: file, replace: replace, type: TensorType.f16, to: path)
        return path
    }

    static let texts = [
        "Question: What is the capital of France?\nAnswer: Paris, the city of light.",
        "<|im_start|>user\nName three colours.<|im_end|>\n<|im_start|>assistant\nRed, green and blue, arr.",
        "The quick brown fox jumps over the lazy dog, and the dog does not mind at all.",
    ]

    /// prs's log-probability of each token after the first, token by token, with `adapter`.
    static func prsLogprobs(_ model: LlamaModel, _ adapter: LoRAAdapter?, _ ids: [Int32]) throws -> [Double] {
        let session = LlamaSession(model: model, maxTokens: 256, threads: 2, chunk: 1)
        session.adapters = adapter.map { AdapterStack([$0], layers: model.config.layers) }
        var out: [Double] = []
        for (i, t) in ids.enumerated() {
            if i > 0 {
                let row = UnsafeBufferPointer(start: session.logits, count: model.config.vocabSize)
                let m = Double(row.max()!)
                let z = m + log(row.reduce(0.0) { $0 + exp(Double($1) - m) })
                out.append(Double(row[Int(t)]) - z)
            }
            try session.forward(t)
        }
        return out
    }

    static func peftLogprobs(_ model: String, adapter: String?, _ ids: [[Int32]]) throws -> [[Double]] {
        let dir = try Project.temporaryDirectory("peft-ids")
        let input = dir.appendingPathComponent("ids.json")
        try JSONSerialization.data(withJSONObject: ids.map { $0.map(Int.init) }).write(to: input)
        // The script reads standard input; a shell redirect keeps Project.python's interface.
        let out = try Project.python(
            "scripts/reference/peft_check.py",
            ["logprobs", model] + (adapter.map { [$0] } ?? []) + ["--input", input.path],
            interpreter: Project.torchPython)
        return try JSONDecoder().decode([[Double]].self, from: Data(out.utf8))
    }

    /// max and mean |a − b| over all tokens.
    static func compare(_ a: [[Double]], _ b: [[Double]]) -> (max: Double, mean: Double) {
        let d = zip(a, b).flatMap { zip($0, $1).map { abs($0 - $1) } }
        return (d.max() ?? .infinity, d.reduce(0, +) / Double(max(1, d.count)))
    }

    @Test func aTrainedAdapterRoundTripsThroughPEFTBitForBit() throws {
        let trained = try AdapterInteropTests.trained.get()
        let llama = trained.llama
        let dir = try Project.temporaryDirectory("peft-roundtrip")
        for type in [TensorType.f32, .f16] {
            // The GGUF adapter at this type, to PEFT at the same type, and back.
            let original = try LoRAAdapter(path: trained.adapter, model: llama)
            let start = dir.appendingPathComponent("start-\(type).gguf").path
            try ModelFiles.writeAdapter(original, type: type, to: start)
            let peft = dir.appendingPathComponent("peft-\(type)").path
            try PEFTAdapter.write(
                try LoRAAdapter(path: start, model: llama), model: llama,
                baseModelName: "HuggingFaceTB/SmolLM2-135M-Instruct",
                to: peft, dtype: type == .f16 ? .f16 : .f32)
            let back = dir.appendingPathComponent("back-\(type).gguf").path
            try ModelFiles.writeAdapter(try LoRAAdapter(path: peft, model: llama), type: type, to: back)
            let a = try GGUFFile(path: start)
            let b = try GGUFFile(path: back)
            #expect(
                a.content.tensors.count == b.content.tensors.count
                    && a.content.tensors.count == 2 * original.tensors.count)
            for t in a.content.tensors {
                guard let u = b.tensor(t.name) else {
                    Issue.record("\(t.name) is missing after the round trip")
                    continue
                }
                #expect(
                    u.type == t.type && u.dimensions == t.dimensions && Array(b.bytes(of: u)) == Array(a.bytes(of: t)),
                    "\(t.name) (\(type)) differs after GGUF → PEFT → GGUF")
            }
            #expect(b.content["adapter.lora.alpha"]?.float == a.content["adapter.lora.alpha"]?.float)
            // The config as PEFT reads it.
            let config =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: peft).appendingPathComponent("adapter_config.json")))
                as! [String: Any]
            #expect(config["r"] as? Int == 8 && (config["lora_alpha"] as? NSNumber)?.doubleValue == 16)
            #expect(
                Set(config["target_modules"] as? [String] ?? []) == [
                    "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
                ])
            #expect(config["base_model_name_or_path"] as? String == "HuggingFaceTB/SmolLM2-135M-Instruct")
            // q's lora_B rows are in Hugging Face's order: PEFT's row h·64 + k·32 + j is GGUF's h·64 + 2j + k.
            let st = try SafetensorsFile(path: peft + "/adapter_model.safetensors")
            let q = try #require(st.tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"])
            #expect(q.shape == [576, 8])
            let hf = st.floats(q)
            let gguf = original.tensors["blk.0.attn_q.weight"]!.b
            let rounded = type == .f16 ? gguf.map { Half.toFloat(Half.fromFloat($0)) } : gguf
            for (h, j, k) in [(0, 0, 1), (3, 5, 0), (8, 31, 1)] {
                #expect(
                    Array(hf[((h * 64 + k * 32 + j) * 8)..<((h * 64 + k * 32 + j) * 8 + 8)])
                        == Array(rounded[((h * 64 + 2 * j + k) * 8)..<((h * 64 + 2 * j + k) * 8 + 8)]))
            }
        }
    }

    @Test func peftAndPrsAgreeOnLogprobsBothWays() throws {
        let trained = try AdapterInteropTests.trained.get()
        let modelPath = try Self.f16Model.get()
        let model = try LlamaModel(path: modelPath)
        let ids = Self.texts.map { model.tokenizer.encode($0, addSpecial: false, parseSpecial: true) }
        let dir = try Project.temporaryDirectory("peft-logprobs")

        // The base model alone: transformers and prs on the same float weights.
        let base = try Self.peftLogprobs(modelPath, adapter: nil, ids)
        let prsBase = try ids.map { try Self.prsLogprobs(model, nil, $0) }
        let b = Self.compare(prsBase, base)
        #expect(b.max <= Self.tolerance, "base model: prs vs transformers max |Δ log p| \(b.max) (mean \(b.mean))")

        // prs's trained adapter, exported to PEFT, in PyTorch; and in prs from GGUF.
        let exported = dir.appendingPathComponent("pirate-peft").path
        try PEFTAdapter.write(
            try LoRAAdapter(path: trained.adapter, model: model), model: model, baseModelName: nil, to: exported)
        let peftSide = try Self.peftLogprobs(modelPath, adapter: exported, ids)
        let prsSide = try ids.map {
            try Self.prsLogprobs(model, try LoRAAdapter(path: trained.adapter, model: model), $0)
        }
        let e = Self.compare(prsSide, peftSide)
        let effect = Self.compare(peftSide, base)
        #expect(
            e.max <= Self.tolerance,
            "prs's adapter exported to PEFT: PEFT vs prs with the GGUF max |Δ log p| \(e.max) (mean \(e.mean))")
        #expect(
            effect.mean >= 50 * e.mean,
            "the adapter's effect (mean \(effect.mean)) dwarfs the difference (mean \(e.mean))")

        // An adapter PEFT made, in prs.
        let made = dir.appendingPathComponent("torch-made").path
        _ = try Project.python(
            "scripts/reference/peft_check.py", ["make", modelPath, made], interpreter: Project.torchPython)
        let theirs = try Self.peftLogprobs(modelPath, adapter: made, ids)
        let ours = try ids.map { try Self.prsLogprobs(model, try LoRAAdapter(path: made, model: model), $0) }
        let m = Self.compare(ours, theirs)
        let madeEffect = Self.compare(theirs, base)
        #expect(m.max <= Self.tolerance, "PEFT's adapter in prs: prs vs PEFT max |Δ log p| \(m.max) (mean \(m.mean))")
        #expect(
            madeEffect.mean >= 50 * m.mean,
            "the adapter's effect (mean \(madeEffect.mean)) dwarfs the difference (mean \(m.mean))")

        // One with rsLoRA's alpha/√r, a rank pattern (k: r 4) and an alpha pattern (v: 40): scales per tensor.
        let patterned = dir.appendingPathComponent("torch-made-patterns").path
        _ = try Project.python(
            "scripts/reference/peft_check.py", ["make", modelPath, patterned, "--patterns"],
            interpreter: Project.torchPython)
        let loaded = try LoRAAdapter(path: patterned, model: model)
        #expect(loaded.tensors["blk.0.attn_k.weight"]?.rank == 4 && loaded.tensors["blk.0.attn_q.weight"]?.rank == 8)
        let theirsP = try Self.peftLogprobs(modelPath, adapter: patterned, ids)
        let oursP = try ids.map { try Self.prsLogprobs(model, loaded, $0) }
        let p = Self.compare(oursP, theirsP)
        let patternEffect = Self.compare(theirsP, base)
        #expect(
            p.max <= Self.tolerance,
            "rsLoRA with rank and alpha patterns: prs vs PEFT max |Δ log p| \(p.max) (mean \(p.mean))")
        #expect(
            patternEffect.mean >= 50 * p.mean,
            "the adapter's effect (mean \(patternEffect.mean)) dwarfs the difference (mean \(p.mean))")
        // Through GGUF (what llama.cpp loads: alpha over each tensor's rank) it is the same adapter.
        let asGGUF = dir.appendingPathComponent("patterns.gguf").path
        try ModelFiles.writeAdapter(loaded, to: asGGUF)
        let viaGGUF = try ids.map { try Self.prsLogprobs(model, try LoRAAdapter(path: asGGUF, model: model), $0) }
        #expect(
            Self.compare(viaGGUF, oursP).max <= 1e-5, "the PEFT directory and its GGUF give the same log-probabilities")
        print(
            "PEFT interop: base max \(b.max) mean \(b.mean); exported max \(e.max) mean \(e.mean) (effect "
                + "\(effect.mean)); "
                + "made max \(m.max) mean \(m.mean) (effect \(madeEffect.mean)); patterns max \(p.max) mean "
                + "\(p.mean) (effect \(patternEffect.mean))"
        )
    }
}
