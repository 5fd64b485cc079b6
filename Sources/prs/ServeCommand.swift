import ArgumentParser
import Foundation
import LMEngine
import Logging
import PRSServer

/// `prs serve`: the embedded engine behind an OpenAI-compatible HTTP API.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a GGUF model (and LoRA adapters by name) over an OpenAI-compatible HTTP API.",
        discussion: """
            Endpoints: POST /v1/chat/completions and /v1/completions (n, seed with choice i using seed+i, logprobs, \
            stream), GET /v1/models, /health (503 while loading or shutting down), /metrics (Prometheus), POST \
            /tokenize and /detokenize, GET /tokenizer_info (vLLM's shapes; lm-evaluation-harness's local-completions \
            uses them), and with --allow-runtime-lora POST /v1/load_lora_adapter {"lora_name","lora_path"} and \
            /v1/unload_lora_adapter {"lora_name"} (vLLM's runtime adapters; unloading waits for the adapter's \
            requests in flight). /v1/completions with echo and logprobs returns every prompt token's log-probability. \
            Requests for the base model and for each adapter decode in the same batch; a seeded request's output does \
            not depend on what else is running. SIGTERM or Ctrl-C stops accepting, finishes what is in flight (up to \
            --drain-timeout seconds), then exits.

            Examples:
              prs serve --model \(Model.defaultModel) --port 8080
              prs serve --lora concise=runs/loop/prs/iter-1/adapter.gguf --api-key sekret
              prs sample --prompts P.jsonl --out runs/x --policy openai:http://127.0.0.1:8080/v1
            """)

    @Option(help: "The GGUF model to serve.") var model = Model.defaultModel
    @Option(help: "The base model's name in /v1/models and requests (default: the file name without .gguf).") var name:
        String?
    @Option(
        help: ArgumentHelp(
            "An adapter served as its own model: NAME=A.gguf[@SCALE] or NAME=PEFT_DIR (repeatable).",
            valueName: "NAME=A.gguf"))
    var lora: [String] = []
    @Option(help: "Chat template (chatml, llama3, mistral, gemma); default: recognised from the file.") var template:
        String?
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one, printed at start).") var port = 8080
    @Option(
        help: "Require 'Authorization: Bearer KEY' (default: $PRS_API_KEY; /health, /v1/models and /metrics stay open)."
    )
    var apiKey: String?
    @Option(help: "Sequences decoded together at most.") var maxBatch = 16
    @Option(help: "Generation requests held beyond the batch before new ones get 429.") var maxQueue = 256
    @Option(help: "Positions one sequence may use (prompt and reply).") var context = 4096
    @Option(help: "Threads of the engine (default: all cores).") var threads: Int?
    @Option(help: "Largest request body, in bytes.") var maxBody = 8 << 20
    @Option(help: "Seconds to finish requests in flight on SIGTERM before cancelling them.") var drainTimeout = 30.0
    @Flag(
        help:
            "Allow POST /v1/load_lora_adapter and /v1/unload_lora_adapter (vLLM's runtime adapters; default: $PRS_ALLOW_RUNTIME_LORA=1)."
    )
    var allowRuntimeLora = false

    func run() async throws {
        var options = ServerOptions(modelPath: model)
        options.modelName = name
        options.template = template
        options.host = host
        options.port = port
        options.apiKey = apiKey ?? ProcessInfo.processInfo.environment["PRS_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        options.maxQueue = max(0, maxQueue)
        options.maxBodyBytes = max(1024, maxBody)
        options.drainSeconds = max(0, drainTimeout)
        let env = ProcessInfo.processInfo.environment
        options.allowRuntimeLoRA =
            allowRuntimeLora || ["1", "true", "yes"].contains((env["PRS_ALLOW_RUNTIME_LORA"] ?? "").lowercased())
        options.engine = EngineSettings(
            contextTokens: context, maxBatch: maxBatch, threads: threads ?? ProcessInfo.processInfo.activeProcessorCount
        )
        for spec in lora {
            guard let a = ServerOptions.Adapter.parse(spec) else {
                throw CLIFailure.badInput("--lora \(spec): expected NAME=A.gguf[@SCALE]")
            }
            options.adapters.append(a)
        }
        guard FileManager.default.fileExists(atPath: model) else {
            throw CLIFailure.badInput("--model \(model): no such file")
        }
        let logger = Logger(label: "prs.serve")
        let server = ModelServer(options: options, logger: logger)
        let host = options.host
        // The lines scripts wait for: where to connect, then that the model is loaded.
        @Sendable func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
        do {
            try await server.run(
                onListening: { port in say("prs serve: listening on http://\(host):\(port)/v1") },
                onReady: { say("prs serve: ready") })
        } catch let e as ServerSetupError {
            throw CLIFailure.badInput(e.description)
        } catch {
            throw CLIFailure.failed("\(error)")
        }
    }
}
