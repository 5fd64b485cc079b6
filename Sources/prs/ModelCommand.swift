import ArgumentParser
import Foundation
import GGUF
import LMEngine

/// `prs model …`: the engine's tools, on their own and as its contract with scripts.
struct Model: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect GGUF models and use their tokenizer.",
        subcommands: [Info.self, Tokenize.self]
    )

    static func open(_ path: String) throws -> GGUFFile {
        do { return try GGUFFile(path: path) } catch let e as GGUFError { throw CLIFailure.badInput(e.description) }
    }

    static func tokenizer(_ file: GGUFFile) throws -> Tokenizer {
        do { return try Tokenizer(gguf: file.content) } catch { throw CLIFailure.badInput("\(file.path): \(error)") }
    }

    static func json(_ value: some Encodable) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try e.encode(value), as: UTF8.self)
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Architecture, hyperparameters, tensor types and sizes, template, tokenizer.")
        @Argument(help: "A GGUF model file.") var model: String
        @Flag(help: "Print JSON.") var json = false

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
            var chat_template: String?
            var tokenizer: TokenizerInfo?
        }

        func run() async throws {
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
            let template = c["tokenizer.chat_template"]?.string.map { (try? ChatTemplate.recognise($0))?.name ?? "unrecognised" }
            let tok = try? Tokenizer(gguf: c)
            let report = Report(
                path: model, file_bytes: file.fileSize, gguf_version: c.version, architecture: arch,
                name: c["general.name"]?.string, parameters: c.tensors.reduce(0) { $0 + $1.elementCount },
                hyperparameters: hyper, tensor_types: types, tensors: c.tensors.count, chat_template: template,
                tokenizer: tok.map { .init(model: c["tokenizer.ggml.model"]?.string, pre: c["tokenizer.ggml.pre"]?.string,
                                           tokens: $0.count, bos: $0.bos, eos: $0.eos, add_bos: $0.addBOS) })
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
            if let t = report.tokenizer {
                print("  tokenizer      \(t.model ?? "?") (\(t.pre ?? "default")), \(t.tokens) tokens, bos \(t.bos.map(String.init) ?? "-"), eos \(t.eos.map(String.init) ?? "-"), add_bos \(t.add_bos)")
            }
        }
    }

    struct Tokenize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Token ids of TEXT as llama.cpp's llama_tokenize (special tokens parsed; BOS only with --add-special).")
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
}
