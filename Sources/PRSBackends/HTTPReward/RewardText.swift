import LMEngine
import PRSCore

/// What a reward model reads for one scored response.
public enum RewardText {
    /// The user's turn: the prompt, with the preference appended as the policy saw it
    /// (`PromptTemplates.standard.conditioned`), so the reward judges the response against both.
    static func userTurn(_ input: RewardInput) -> String {
        let item = PromptItem(id: "", instruction: input.prompt, preference: input.preference)
        return PromptTemplates.standard.conditionedMessages(item).map(\.content).joined(separator: "\n\n")
    }

    /// The conversation: the user's turn, then the response as the assistant's.
    static func messages(_ input: RewardInput) -> [ChatMessage] {
        [.user(userTurn(input)), .assistant(input.response)]
    }

    /// One string: the conversation rendered with `template` (`chat`), or the user's turn and the
    /// response joined by a blank line (`raw`).
    public static func text(
        _ input: RewardInput, _ format: HTTPRewardSpec.TextFormat, _ template: ChatTemplate
    ) throws -> String {
        switch format {
        case .raw: userTurn(input) + "\n\n" + input.response
        case .chat: try template.render(messages(input).map(Self.templateMessage), addGenerationPrompt: false)
        }
    }

    /// The prompt part of `text`: what comes before the response.
    public static func promptText(
        _ input: RewardInput, _ format: HTTPRewardSpec.TextFormat, _ template: ChatTemplate
    ) throws -> String {
        switch format {
        case .raw: userTurn(input)
        case .chat: try template.render([templateMessage(.user(userTurn(input)))], addGenerationPrompt: true)
        }
    }

    static func templateMessage(_ m: ChatMessage) -> TemplateMessage {
        TemplateMessage(role: m.role.rawValue, content: m.content)
    }
}
