import ArgumentParser
import Foundation
import GGUF
import LMEngine
import LMTraining
import PRSBackends

extension Model {
    struct MergeAdapters: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge",
            abstract: "Merge LoRA adapters into a model and write a standalone GGUF.",
            discussion: """
                The adapted tensors become W + scale · (alpha/r) · B·A, written as --type; the others keep their \
                encoding.

                Example:
                  prs model merge models/SmolLM2-135M-Instruct.Q4_1.gguf runs/x/adapter.gguf --out runs/x/merged.gguf \
                --type q8_0
                """)
        @Argument(help: "The base GGUF model.") var model: String
        @Argument(help: "Adapters, A.gguf or A.gguf@SCALE.") var adapters: [String]
        @Option(help: "Where to write the merged model.") var out: String
        @Option(help: "The adapted tensors' type: f16, f32, q8_0 or q4_1 (default f16).") var type = "f16"
        @Option(help: "A scale for every adapter without its own @SCALE (default 1).") var scale: Float = 1

        func validate() throws {
            if adapters.isEmpty { throw ValidationError("name at least one adapter") }
            if !["f16", "f32", "q8_0", "q4_1"].contains(type) {
                throw ValidationError("--type: expected f16, f32, q8_0 or q4_1")
            }
        }

        func run() async throws {
            let llama: LlamaModel
            do { llama = try LlamaModel(path: model) } catch { throw CLIFailure.badInput("\(error)") }
            let loaded: [LoRAAdapter]
            do {
                loaded = try adapters.map { spec in
                    let (path, s) = try LoRAAdapter.parseSpec(spec)
                    return try LoRAAdapter(path: path, scale: spec.contains("@") ? s : scale, model: llama)
                }
            } catch { throw CLIFailure.badInput("\(error)") }
            let t: TensorType = ["f32": .f32, "q8_0": .q8_0, "q4_1": .q4_1][type] ?? .f16
            do { try ModelFiles.merge(base: llama.file, adapters: loaded, type: t, to: out) } catch {
                throw CLIFailure.failed("\(error)")
            }
            print("wrote \(out): \(loaded.reduce(0) { $0 + $1.tensors.count }) tensors merged as \(t)")
        }
    }

    struct ExportAdapter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-adapter",
            abstract: "Convert a LoRA adapter between llama.cpp's GGUF and a PEFT directory (vLLM, SGLang, TRL, PEFT).",
            discussion: """
                GGUF to PEFT writes DIR/adapter_model.safetensors and DIR/adapter_config.json: Hugging Face module \
                names, lora_A [r, n_in] and lora_B [n_out, r], q/k rows un-permuted from GGUF's layout, r, \
                lora_alpha, target_modules and base_model_name_or_path when known. PEFT to GGUF does the reverse. \
                Values cross unchanged, so GGUF to PEFT to GGUF gives the same tensors (at the stored type). The base \
                model supplies the heads that q/k rows are permuted by.

                Examples:
                  prs model export-adapter runs/loop/prs/iter-1/adapter.gguf --format peft --out \
                runs/loop/prs/iter-1/peft
                  prs model export-adapter trl-output/ --format gguf --out adapter.gguf
                  vllm serve HuggingFaceTB/SmolLM2-135M-Instruct --enable-lora --lora-modules \
                concise=runs/loop/prs/iter-1/peft
                """)
        @Argument(help: "The adapter: A.gguf or a PEFT directory.") var adapter: String
        @Option(help: "What to write: peft (a directory) or gguf (a file).") var format: String
        @Option(help: "Where to write it.") var out: String
        @Option(help: "The base model the adapter belongs to (its heads and architecture).") var model = Model
            .defaultModel
        @Option(
            help:
                "base_model_name_or_path for PEFT (default: the base GGUF's Hugging Face repository when it records one)."
        )
        var baseModel: String?
        @Option(help: "The tensors' type: f32 or f16 (default f32).") var type = "f32"

        func validate() throws {
            if !["peft", "gguf"].contains(format) { throw ValidationError("--format: expected peft or gguf") }
            if !["f32", "f16"].contains(type) { throw ValidationError("--type: expected f32 or f16") }
        }

        func run() async throws {
            guard FileManager.default.fileExists(atPath: adapter) else {
                throw CLIFailure.badInput("\(adapter): no such file or directory")
            }
            let llama: LlamaModel
            do { llama = try LlamaModel(file: try GGUFFile(path: model), repack: false) } catch {
                throw CLIFailure.badInput("--model \(model): \(error)")
            }
            let loaded: LoRAAdapter
            do { loaded = try LoRAAdapter(path: adapter, model: llama) } catch { throw CLIFailure.badInput("\(error)") }
            do {
                switch format {
                case "peft":
                    let name =
                        baseModel
                        ?? ["general.source.huggingface.repository", "general.base_model.0.repo_url"]
                        .lazy.compactMap { llama.file.content[$0]?.string }.first
                    try PEFTAdapter.write(
                        loaded, model: llama, baseModelName: name, to: out, dtype: type == "f16" ? .f16 : .f32)
                    print(
                        "wrote \(out): \(PEFTAdapter.weightsFile) (\(loaded.tensors.count) modules, r "
                            + "\(loaded.rank), lora_alpha \(loaded.alpha)) and \(PEFTAdapter.configFile)"
                    )
                default:
                    try ModelFiles.writeAdapter(loaded, type: type == "f16" ? .f16 : .f32, to: out)
                    print("wrote \(out): \(loaded.tensors.count) adapted tensors, alpha \(loaded.alpha)")
                }
            } catch { throw CLIFailure.failed("\(out): \(error)") }
        }
    }

    struct Eval: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "The mean negative log-likelihood of a data file's answers (and, for preference pairs, the "
                + "chosen-over-rejected margin).",
            discussion: """
                Data as prs train reads it. Answers are scored token by token after the prompt, rendered with the \
                model's chat template.

                Example:
                  prs model eval models/SmolLM2-135M-Instruct.Q4_1.gguf --data sft.jsonl --lora runs/x/adapter.gguf
                """)
        @Argument(help: "The GGUF model.") var model: String
        @Option(help: "Data (JSONL; repeatable).") var data: [String] = []
        @Option(help: "A LoRA adapter, A.gguf or A.gguf@SCALE (repeatable).") var lora: [String] = []
        @Option(help: "Chat template (chatml, llama3, mistral, gemma); default: the model's.") var template: String?
        @Option(help: "Threads (default 2).") var threads = 2
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if data.isEmpty { throw ValidationError("--data: give at least one file") }
        }

        func run() async throws {
            for f in data where !FileManager.default.fileExists(atPath: f) {
                throw CLIFailure.badInput("\(f): no such file")
            }
            let r: AnswerLikelihood
            do {
                r = try EmbeddedTraining.likelihood(
                    model: model, adapters: lora, data: data, template: template, threads: threads)
            } catch let e as TrainingInputError {
                throw CLIFailure.badInput(e.description)
            }
            if json {
                print(try Model.json(r))
                return
            }
            print(
                String(
                    format: "%d examples, %d answer tokens: mean NLL %.4f (perplexity %.2f)", r.examples, r.tokens,
                    r.meanNLL, Foundation.exp(r.meanNLL)))
            if let m = r.meanMargin, let a = r.marginAccuracy {
                print(
                    String(
                        format: "%d pairs: mean log-prob margin chosen − rejected %.3f, chosen more likely in %.1f%%",
                        r.pairs, m, 100 * a))
            }
        }
    }
}
