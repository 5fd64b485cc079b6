import Foundation
import LMEngine

/// The model the server loaded: its engine, its chat template, and the adapters served by name.
final class ServedModel: Sendable {
    let model: LlamaModel
    let engine: Engine
    let reader: RequestReader
    let baseName: String
    let path: String
    /// Adapters served by model name: those given at start and those loaded at run time.
    let adapters: AdapterRegistry
    let created = Int(Date().timeIntervalSince1970)

    init(options: ServerOptions) throws {
        let model = try LlamaModel(path: options.modelPath)
        let template = try ChatTemplate.of(model, named: options.template)
        let base = options.modelName ?? URL(fileURLWithPath: options.modelPath).deletingPathExtension().lastPathComponent
        adapters = AdapterRegistry(base: base)
        for a in options.adapters {
            let stack: AdapterStack
            do { stack = try Self.stack(a.spec, model) } catch { throw ServerSetupError("--lora \(a.name)=\(a.spec): \(error)") }
            do { try adapters.add(a.name, stack: stack, spec: a.spec) } catch { throw ServerSetupError("--lora \(a.name)=…: \(error.message)") }
        }
        self.model = model
        engine = Engine(model: model, settings: options.engine)
        reader = RequestReader(model: model, template: template, contextTokens: engine.contextTokens)
        baseName = base
        path = options.modelPath
    }

    /// The adapter of `spec` (`A.gguf[@SCALE]` or a PEFT directory) on `model`.
    static func stack(_ spec: String, _ model: LlamaModel) throws -> AdapterStack {
        let (path, scale) = try LoRAAdapter.parseSpec(spec)
        return AdapterStack([try LoRAAdapter(path: path, scale: scale, model: model)], layers: model.config.layers)
    }

    var names: [String] { [baseName] + adapters.listing.map(\.0) }

    /// The model a request names: absent or the base's name (or path) is the base. An adapter's
    /// lease keeps it loaded until the request ends (`release`).
    func resolve(_ name: String?) throws(APIError) -> (String, AdapterStack?, AdapterRegistry.Lease?) {
        guard let name, name != baseName, name != path else { return (baseName, nil, nil) }
        let (stack, lease) = try adapters.acquire(name, known: names)
        return (name, stack, lease)
    }

    /// vLLM's `/tokenizer_info`: the special tokens as text, the longest input and the chat template.
    var tokenizerInfo: [String: Any] {
        let t = model.tokenizer
        func text(_ id: Int32?) -> Any { id.map { String(decoding: t.bytes(of: $0, special: true), as: UTF8.self) } ?? NSNull() }
        return [
            "tokenizer_class": t.model == .bpe ? "GGUF BPE" : "GGUF SentencePiece",
            "eos_token": text(t.eos), "bos_token": text(t.bos), "pad_token": text(t.padding), "unk_token": text(t.unknown),
            "eos_token_id": t.eos.map { Int($0) as Any } ?? NSNull(), "bos_token_id": t.bos.map { Int($0) as Any } ?? NSNull(),
            "add_bos_token": t.addBOS, "add_eos_token": t.addEOS,
            "model_max_length": engine.contextTokens, "vocab_size": t.count,
            "chat_template": ChatTemplate.source(of: model).map { $0 as Any } ?? NSNull(),
        ]
    }

    var listing: [String: Any] {
        var data: [[String: Any]] = [[
            "id": baseName, "object": "model", "created": created, "owned_by": "prs", "root": path,
            "parent": NSNull(), "max_model_len": engine.contextTokens,
        ]]
        for (name, spec) in adapters.listing {
            data.append(["id": name, "object": "model", "created": created, "owned_by": "prs", "root": spec,
                         "parent": baseName, "max_model_len": engine.contextTokens])
        }
        return ["object": "list", "data": data]
    }
}

public struct ServerSetupError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
