import Foundation
import LMEngine
import Testing

struct GoldenChat: Decodable, Sendable, CustomTestStringConvertible {
    struct M: Decodable, Sendable {
        var role: String
        var content: String
    }
    var messages: [M]
    var text: String
    var testDescription: String { messages.map(\.role).joined(separator: ",") }

    static let all: [GoldenChat] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Fixtures/smollm2-chat.json")
        return (try? JSONDecoder().decode([GoldenChat].self, from: Data(contentsOf: url))) ?? []
    }()
}

/// The golden chats exist: without them the parameterised test below would run zero cases, green.
@Test func theGoldenChatsAreThere() {
    #expect(
        GoldenChat.all.count >= 3,
        "Fixtures/smollm2-chat.json is missing or nearly empty: \(GoldenChat.all.count) chats")
}

@Suite struct ChatTemplateTests {
    /// Rendered by the model's own Jinja template (scripts/reference/chat_render.py).
    @Test(arguments: GoldenChat.all)
    func rendersAsTheModelsOwnTemplate(golden: GoldenChat) throws {
        let file = try SmolLM2.file.get()
        let template = try ChatTemplate.recognise(try #require(file.content["tokenizer.chat_template"]?.string))
        #expect(
            template == .chatML(defaultSystem: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"))
        #expect(
            try template.render(golden.messages.map { TemplateMessage(role: $0.role, content: $0.content) })
                == golden.text)
        // By default the file's own template is rendered (prs's Jinja), and it writes the same.
        let own = try ChatTemplate.of(try ReferenceEqualityTests.model.get())
        guard case .jinja = own else {
            Issue.record("the file's template is not used by default: \(own.name)")
            return
        }
        #expect(
            try own.render(golden.messages.map { TemplateMessage(role: $0.role, content: $0.content) }) == golden.text)
    }

    /// A template that raises (a role it refuses) fails the rendering with its message, line and column.
    @Test func aTemplateThatRaisesSaysWhy() throws {
        let t = ChatTemplate.jinja(
            try JinjaTemplate(
                "{% for m in messages %}{% if m.role == 'tool' %}\n{{ raise_exception('no tools here') }}{% endif "
                    + "%}{{ m.content }}{% endfor %}"
            ),
            bos: "<s>", eos: "</s>")
        #expect(try t.render([TemplateMessage(role: "user", content: "hi")]) == "hi")
        #expect { try t.render([TemplateMessage(role: "tool", content: "x")]) } throws: {
            let d = String(describing: $0)
            return d.contains("no tools here") && d.contains("line 2")
        }
    }

    @Test func recognisesTheCommonFormats() throws {
        #expect(try ChatTemplate.recognise("{{ '<|start_header_id|>' + message['role'] }}") == .llama3)
        #expect(try ChatTemplate.recognise("{{ '[INST] ' + message['content'] + ' [/INST]' }}") == .mistral)
        #expect(try ChatTemplate.recognise("{{ '<start_of_turn>' + role }}") == .gemma)
        #expect(
            try ChatTemplate.recognise("{% for m in messages %}{{'<|im_start|>' + m['role'] }}{% endfor %}")
                == .chatML(defaultSystem: nil))
    }

    @Test func anUnknownTemplateSaysHowToChoose() {
        #expect { try ChatTemplate.recognise("{{ messages }}") } throws: {
            String(describing: $0).contains("--template chatml|llama3|mistral|gemma")
        }
    }

    @Test func rendersEachFormat() throws {
        let m = [TemplateMessage(role: "system", content: "Be brief."), TemplateMessage(role: "user", content: "Hi")]
        #expect(
            try ChatTemplate.llama3.render(m)
                == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe "
                + "brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        )
        #expect(try ChatTemplate.mistral.render(m) == "[INST] Be brief.\n\nHi [/INST]")
        #expect(
            try ChatTemplate.gemma.render(m)
                == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n")
        #expect(ChatTemplate.named("CHATML") == .chatML(defaultSystem: nil))
        #expect(ChatTemplate.named("vicuna") == nil)
    }

    /// Gemma 3's file has no template: the architecture's format is used, the prompt starts with
    /// one BOS, and the system text is folded into the first user turn as llama.cpp's gemma format does.
    @Test func gemmaFilesWithoutATemplateUseTheArchitecturesFormat() throws {
        let model = try Gemma3.model.get()
        #expect(model.file.content["tokenizer.chat_template"] == nil)
        let t = try ChatTemplate.of(model)
        #expect(t == .gemma)
        let ids = try t.promptTokens(
            [TemplateMessage(role: "system", content: " Be brief.  "), TemplateMessage(role: "user", content: "Hi ")],
            tokenizer: model.tokenizer)
        #expect(ids.first == 2 && ids.dropFirst().first != 2, "one BOS")
        #expect(
            model.tokenizer.decode(ids, special: true)
                == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n")
        #expect(ChatTemplate.forArchitecture("llama") == nil)
    }

    /// A model with neither a template nor a known architecture format names the file and the option.
    @Test func noTemplateAndNoneGivenIsAClearError() throws {
        let path = try TinySentencePieceTests.path.get()
        let model = try LlamaModel(path: path)
        #expect { try ChatTemplate.of(model) } throws: {
            let d = String(describing: $0)
            return d.contains(path) && d.contains("no chat template in the file")
                && d.contains("--template chatml|llama3|mistral|gemma")
        }
        #expect(try ChatTemplate.of(model, named: "gemma") == .gemma)
    }
}
