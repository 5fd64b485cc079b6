import ArgumentParser
import Foundation
import GGUF
import LMEngine
import PRSCore

extension Model {
    struct Tokenize: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Token ids of TEXT as llama.cpp's llama_tokenize (special tokens parsed; BOS only with --add-special).",
            discussion: "Example:\n  prs model tokenize \(defaultModel) 'Hello, world' --json")
        @Argument(help: "A GGUF model file.") var model: String
        @Argument(help: "The text to tokenize.") var text: String
        @Flag(name: .customLong("add-special"), help: "Add BOS/EOS as the model's metadata asks.") var addSpecial =
            false
        @Flag(help: "Print JSON: {\"tokens\":[ids],\"pieces\":[texts]}.") var json = false

        func run() async throws {
            let tok = try Model.tokenizer(try Model.open(model))
            let ids = tok.encode(text, addSpecial: addSpecial, parseSpecial: true)
            let pieces = ids.map { String(decoding: tok.bytes(of: $0, special: true), as: UTF8.self) }
            if json {
                struct Out: Encodable {
                    var tokens: [Int32]
                    var pieces: [String]
                }
                print(try Model.json(Out(tokens: ids, pieces: pieces)))
            } else {
                for (id, p) in zip(ids, pieces) { print("\(id)\t\(p.debugDescription)") }
            }
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate from a prompt, streaming text to the terminal.",
            discussion:
                "The raw prompt is tokenized with BOS as the model asks and special tokens parsed; with --chat it is "
                + "sent as a user message through the model's chat template.\n\nExample:\n  prs model generate "
                + "\(defaultModel) --chat --prompt 'Name a colour.' --lora runs/x/adapter.gguf"
        )
        @Argument(help: "A GGUF model file.") var model: String
        @Option(help: "The prompt.") var prompt: String
        @Flag(help: "Wrap the prompt as a user message in the chat template.") var chat = false
        @Option(help: "Chat template (chatml, llama3, mistral, gemma); default: recognised from the file.")
        var template: String?
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
                do { t = try ChatTemplate.of(llama, named: template) } catch {
                    throw CLIFailure.badInput("--template: \(error)")
                }
                do {
                    ids = try t.promptTokens(
                        [TemplateMessage(role: "user", content: prompt)], tokenizer: llama.tokenizer)
                } catch {
                    throw CLIFailure.badInput("\(model): \(error)")
                }
            } else {
                ids = llama.tokenizer.encode(prompt, addSpecial: true, parseSpecial: true)
            }
            let engine = Engine(
                model: llama, contextTokens: min(llama.config.contextLength, ids.count + maxTokens + 1),
                threads: threads ?? ProcessInfo.processInfo.activeProcessorCount)
            let options = CompletionOptions(
                maxTokens: maxTokens, stop: stop,
                sampler: SamplerSettings(
                    temperature: temperature, topK: topK, topP: topP, minP: minP, seed: seed))
            let toTerminal: @Sendable (String) -> Void = { piece in FileHandle.standardOutput.write(Data(piece.utf8)) }
            let stream = json ? nil : toTerminal
            let out: Completion
            let adapters = try Model.adapters(lora, llama)
            do {
                out = try await engine.complete(
                    prompt: ids, n: 1, options: options, adapters: adapters, onText: stream)[0]
            } catch {
                throw CLIFailure.badInput("\(error)")
            }
            if json {
                struct Out: Encodable {
                    var tokens: [Int32]
                    var text: String
                }
                print(try Model.json(Out(tokens: out.tokens, text: out.text)))
            } else {
                print()
            }
        }
    }
}
