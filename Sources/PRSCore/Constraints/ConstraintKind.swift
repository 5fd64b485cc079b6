/// The constraint kinds prs can check. Ids are IFEval's where IFEval has the instruction;
/// `prs:` marks this project's own. Definitions: docs/constraints.md.
public enum ConstraintKind: String, Sendable, Hashable, Codable, CaseIterable {
    // Length
    case numberWords = "length_constraints:number_words"
    case numberSentences = "length_constraints:number_sentences"
    case numberParagraphs = "length_constraints:number_paragraphs"
    case nthParagraphFirstWord = "length_constraints:nth_paragraph_first_word"
    case paragraphs = "prs:number_paragraphs"
    // Format
    case bulletList = "detectable_format:number_bullet_lists"
    case numberedSteps = "prs:numbered_steps"
    case title = "detectable_format:title"
    case sections = "detectable_format:multiple_sections"
    case markdownSections = "prs:markdown_sections"
    case jsonFormat = "detectable_format:json_format"
    case quotation = "startend:quotation"
    case postscript = "detectable_content:postscript"
    case highlights = "detectable_format:number_highlighted_sections"
    case constrainedResponse = "detectable_format:constrained_response"
    case twoResponses = "combination:two_responses"
    // Content
    case keywordsExist = "keywords:existence"
    case keywordFrequency = "keywords:frequency"
    case forbiddenWords = "keywords:forbidden_words"
    case letterFrequency = "keywords:letter_frequency"
    case startWith = "prs:start_with"
    case endWith = "startend:end_checker"
    case repeatPrompt = "combination:repeat_prompt"
    case placeholders = "detectable_content:number_placeholders"
    case noComma = "punctuation:no_comma"
    case language = "language:response_language"
    // Case
    case lowercase = "change_case:english_lowercase"
    case uppercase = "change_case:english_capital"
    case capitalWords = "change_case:capital_word_frequency"
}
