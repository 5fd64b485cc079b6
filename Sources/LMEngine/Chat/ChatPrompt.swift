extension ChatTemplate {
    /// The template named `name`, or the one recognised from the model file's
    /// `tokenizer.chat_template` when `name` is nil.
    public static func of(_ model: LlamaModel, named name: String? = nil) throws -> ChatTemplate {
        if let name {
            guard let t = ChatTemplate.named(name) else {
                throw ChatTemplateError("chat template \"\(name)\": expected one of \(names.joined(separator: ", "))")
            }
            return t
        }
        guard let jinja = model.file.content["tokenizer.chat_template"]?.string else {
            if let byArchitecture = forArchitecture(model.config.architecture) { return byArchitecture }
            throw ChatTemplateError(
                "\(model.file.path): no chat template in the file; choose one with --template "
                    + "\(names.joined(separator: "|"))"
            )
        }
        let t = model.tokenizer
        func text(_ id: Int32?) -> String {
            id.map { String(decoding: t.bytes(of: $0, special: true), as: UTF8.self) } ?? ""
        }
        do {
            return .jinja(try JinjaTemplate(jinja), bos: text(t.bos), eos: text(t.eos))
        } catch {
            throw ChatTemplateError(
                "\(model.file.path): its chat template (tokenizer.chat_template) cannot be rendered: \(error); "
                    + "choose a format with --template \(names.joined(separator: "|"))"
            )
        }
    }

    /// The Jinja text of the model file's `tokenizer.chat_template`, if it has one.
    public static func source(of model: LlamaModel) -> String? {
        model.file.content["tokenizer.chat_template"]?.string
    }

    /// The format an architecture's models are trained on, for files that carry no template
    /// (Gemma 3 base models, for one).
    public static func forArchitecture(_ architecture: String) -> ChatTemplate? {
        switch architecture {
        case "gemma", "gemma2", "gemma3": .gemma
        default: nil
        }
    }

    /// The prompt tokens of `messages`: rendered (then `prefill` appended, the start of the reply),
    /// and tokenized with special tokens parsed and BOS added as the model asks unless the template
    /// wrote it.
    public func promptTokens(
        _ messages: [TemplateMessage], prefill: String? = nil, tokenizer: Tokenizer,
        addGenerationPrompt: Bool = true
    ) throws -> [Int32] {
        let text = try render(messages, addGenerationPrompt: addGenerationPrompt) + (prefill ?? "")
        return tokenizer.promptTokens(text)
    }
}

extension Tokenizer {
    /// `text` as a prompt: special tokens parsed, BOS added as the model asks unless `text`
    /// already starts with it.
    public func promptTokens(_ text: String) -> [Int32] {
        let bosText = bos.map { tokens[Int($0)] }
        let wroteBOS = bosText.map { !$0.isEmpty && text.hasPrefix($0) } ?? false
        return encode(text, addSpecial: !wroteBOS, parseSpecial: true)
    }
}
