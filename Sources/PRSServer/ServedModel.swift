import Foundation
import LMEngine

/// The model the server loaded: its engine, its chat template, and the adapters served by name.
final class ServedModel: Sendable {
    let model: LlamaModel
    let engine: Engine
    let reader: RequestReader
    let baseName: String
    let path: String
    /// Adapter stacks by model name, with their files.
    let adapters: [String: (stack: AdapterStack, spec: String)]
    let adapterOrder: [String]
    let created = Int(Date().timeIntervalSince1970)

    init(options: ServerOptions) throws {
        let model = try LlamaModel(path: options.modelPath)
        let template = try ChatTemplate.of(model, named: options.template)
        var byName: [String: (AdapterStack, String)] = [:]
        let base = options.modelName ?? URL(fileURLWithPath: options.modelPath).deletingPathExtension().lastPathComponent
        for a in options.adapters {
            guard a.name != base, byName[a.name] == nil else { throw ServerSetupError("--lora \(a.name)=…: the name \(a.name) is already taken") }
            let (path, scale) = try LoRAAdapter.parseSpec(a.spec)
            let adapter: LoRAAdapter
            do { adapter = try LoRAAdapter(path: path, scale: scale, model: model) } catch { throw ServerSetupError("--lora \(a.name)=\(a.spec): \(error)") }
            byName[a.name] = (AdapterStack([adapter], layers: model.config.layers), a.spec)
        }
        self.model = model
        engine = Engine(model: model, settings: options.engine)
        reader = RequestReader(model: model, template: template, contextTokens: engine.contextTokens)
        baseName = base
        path = options.modelPath
        adapters = byName.mapValues { (stack: $0.0, spec: $0.1) }
        adapterOrder = options.adapters.map(\.name)
    }

    var names: [String] { [baseName] + adapterOrder }

    /// The model a request names: absent or the base's name (or path) is the base.
    func resolve(_ name: String?) throws(APIError) -> (String, AdapterStack?) {
        guard let name, name != baseName, name != path else { return (baseName, nil) }
        guard let a = adapters[name] else { throw .unknownModel(name, known: names) }
        return (name, a.stack)
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
        for name in adapterOrder {
            data.append(["id": name, "object": "model", "created": created, "owned_by": "prs", "root": adapters[name]!.spec,
                         "parent": baseName, "max_model_len": engine.contextTokens])
        }
        return ["object": "list", "data": data]
    }
}

public struct ServerSetupError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
