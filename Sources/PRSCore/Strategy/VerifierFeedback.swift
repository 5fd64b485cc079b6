/// Feedback from the constraint checkers instead of a model: the critiques of the constraints
/// the draft fails become the feedback. No generation is spent, so usage is zero.
public struct VerifierFeedback: FeedbackSource {
    public let name = "verifier"
    public init() {}

    public func feedback(
        on draft: String, for item: PromptItem, seed: UInt64
    ) async throws -> (Generation, SamplingParameters) {
        let g = Generation(
            text: Self.text(on: draft, for: item), finishReason: .stop, usage: .zero, seed: nil, latencyMs: 0)
        return (g, SamplingParameters())
    }

    /// The feedback's text: the critiques of the constraints `draft` fails.
    public static func text(on draft: String, for item: PromptItem) -> String {
        let critiques = Rubric.check(draft, against: item.preference?.constraints ?? []).compactMap(\.critique)
        return critiques.isEmpty
            ? "The draft meets every checkable requirement. Keep all of them and make the answer more helpful."
            : critiques.joined(separator: " ")
    }
}
