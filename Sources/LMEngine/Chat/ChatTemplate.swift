/// A chat message for a template: role (`system`, `user`, `assistant`) and text.
public struct TemplateMessage: Sendable, Hashable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// How prompts are written: the model file's own Jinja template (`tokenizer.chat_template`,
/// rendered by prs's Jinja interpreter, the default), or one of the formats prs writes itself,
/// chosen by name (`--template`) or used for files without a template.
public enum ChatTemplate: Sendable, Hashable {
    /// The file's template, with the text of its BOS and EOS tokens (`bos_token`, `eos_token`).
    case jinja(JinjaTemplate, bos: String, eos: String)
    /// `<|im_start|>role\ncontent<|im_end|>\n` (SmolLM2, Qwen); the model's default system
    /// prompt, when its template inserts one, is kept.
    case chatML(defaultSystem: String?)
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` after `<|begin_of_text|>`.
    case llama3
    /// `[INST] user [/INST]assistant</s>`, the system text joined to the first user turn.
    case mistral
    /// `<start_of_turn>user\ncontent<end_of_turn>\n`, `model` for the assistant, system text
    /// joined to the first user turn.
    case gemma

    public static let names = ["chatml", "llama3", "mistral", "gemma"]

    public var name: String {
        switch self {
        case .jinja: "jinja"
        case .chatML: "chatml"
        case .llama3: "llama3"
        case .mistral: "mistral"
        case .gemma: "gemma"
        }
    }

    /// The format by name (`chatml`, `llama3`, `mistral`, `gemma`).
    public static func named(_ name: String, defaultSystem: String? = nil) -> ChatTemplate? {
        switch name.lowercased() {
        case "chatml": .chatML(defaultSystem: defaultSystem)
        case "llama3", "llama-3": .llama3
        case "mistral": .mistral
        case "gemma": .gemma
        default: nil
        }
    }

    /// Recognises the format of a Jinja chat template by the markers it writes.
    public static func recognise(_ jinja: String) throws -> ChatTemplate {
        if jinja.contains("<|im_start|>") { return .chatML(defaultSystem: defaultSystemPrompt(jinja)) }
        if jinja.contains("<|start_header_id|>") { return .llama3 }
        if jinja.contains("<start_of_turn>") { return .gemma }
        if jinja.contains("[INST]") { return .mistral }
        throw ChatTemplateError(
            "the model's chat template (tokenizer.chat_template) is not one prs knows; choose one by name with "
                + "--template \(names.joined(separator: "|"))"
        )
    }

    /// The system text a ChatML template inserts when the conversation has none: the literal
    /// between `<|im_start|>system\n` and `<|im_end|>` in the template.
    static func defaultSystemPrompt(_ jinja: String) -> String? {
        guard let start = jinja.range(of: "<|im_start|>system\\n") ?? jinja.range(of: "<|im_start|>system\n") else {
            return nil
        }
        guard let end = jinja[start.upperBound...].range(of: "<|im_end|>") else { return nil }
        let text = String(jinja[start.upperBound..<end.lowerBound])
        // A template that writes a variable here (the user's own system message) has no default.
        if text.contains("{{") || text.contains("{%") || text.contains("'") && text.contains("+") { return nil }
        return text
    }

    /// The prompt text for `messages`, ending with the assistant's turn opened when
    /// `addGenerationPrompt`. Throws when the file's template raises an exception (a role it does
    /// not accept, say) or does something prs's Jinja does not, naming the line and column.
    public func render(_ messages: [TemplateMessage], addGenerationPrompt: Bool = true) throws -> String {
        switch self {
        case .jinja(let t, let bos, let eos):
            let list = JinjaValue.list(
                messages.map { .dict([("role", .string($0.role)), ("content", .string($0.content))]) })
            do {
                return try t.render([
                    "messages": list, "add_generation_prompt": .bool(addGenerationPrompt), "bos_token": .string(bos),
                    "eos_token": .string(eos),
                ])
            } catch { throw ChatTemplateError("the model's chat template (tokenizer.chat_template), \(error)") }
        case .chatML(let defaultSystem):
            var out = ""
            if let defaultSystem, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(defaultSystem)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }
            return out
        case .llama3:
            var out = "<|begin_of_text|>"
            for m in messages {
                out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(m.content.trimmingWhitespace())<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }
            return out
        case .mistral:
            var out = ""
            for m in Self.foldSystem(messages) {
                out += m.role == "user" ? "[INST] \(m.content) [/INST]" : m.content + "</s>"
            }
            return out
        case .gemma:
            var out = "<bos>"
            for m in Self.foldSystem(
                messages.map {
                    $0.role == "system" ? TemplateMessage(role: "system", content: $0.content.trimmingWhitespace()) : $0
                })
            {
                let role = m.role == "assistant" ? "model" : m.role
                out += "<start_of_turn>\(role)\n\(m.content.trimmingWhitespace())<end_of_turn>\n"
            }
            if addGenerationPrompt { out += "<start_of_turn>model\n" }
            return out
        }
    }

    /// Joins a leading system message to the first user message (formats without a system role).
    static func foldSystem(_ messages: [TemplateMessage]) -> [TemplateMessage] {
        guard let first = messages.first, first.role == "system" else { return messages }
        var rest = Array(messages.dropFirst())
        if let i = rest.firstIndex(where: { $0.role == "user" }) {
            rest[i].content = first.content + "\n\n" + rest[i].content
        }
        return rest
    }
}

public struct ChatTemplateError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
