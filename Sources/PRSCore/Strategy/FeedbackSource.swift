/// Writes feedback `f` on a draft answer against the user's preference.
public protocol FeedbackSource: Sendable {
    /// Recorded with the run: `self`, or the model that writes feedback.
    var name: String { get }
    /// One feedback generation on `draft`, seeded with `seed`, and the parameters it used.
    func feedback(on draft: String, for item: PromptItem, seed: UInt64) async throws -> (Generation, SamplingParameters)
}

/// Feedback written by a text generator (the policy itself, or a second model) from the feedback template.
public struct GeneratorFeedback: FeedbackSource {
    public let generator: any TextGenerator
    public let templates: PromptTemplates
    public let parameters: SamplingParameters
    public let name: String

    public init(
        generator: any TextGenerator, templates: PromptTemplates, parameters: SamplingParameters, name: String = "self"
    ) {
        self.generator = generator
        self.templates = templates
        self.parameters = parameters
        self.name = name
    }

    public func feedback(
        on draft: String, for item: PromptItem, seed: UInt64
    ) async throws -> (Generation, SamplingParameters) {
        var p = parameters
        p.seed = seed
        let out = try await generator.generate(
            GenerationRequest(messages: templates.feedbackMessages(item, draft: draft), n: 1, parameters: p))
        guard let first = out.first else { throw SamplerError.wrongCount(asked: 1, got: 0) }
        p.seed = first.seed ?? seed
        return (first, p)
    }
}
