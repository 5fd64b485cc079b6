import Foundation
import GGUF
import LMEngine
import Testing

/// prs's Jinja renderer against Python's Jinja2 set up as transformers renders chat templates
/// (scripts/reference/jinja_render.py): the project's own corpus of templates, one or more
/// features each (Tests/LMEngineTests/Fixtures/jinja), and the template of every GGUF the project
/// has, on message lists with and without a system turn, several turns, empty content and
/// unicode, the generation prompt on and off. Outputs must be equal byte for byte.
@Suite(.serialized) struct JinjaTests {
    static let corpus = SmolLM2.root.appendingPathComponent("Tests/LMEngineTests/Fixtures/jinja")

    static let conversations: [[(String, String)]] = [
        [("user", "Why is the sky blue?")],
        [("system", "Answer briefly."), ("user", "Name a prime.")],
        [("user", "Hi"), ("assistant", "Hello! How can I help?"), ("user", "Tell me a joke.\nA short one.")],
        [("user", "")],
        [("system", "Sé breve. 日本語で 🎉"), ("user", "Ünïcödé — “quotes” and 'single' \\ backslash")],
        [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d"), ("user", "e"), ("assistant", "f")],
    ]

    /// Every template of the corpus and of the project's models, by name.
    static func templates() throws -> [(String, String)] {
        let files = try FileManager.default.contentsOfDirectory(atPath: corpus.path).filter { $0.hasSuffix(".jinja") }
            .sorted()
        var out = try files.map { ($0, try String(contentsOf: corpus.appendingPathComponent($0), encoding: .utf8)) }
        let models = try FileManager.default.contentsOfDirectory(
            atPath: SmolLM2.root.appendingPathComponent("models").path
        ).filter { $0.hasSuffix(".gguf") }
        for m in models.sorted() {
            let f = try GGUFFile(path: SmolLM2.root.appendingPathComponent("models/\(m)").path)
            if let t = f.content["tokenizer.chat_template"]?.string { out.append((m, t)) }
        }
        return out
    }

    /// The context of one rendering (the messages' keys in order: role, then content).
    static func context(_ conv: [(String, String)], generation: Bool) -> JinjaValue {
        let messages = JinjaValue.list(conv.map { .dict([("role", .string($0.0)), ("content", .string($0.1))]) })
        return .dict([
            ("messages", messages), ("add_generation_prompt", .bool(generation)), ("bos_token", .string("<s>")),
            ("eos_token", .string("</s>")),
        ])
    }

    /// Jinja2's renderings of (template, context) pairs; the JSON is written with the dicts' key order kept.
    static func jinja2(_ cases: [(String, JinjaValue)]) throws -> [[String: String]] {
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("prs-jinja-\(UUID()).json")
        defer { try? FileManager.default.removeItem(at: input) }
        let json =
            "["
            + cases.map { JinjaValue.dict([("template", .string($0.0)), ("context", $0.1)]).json(indent: nil) }.joined(
                separator: ",\n") + "]"
        try Data(json.utf8).write(to: input)
        let data = try RopeScalingTests.python("scripts/reference/jinja_render.py", ["--input", input.path])
        return try JSONDecoder().decode([[String: String]].self, from: data)
    }

    @Test func rendersAsJinja2ByteForByte() throws {
        let templates = try Self.templates()
        #expect(templates.count >= 13, "the corpus and at least SmolLM2's template: \(templates.map(\.0))")
        var cases: [(String, JinjaValue)] = []
        var ours: [(String, Result<String, JinjaError>)] = []
        for (name, source) in templates {
            let template: JinjaTemplate
            do { template = try JinjaTemplate(source) } catch {
                Issue.record("\(name) does not parse: \(error)")
                continue
            }
            for (i, conv) in Self.conversations.enumerated() {
                for generation in [true, false] {
                    let context = Self.context(conv, generation: generation)
                    guard case .dict(let pairs) = context else { continue }
                    cases.append((source, context))
                    let label = "\(name), conversation \(i), add_generation_prompt \(generation)"
                    ours.append(
                        (
                            label,
                            Result { () throws(JinjaError) in
                                try template.render(Dictionary(uniqueKeysWithValues: pairs))
                            }
                        ))
                }
            }
        }
        let theirs = try Self.jinja2(cases)
        #expect(theirs.count == ours.count && ours.count >= 13 * 12)
        var equal = 0
        for ((label, mine), reference) in zip(ours, theirs) {
            switch (mine, reference["text"]) {
            case (.success(let a), .some(let b)):
                if a == b {
                    equal += 1
                } else {
                    Issue.record(
                        "\(label): prs rendered\n\(a.debugDescription)\nJinja2 rendered\n\(b.debugDescription)")
                }
            case (.failure, .none): equal += 1
            case (.failure(let e), .some): Issue.record("\(label): prs failed (\(e)); Jinja2 rendered it")
            case (.success(let a), .none):
                Issue.record(
                    "\(label): Jinja2 failed (\(reference["error"] ?? "")); prs rendered \(a.debugDescription)")
            }
        }
        #expect(equal == ours.count, "\(equal) of \(ours.count) renderings equal Jinja2's")
    }

    /// A construct outside the subset is refused when the template is read, naming it and where.
    @Test func constructsOutsideTheSubsetAreRefusedByName() {
        let cases: [(String, String)] = [
            ("{% include 'other.jinja' %}", "{% include %}"),
            ("hi\n  {% filter upper %}x{% endfilter %}", "line 2"),
            ("{{ messages | wordwrap(10) }}", "|wordwrap"),
            ("{% if x is sameas y %}{% endif %}", "is sameas"),
            ("{{ x ", "never closed"),
            ("{% for m in messages %}", "endfor"),
            ("{{ 'a' + }}", "unexpected"),
        ]
        for (source, expected) in cases {
            do {
                _ = try JinjaTemplate(source)
                Issue.record("\(source.debugDescription) was accepted")
            } catch {
                #expect(
                    error.description.contains(expected) && error.description.contains("line"),
                    "\(source.debugDescription): \(error)")
            }
        }
    }
}
