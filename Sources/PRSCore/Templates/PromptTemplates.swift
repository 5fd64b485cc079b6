import Foundation

/// The texts that turn a prompt, a preference, a draft and feedback into chat messages.
///
/// Placeholders: `{prompt}`, `{preference}`, `{draft}`, `{feedback}`. Each template can be
/// replaced from a file; `validate()` checks that it names only known placeholders and the
/// ones its step needs.
public struct PromptTemplates: Sendable, Hashable {
    /// x ⊕ z: the prompt with the user's preference.
    public var conditioned: String
    /// Asks for a critique of the draft against the preference.
    public var feedback: String
    /// Asks for a new answer from the draft and the feedback.
    public var refine: String
    /// Asks for a new answer from the draft alone (PRS without feedback).
    public var refineWithoutFeedback: String
    /// Shown when an item has no preference.
    public var noPreference: String

    public init(
        conditioned: String, feedback: String, refine: String, refineWithoutFeedback: String, noPreference: String
    ) {
        self.conditioned = conditioned
        self.feedback = feedback
        self.refine = refine
        self.refineWithoutFeedback = refineWithoutFeedback
        self.noPreference = noPreference
    }

    public static let standard = PromptTemplates(
        conditioned: "{prompt}\n\nHow I would like the answer: {preference}",
        // The feedback and refinement requests start with the first layer's request (the prompt
        // and the preference, as `conditioned` writes them) and then the draft, so an engine with a
        // prefix cache evaluates that text once for the whole tree.
        feedback: """
            {prompt}

            How I would like the answer: {preference}

            Draft answer:
            {draft}

            You are reviewing the draft answer for the user. In two or three sentences, say where \
            the draft falls short of how the user would like the answer and what exactly should \
            change. Give feedback only; do not write a new answer.
            """,
        refine: """
            {prompt}

            How I would like the answer: {preference}

            Draft answer:
            {draft}

            Feedback on the draft:
            {feedback}

            Write a new, complete answer to the request that applies the feedback and follows \
            how the user would like the answer. Reply with the answer only.
            """,
        refineWithoutFeedback: """
            {prompt}

            How I would like the answer: {preference}

            Draft answer:
            {draft}

            Write a new, complete answer to the request that follows how the user would like the \
            answer more closely than the draft. Reply with the answer only.
            """,
        noPreference: "(no particular preference)"
    )

    public static let placeholders: Set<String> = ["prompt", "preference", "draft", "feedback"]

    /// The placeholders each template must contain.
    static var required: [(name: String, path: KeyPath<PromptTemplates, String>, needs: Set<String>)] {
        [
            ("conditioned", \.conditioned, ["prompt", "preference"]),
            ("feedback", \.feedback, ["draft"]),
            ("refine", \.refine, ["draft", "feedback"]),
            ("refine_nofeedback", \.refineWithoutFeedback, ["draft"]),
        ]
    }

    /// Throws a `ConfigError` naming the template and the placeholder at fault.
    public func validate() throws {
        for (name, path, needs) in Self.required {
            let found = Self.placeholdersIn(self[keyPath: path])
            if let unknown = found.subtracting(Self.placeholders).sorted().first {
                throw ConfigError(
                    "template \(name): unknown placeholder {\(unknown)}; known: {prompt}, {preference}, {draft}, "
                        + "{feedback}"
                )
            }
            if let missing = needs.subtracting(found).sorted().first {
                throw ConfigError("template \(name): must contain {\(missing)}")
            }
        }
    }

    static func placeholdersIn(_ template: String) -> Set<String> {
        var names: Set<String> = []
        var rest = template[...]
        while let open = rest.firstIndex(of: "{") {
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: "}") else { break }
            let name = after[..<close]
            if !name.isEmpty, name.allSatisfy({ $0.isLetter || $0 == "_" }) { names.insert(String(name)) }
            rest = after[after.index(after: close)...]
        }
        return names
    }

    /// Fills placeholders in one pass, so text inside a draft is never re-expanded.
    public static func render(_ template: String, _ values: [String: String]) -> String {
        var out = ""
        var rest = template[...]
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            let after = rest[rest.index(after: open)...]
            if let close = after.firstIndex(of: "}"), let value = values[String(after[..<close])] {
                out += value
                rest = after[after.index(after: close)...]
            } else {
                out.append("{")
                rest = after
            }
        }
        out += rest
        return out
    }

    func preferenceText(_ item: PromptItem) -> String {
        let t = item.preference?.text.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return t.isEmpty ? noPreference : t
    }

    /// x alone (Rand).
    public func plainMessages(_ item: PromptItem) -> [ChatMessage] { [.user(item.prompt)] }

    /// x ⊕ z (PRand, greedy, PRS's first layer). Without a preference, x alone.
    public func conditionedMessages(_ item: PromptItem) -> [ChatMessage] {
        let t = item.preference?.text.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if t.isEmpty { return plainMessages(item) }
        return [.user(Self.render(conditioned, ["prompt": item.prompt, "preference": t]))]
    }

    public func feedbackMessages(_ item: PromptItem, draft: String) -> [ChatMessage] {
        [.user(Self.render(feedback, ["prompt": item.prompt, "preference": preferenceText(item), "draft": draft]))]
    }

    public func refineMessages(_ item: PromptItem, draft: String, feedback: String?) -> [ChatMessage] {
        var values = ["prompt": item.prompt, "preference": preferenceText(item), "draft": draft]
        if let feedback {
            values["feedback"] = feedback
            return [.user(Self.render(refine, values))]
        }
        return [.user(Self.render(refineWithoutFeedback, values))]
    }
}
