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
        let base =
            options.modelName ?? URL(fileURLWithPath: options.modelPath).deletingPathExtension().lastPathComponent
        adapters = AdapterRegistry(base: base)
        for a in options.adapters {
            let stack: AdapterStack
            do { stack = try Self.stack(a.spec, model) } catch {
                throw ServerSetupError("--lora \(a.name)=\(a.spec): \(error)")
            }
            do { try adapters.add(a.name, stack: stack, spec: a.spec) } catch {
                throw ServerSetupError("--lora \(a.name)=…: \(error.message)")
            }
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
    struct TokenizerInfo: Encodable, Sendable {
        var tokenizerClass: String
        var eosToken, bosToken, padToken, unkToken: OrNull<String>
        var eosTokenID, bosTokenID: OrNull<Int>
        var addBOSToken, addEOSToken: Bool
        var modelMaxLength, vocabSize: Int
        var chatTemplate: OrNull<String>
        enum CodingKeys: String, CodingKey {
            case tokenizerClass = "tokenizer_class"
            case eosToken = "eos_token"
            case bosToken = "bos_token"
            case padToken = "pad_token"
            case unkToken = "unk_token"
            case eosTokenID = "eos_token_id"
            case bosTokenID = "bos_token_id"
            case addBOSToken = "add_bos_token"
            case addEOSToken = "add_eos_token"
            case modelMaxLength = "model_max_length"
            case vocabSize = "vocab_size"
            case chatTemplate = "chat_template"
        }
    }

    var tokenizerInfo: TokenizerInfo {
        let t = model.tokenizer
        func text(_ id: Int32?) -> OrNull<String> {
            OrNull(id.map { String(decoding: t.bytes(of: $0, special: true), as: UTF8.self) })
        }
        return TokenizerInfo(
            tokenizerClass: t.model == .bpe ? "GGUF BPE" : "GGUF SentencePiece",
            eosToken: text(t.eos), bosToken: text(t.bos), padToken: text(t.padding), unkToken: text(t.unknown),
            eosTokenID: OrNull(t.eos.map { Int($0) }), bosTokenID: OrNull(t.bos.map { Int($0) }),
            addBOSToken: t.addBOS, addEOSToken: t.addEOS, modelMaxLength: engine.contextTokens, vocabSize: t.count,
            chatTemplate: OrNull(ChatTemplate.source(of: model)))
    }

    /// `GET /v1/models`: the base model and each adapter (its `parent` the base).
    struct Listing: Encodable, Sendable {
        struct Entry: Encodable, Sendable {
            var id: String
            var object = "model"
            var created: Int
            var ownedBy = "prs"
            var root: String
            var parent: OrNull<String>
            var maxModelLen: Int
            enum CodingKeys: String, CodingKey {
                case id, object, created
                case ownedBy = "owned_by"
                case root, parent
                case maxModelLen = "max_model_len"
            }
        }
        var object = "list"
        var data: [Entry]
    }

    var listing: Listing {
        var data = [
            Listing.Entry(id: baseName, created: created, root: path, parent: .null, maxModelLen: engine.contextTokens)
        ]
        for (name, spec) in adapters.listing {
            data.append(
                Listing.Entry(
                    id: name, created: created, root: spec, parent: OrNull(baseName),
                    maxModelLen: engine.contextTokens))
        }
        return Listing(data: data)
    }
}

public struct ServerSetupError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
