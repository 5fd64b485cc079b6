/// A user's preference `z`: what they want of an answer, in words.
public struct Preference: Sendable, Hashable, Codable {
    /// The preference in natural language, e.g. "concise, with one analogy".
    public var text: String
    /// A label for grouping results, e.g. "concise" or "humorous".
    public var category: String?
    /// Machine-checkable constraints (see `Constraint`), checked by the rubric reward and the verifier.
    public var constraints: [Constraint]?

    public init(text: String, category: String? = nil, constraints: [Constraint]? = nil) {
        self.text = text
        self.category = category
        self.constraints = constraints
    }
}

/// One prompt `x` of a prompt set, with the preference `z` it should be answered under.
public struct PromptItem: Sendable, Hashable, Codable, Identifiable {
    public var id: String
    public var instruction: String
    /// Optional context appended to the instruction, Alpaca-style.
    public var input: String?
    public var preference: Preference?
    public var metadata: [String: JSONValue]

    public init(
        id: String, instruction: String, input: String? = nil,
        preference: Preference? = nil, metadata: [String: JSONValue] = [:]
    ) {
        self.id = id
        self.instruction = instruction
        self.input = input
        self.preference = preference
        self.metadata = metadata
    }

    /// The prompt `x` as the model sees it: the instruction, then the input after a blank line.
    public var prompt: String {
        guard let input, !input.isEmpty else { return instruction }
        return instruction + "\n\n" + input
    }
}
