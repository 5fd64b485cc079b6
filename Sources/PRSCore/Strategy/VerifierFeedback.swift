/// Feedback from the constraint checkers instead of a model: the critiques of the constraints
/// the draft fails become the feedback. No generation is spent, so usage is zero.
public struct VerifierFeedback: FeedbackSource {
    public let name = "verifier"
    public init() {}

    public func feedback(on draft: String, for item: PromptItem, seed: UInt64) async throws -> (Generation, SamplingParameters) {
        let critiques = Rubric.check(draft, against: item.preference?.constraints ?? []).compactMap(\.critique)
        let text = critiques.isEmpty
            ? "The draft meets every checkable requirement. Keep all of them and make the answer more helpful."
            : critiques.joined(separator: " ")
        let g = Generation(text: text, finishReason: .stop, usage: .zero, seed: nil, latencyMs: 0)
        return (g, SamplingParameters())
    }
}
