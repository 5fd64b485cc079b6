import ArgumentParser
import Foundation
import GGUF
import LMEngine
import PRSCore

/// `prs model …`: the engine's tools, on their own and as its contract with scripts.
struct Model: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect, run, evaluate and merge GGUF models.",
        subcommands: [Info.self, Tokenize.self, Generate.self, Bench.self, MergeAdapters.self, ExportAdapter.self, Eval.self]
    )

    static func open(_ path: String) throws -> GGUFFile {
        try GGUFFile(path: path)
    }

    static func tokenizer(_ file: GGUFFile) throws -> Tokenizer {
        do { return try Tokenizer(gguf: file.content) } catch { throw CLIFailure.badInput("\(file.path): \(error)") }
    }

    static let defaultModel = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    /// The adapters of `--lora A.gguf[@SCALE]` options, checked against `model`; nil for none.
    static func adapters(_ specs: [String], _ model: LlamaModel) throws -> AdapterStack? {
        guard !specs.isEmpty else { return nil }
        do {
            return AdapterStack(try specs.map { spec in
                let (path, scale) = try LoRAAdapter.parseSpec(spec)
                return try LoRAAdapter(path: path, scale: scale, model: model)
            }, layers: model.config.layers)
        } catch { throw CLIFailure.badInput("--lora: \(error)") }
    }

    static func json(_ value: some Encodable) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Architecture, hyperparameters, tensor types and sizes, template, tokenizer.",
                                                        discussion: "Example:\n  prs model info \(defaultModel) --lora runs/x/adapter.gguf")
        @Argument(help: "A GGUF model file.") var model: String
        @Option(help: "A LoRA adapter to describe and check against the model, A.gguf or A.gguf@SCALE (repeatable).") var lora: [String] = []
        @Flag(help: "Print JSON.") var json = false

        struct AdapterInfo: Encodable {
            var path: String; var rank: Int; var alpha: Float; var scale: Float; var tensors: Int; var base_sha256: String?; var matches_base: Bool?
        }

        struct Report: Encodable {
            struct TypeUse: Encodable { var tensors: Int; var bytes: Int; var elements: Int }
            struct TokenizerInfo: Encodable {
                var model: String?; var pre: String?; var tokens: Int; var bos: Int32?; var eos: Int32?; var add_bos: Bool
            }
            var path: String
            var file_bytes: Int
            var gguf_version: UInt32
            var architecture: String?
            var name: String?
            var parameters: Int
            var hyperparameters: [String: String]
            var tensor_types: [String: TypeUse]
            var tensors: Int
            /// What prompts are written with: "jinja" (the file's own template, rendered by prs), a
            /// format's name, or "unrenderable"; `chat_template_detail` says more.
            var chat_template: String?
            var chat_template_detail: String?
            /// Rope scaling as prs applies it ("none", "rope_freqs (N factors)", "linear ×F", "yarn ×F …"),
            /// or why prs refuses the file.
            var rope_scaling: String?
            var tokenizer: TokenizerInfo?
            var adapters: [AdapterInfo]?
            /// The kernel table the engine would use here, and every table this machine allows.
            var isa: String; var isa_available: [String]
        }

        func run() async throws {
            do { _ = try InstructionSet.requested() } catch { throw CLIFailure.badInput("\(error)") }
            let file = try Model.open(model)
            let c = file.content
            let arch = c["general.architecture"]?.string
            var hyper: [String: String] = [:]
            for (k, v) in c.metadata where arch.map({ k.hasPrefix($0 + ".") }) ?? false {
                hyper[String(k.dropFirst(arch!.count + 1))] = v.integer.map(String.init) ?? v.float.map { String($0) } ?? v.string ?? v.bool.map(String.init) ?? v.typeDescription
            }
            var types: [String: Report.TypeUse] = [:]
            for t in c.tensors {
                var u = types[t.type.description] ?? .init(tensors: 0, bytes: 0, elements: 0)
                u.tensors += 1
                u.bytes += t.byteCount
                u.elements += t.elementCount
                types[t.type.description] = u
            }
            let described: (String, String)? = c["tokenizer.chat_template"]?.string.map { source -> (String, String) in
                let format = (try? ChatTemplate.recognise(source)).map { ", a \($0.name) format" } ?? ""
                do {
                    _ = try JinjaTemplate(source)
                    return ("jinja", "the file's own (Jinja, \(source.utf8.count) bytes\(format)), rendered by prs")
                } catch { return ("unrenderable", "the file's own, which prs cannot render (\(error)); choose one with --template") }
            } ?? arch.flatMap { ChatTemplate.forArchitecture($0) }.map { ($0.name, "\($0.name) (none in the file; the architecture's)") }
            let template = described?.1
            let tok = try? Tokenizer(gguf: c)
            var rope: String?
            do {
                let s = try LlamaConfig(gguf: c).ropeScaling
                var parts: [String] = []
                if let t = file.tensor("rope_freqs.weight") { parts.append("rope_freqs (\(t.elementCount) factors, Llama 3.x)") }
                if let t = file.tensor("rope_factors_long.weight") {
                    parts.append("rope_factors_short/long (\(t.elementCount) factors each, Phi-3; long past \(s.originalContext) positions)")
                }
                if s.kind != .none { parts.append("\(s.kind.rawValue) ×\(1 / s.freqScale)" + (s.kind == .yarn ? " (original context \(s.originalContext))" : "")) }
                if s.attnFactor != 1 { parts.append("attn_factor \(s.attnFactor)") }
                rope = parts.isEmpty ? "none" : parts.joined(separator: ", ")
            } catch { rope = "refused: \(error)" }
            let report = Report(
                path: model, file_bytes: file.fileSize, gguf_version: c.version, architecture: arch,
                name: c["general.name"]?.string, parameters: c.tensors.reduce(0) { $0 + $1.elementCount },
                hyperparameters: hyper, tensor_types: types, tensors: c.tensors.count, chat_template: described?.0,
                chat_template_detail: template, rope_scaling: rope,
                tokenizer: tok.map { .init(model: c["tokenizer.ggml.model"]?.string, pre: c["tokenizer.ggml.pre"]?.string,
                                           tokens: $0.count, bos: $0.bos, eos: $0.eos, add_bos: $0.addBOS) },
                adapters: try adapterInfo(file),
                isa: InstructionSet.active, isa_available: InstructionSet.available.map(\.rawValue))
            if json { print(try Model.json(report)); return }
            print("\(model) (GGUF v\(c.version), \(String(format: "%.1f", Double(file.fileSize) / 1_048_576)) MiB)")
            print("  architecture   \(arch ?? "?")  \(report.name ?? "")")
            print("  parameters     \(report.parameters)")
            for k in hyper.keys.sorted() { print("  \(k.padding(toLength: 36, withPad: " ", startingAt: 0)) \(hyper[k]!)") }
            print("  tensors        \(c.tensors.count)")
            for k in types.keys.sorted() {
                let u = types[k]!
                print("    \(k.padding(toLength: 6, withPad: " ", startingAt: 0)) \(u.tensors) tensors, \(String(format: "%.1f", Double(u.bytes) / 1_048_576)) MiB")
            }
            print("  chat template  \(template ?? "none")")
            print("  rope scaling   \(rope ?? "-")")
            if let t = report.tokenizer {
                let kind = t.model == "llama" ? "SentencePiece (llama)" : t.model == "gpt2" ? "byte-level BPE (gpt2, pre \(t.pre ?? "default"))" : t.model ?? "?"
                print("  tokenizer      \(kind), \(t.tokens) tokens, bos \(t.bos.map(String.init) ?? "-"), eos \(t.eos.map(String.init) ?? "-"), add_bos \(t.add_bos)")
            }
            print("  kernels        \(report.isa) (this machine allows \(report.isa_available.joined(separator: ", ")); PRS_ISA forces one)")
            for a in report.adapters ?? [] {
                let base = a.matches_base.map { $0 ? "trained on this file" : "trained on another file" } ?? "base not recorded"
                print("  adapter        \(a.path): LoRA rank \(a.rank), alpha \(a.alpha), scale \(a.scale), \(a.tensors) tensors, \(base)")
            }
        }

        /// The `--lora` adapters, checked against the model (shapes, architecture, recorded base hash).
        func adapterInfo(_ file: GGUFFile) throws -> [AdapterInfo]? {
            guard !lora.isEmpty else { return nil }
            let llama: LlamaModel
            do { llama = try LlamaModel(file: file) } catch { throw CLIFailure.badInput("\(error)") }
            let sha = try? SHA256.file(model)
            return try lora.map { spec in
                let adapter: LoRAAdapter
                do {
                    let (path, scale) = try LoRAAdapter.parseSpec(spec)
                    adapter = try LoRAAdapter(path: path, scale: scale, model: llama)
                } catch { throw CLIFailure.badInput("--lora: \(error)") }
                let recorded = (try? GGUFFile(path: adapter.path))?.content["prs.base_sha256"]?.string
                return AdapterInfo(path: adapter.path, rank: adapter.tensors.values.first?.rank ?? 0, alpha: adapter.alpha, scale: adapter.scale,
                                   tensors: adapter.tensors.count, base_sha256: recorded, matches_base: recorded.map { $0 == sha })
            }
        }
    }

    struct Tokenize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Token ids of TEXT as llama.cpp's llama_tokenize (special tokens parsed; BOS only with --add-special).",
            discussion: "Example:\n  prs model tokenize \(defaultModel) 'Hello, world' --json")
        @Argument(help: "A GGUF model file.") var model: String
        @Argument(help: "The text to tokenize.") var text: String
        @Flag(name: .customLong("add-special"), help: "Add BOS/EOS as the model's metadata asks.") var addSpecial = false
        @Flag(help: "Print JSON: {\"tokens\":[ids],\"pieces\":[texts]}.") var json = false

        func run() async throws {
            let tok = try Model.tokenizer(try Model.open(model))
            let ids = tok.encode(text, addSpecial: addSpecial, parseSpecial: true)
            let pieces = ids.map { String(decoding: tok.bytes(of: $0, special: true), as: UTF8.self) }
            if json {
                struct Out: Encodable { var tokens: [Int32]; var pieces: [String] }
                print(try Model.json(Out(tokens: ids, pieces: pieces)))
            } else {
                for (id, p) in zip(ids, pieces) { print("\(id)\t\(p.debugDescription)") }
            }
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate from a prompt, streaming text to the terminal.",
            discussion: "The raw prompt is tokenized with BOS as the model asks and special tokens parsed; with --chat it is sent as a user message through the model's chat template.\n\nExample:\n  prs model generate \(defaultModel) --chat --prompt 'Name a colour.' --lora runs/x/adapter.gguf")
        @Argument(help: "A GGUF model file.") var model: String
        @Option(help: "The prompt.") var prompt: String
        @Flag(help: "Wrap the prompt as a user message in the chat template.") var chat = false
        @Option(help: "Chat template (chatml, llama3, mistral, gemma); default: recognised from the file.") var template: String?
        @Option(help: "Sampling temperature; 0 is greedy (default 0.8).") var temperature: Float = 0.8
        @Option(name: .customLong("top-k"), help: "Top-k (default 50; 0 keeps all).") var topK = 50
        @Option(name: .customLong("top-p"), help: "Top-p (default 1).") var topP: Float = 1
        @Option(name: .customLong("min-p"), help: "Min-p (default 0).") var minP: Float = 0
        @Option(name: .customLong("max-tokens"), help: "Token limit (default 128).") var maxTokens = 128
        @Option(help: "Seed (default 0).") var seed: UInt64 = 0
        @Option(help: "Stop string (repeatable).") var stop: [String] = []
        @Option(help: "Threads (default: all cores).") var threads: Int?
        @Option(help: "A LoRA adapter to apply, A.gguf or A.gguf@SCALE (repeatable).") var lora: [String] = []
        @Flag(help: "Print JSON: {\"tokens\":[ids],\"text\":…}.") var json = false

        func validate() throws {
            if maxTokens < 1 { throw ValidationError("--max-tokens must be at least 1") }
            if temperature < 0 { throw ValidationError("--temperature must be 0 or more") }
            if !(0...1).contains(topP) { throw ValidationError("--top-p must be between 0 and 1") }
        }

        func run() async throws {
            let file = try Model.open(model)
            let llama: LlamaModel
            do { llama = try LlamaModel(file: file) } catch { throw CLIFailure.badInput("\(error)") }
            let ids: [Int32]
            if chat {
                let t: ChatTemplate
                do { t = try ChatTemplate.of(llama, named: template) } catch { throw CLIFailure.badInput("--template: \(error)") }
                do { ids = try t.promptTokens([TemplateMessage(role: "user", content: prompt)], tokenizer: llama.tokenizer) } catch {
                    throw CLIFailure.badInput("\(model): \(error)")
                }
            } else {
                ids = llama.tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
            }
            let engine = Engine(model: llama, contextTokens: min(llama.config.contextLength, ids.count + maxTokens + 1),
                                threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
            let options = CompletionOptions(maxTokens: maxTokens, stop: stop, sampler: SamplerSettings(
                temperature: temperature, topK: topK, topP: topP, minP: minP, seed: seed))
            let toTerminal: @Sendable (String) -> Void = { piece in FileHandle.standardOutput.write(Data(piece.utf8)) }
            let stream = json ? nil : toTerminal
            let out: Completion
            let adapters = try Model.adapters(lora, llama)
            do { out = try await engine.complete(prompt: ids, n: 1, options: options, adapters: adapters, onText: stream)[0] } catch {
                throw CLIFailure.badInput("\(error)")
            }
            if json {
                struct Out: Encodable { var tokens: [Int32]; var text: String }
                print(try Model.json(Out(tokens: out.tokens, text: out.text)))
            } else {
                print()
            }
        }
    }

    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure this engine alone: prompt processing, decoding, N-way sampling from one prompt, peak memory.",
            discussion: """
                The products run on the best kernel table the machine has (amx, else avx512, else avx2); PRS_ISA=avx2|avx512|amx \
                forces one, and every table gives the same tokens.
                Example:
                  prs model bench \(defaultModel) --threads 2 --json
                  PRS_ISA=avx2 prs model bench \(defaultModel) --json
                """)
        @Argument(help: "A GGUF model file.") var model: String
        @Option(name: .customLong("prompt-tokens"), help: "Prompt length (default 200).") var promptTokens = 200
        @Option(help: "Tokens to generate (default 128).") var gen = 128
        @Option(help: "Continuations of one prompt for the N-way figure (default 8).") var n = 8
        @Option(help: "Threads (default 2).") var threads = 2
        @Option(help: "A LoRA adapter to apply, A.gguf or A.gguf@SCALE (repeatable).") var lora: [String] = []
        @Flag(help: "Also measure the machine's memory read bandwidth (1 thread and --threads) and decode's share of it.") var bandwidth = false
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if promptTokens < 2 || gen < 1 || n < 1 || threads < 1 { throw ValidationError("--prompt-tokens ≥ 2, --gen, --n and --threads ≥ 1") }
        }

        func run() async throws {
            var settings = Benchmark.Settings()
            (settings.promptTokens, settings.gen, settings.n, settings.threads, settings.bandwidth) = (promptTokens, gen, n, threads, bandwidth)
            let out: Benchmark.Result
            do { out = try await Benchmark.run(path: model, settings: settings) { try Model.adapters(lora, $0) } } catch let e as CLIFailure {
                throw e
            } catch { throw CLIFailure.badInput("\(error)") }
            if json { print(try Model.json(out)); return }
            print(String(format: "prompt %.1f tok/s · decode %.1f tok/s · %d-way %.1f tok/s · peak RSS %.0f MB",
                         out.promptTokensPerSecond, out.decodeTokensPerSecond, n, out.nwayTokensPerSecond, out.peakRSSMegabytes)
                + " · kernels \(out.isa) · tokens \(out.nwayTokensFNV1a)")
            print(String(format: "load %.2f s, of which repacking %.0f MB into the kernels' layout %.2f s",
                         out.loadSeconds, out.repackedMegabytes, out.repackSeconds))
            if let bw1 = out.readGBPerSecondOneThread, let bwT = out.readGBPerSecond, let share = out.decodeBandwidthShare {
                print(String(format: "read bandwidth %.1f GB/s on 1 thread, %.1f on %d; decode reads %.0f MB a token: %.0f%% of it",
                             bw1, bwT, threads, out.decodeReadMegabytes * 1_048_576 / 1e6, share * 100))
            }
        }
    }
}
