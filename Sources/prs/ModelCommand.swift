import ArgumentParser
import Foundation
import GGUF
import LMEngine
import PRSCore

/// `prs model …`: the engine's tools, on their own and as its contract with scripts.
struct Model: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect, run, evaluate and merge GGUF models.",
        subcommands: [
            Info.self, Tokenize.self, Generate.self, Bench.self, MergeAdapters.self, ExportAdapter.self, Eval.self,
        ]
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
            return AdapterStack(
                try specs.map { spec in
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
        static let configuration = CommandConfiguration(
            abstract: "Architecture, hyperparameters, tensor types and sizes, template, tokenizer.",
            discussion: "Example:\n  prs model info \(defaultModel) --lora runs/x/adapter.gguf")
        @Argument(help: "A GGUF model file.") var model: String
        @Option(help: "A LoRA adapter to describe and check against the model, A.gguf or A.gguf@SCALE (repeatable).")
        var lora: [String] = []
        @Flag(help: "Print JSON.") var json = false

        struct AdapterInfo: Encodable {
            var path: String
            var rank: Int
            var alpha: Float
            var scale: Float
            var tensors: Int
            var base_sha256: String?
            var matches_base: Bool?
        }

        struct Report: Encodable {
            struct TypeUse: Encodable {
                var tensors: Int
                var bytes: Int
                var elements: Int
            }
            struct TokenizerInfo: Encodable {
                var model: String?
                var pre: String?
                var tokens: Int
                var bos: Int32?
                var eos: Int32?
                var add_bos: Bool
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
            var isa: String
            var isa_available: [String]
        }

        func run() async throws {
            do { _ = try InstructionSet.requested() } catch { throw CLIFailure.badInput("\(error)") }
            let file = try Model.open(model)
            let c = file.content
            let arch = c["general.architecture"]?.string
            var hyper: [String: String] = [:]
            for (k, v) in c.metadata where arch.map({ k.hasPrefix($0 + ".") }) ?? false {
                hyper[String(k.dropFirst(arch!.count + 1))] =
                    v.integer.map(String.init) ?? v.float.map { String($0) } ?? v.string ?? v.bool.map(String.init)
                    ?? v.typeDescription
            }
            var types: [String: Report.TypeUse] = [:]
            for t in c.tensors {
                var u = types[t.type.description] ?? .init(tensors: 0, bytes: 0, elements: 0)
                u.tensors += 1
                u.bytes += t.byteCount
                u.elements += t.elementCount
                types[t.type.description] = u
            }
            let described: (String, String)? =
                c["tokenizer.chat_template"]?.string.map { source -> (String, String) in
                    let format = (try? ChatTemplate.recognise(source)).map { ", a \($0.name) format" } ?? ""
                    do {
                        _ = try JinjaTemplate(source)
                        return ("jinja", "the file's own (Jinja, \(source.utf8.count) bytes\(format)), rendered by prs")
                    } catch {
                        return (
                            "unrenderable",
                            "the file's own, which prs cannot render (\(error)); choose one with --template"
                        )
                    }
                }
                ?? arch.flatMap { ChatTemplate.forArchitecture($0) }.map {
                    ($0.name, "\($0.name) (none in the file; the architecture's)")
                }
            let template = described?.1
            let tok = try? Tokenizer(gguf: c)
            var rope: String?
            do {
                let s = try LlamaConfig(gguf: c).ropeScaling
                var parts: [String] = []
                if let t = file.tensor("rope_freqs.weight") {
                    parts.append("rope_freqs (\(t.elementCount) factors, Llama 3.x)")
                }
                if let t = file.tensor("rope_factors_long.weight") {
                    parts.append(
                        "rope_factors_short/long (\(t.elementCount) factors each, Phi-3; long past "
                            + "\(s.originalContext) positions)"
                    )
                }
                if s.kind != .none {
                    parts.append(
                        "\(s.kind.rawValue) ×\(1 / s.freqScale)"
                            + (s.kind == .yarn ? " (original context \(s.originalContext))" : ""))
                }
                if s.attnFactor != 1 { parts.append("attn_factor \(s.attnFactor)") }
                rope = parts.isEmpty ? "none" : parts.joined(separator: ", ")
            } catch { rope = "refused: \(error)" }
            let report = Report(
                path: model, file_bytes: file.fileSize, gguf_version: c.version, architecture: arch,
                name: c["general.name"]?.string, parameters: c.tensors.reduce(0) { $0 + $1.elementCount },
                hyperparameters: hyper, tensor_types: types, tensors: c.tensors.count, chat_template: described?.0,
                chat_template_detail: template, rope_scaling: rope,
                tokenizer: tok.map {
                    .init(
                        model: c["tokenizer.ggml.model"]?.string, pre: c["tokenizer.ggml.pre"]?.string,
                        tokens: $0.count, bos: $0.bos, eos: $0.eos, add_bos: $0.addBOS)
                },
                adapters: try adapterInfo(file),
                isa: InstructionSet.active, isa_available: InstructionSet.available.map(\.rawValue))
            if json {
                print(try Model.json(report))
                return
            }
            print("\(model) (GGUF v\(c.version), \(String(format: "%.1f", Double(file.fileSize) / 1_048_576)) MiB)")
            print("  architecture   \(arch ?? "?")  \(report.name ?? "")")
            print("  parameters     \(report.parameters)")
            for k in hyper.keys.sorted() {
                print("  \(k.padding(toLength: 36, withPad: " ", startingAt: 0)) \(hyper[k]!)")
            }
            print("  tensors        \(c.tensors.count)")
            for k in types.keys.sorted() {
                let u = types[k]!
                print(
                    "    \(k.padding(toLength: 6, withPad: " ", startingAt: 0)) \(u.tensors) tensors, "
                        + "\(String(format: "%.1f", Double(u.bytes) / 1_048_576)) MiB"
                )
            }
            print("  chat template  \(template ?? "none")")
            print("  rope scaling   \(rope ?? "-")")
            if let t = report.tokenizer {
                let kind =
                    t.model == "llama"
                    ? "SentencePiece (llama)"
                    : t.model == "gpt2" ? "byte-level BPE (gpt2, pre \(t.pre ?? "default"))" : t.model ?? "?"
                print(
                    "  tokenizer      \(kind), \(t.tokens) tokens, bos \(t.bos.map(String.init) ?? "-"), eos "
                        + "\(t.eos.map(String.init) ?? "-"), add_bos \(t.add_bos)"
                )
            }
            print(
                "  kernels        \(report.isa) (this machine allows "
                    + "\(report.isa_available.joined(separator: ", ")); PRS_ISA forces one)"
            )
            for a in report.adapters ?? [] {
                let base =
                    a.matches_base.map { $0 ? "trained on this file" : "trained on another file" }
                    ?? "base not recorded"
                print(
                    "  adapter        \(a.path): LoRA rank \(a.rank), alpha \(a.alpha), scale \(a.scale), "
                        + "\(a.tensors) tensors, \(base)"
                )
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
                return AdapterInfo(
                    path: adapter.path, rank: adapter.tensors.values.first?.rank ?? 0, alpha: adapter.alpha,
                    scale: adapter.scale,
                    tensors: adapter.tensors.count, base_sha256: recorded, matches_base: recorded.map { $0 == sha })
            }
        }
    }
}
