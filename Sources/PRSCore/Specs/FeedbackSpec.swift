import Foundation

/// Where a PRS tree's feedback comes from: the policy critiquing its own draft, the rubric's
/// verifier, or another model.
public enum FeedbackSpec: Sendable, Hashable, CustomStringConvertible {
    case selfFeedback
    case verifier
    case model(PolicySpec)

    /// Parses `self`, `verifier` or `model:POLICY`.
    public static func parse(_ s: String) throws -> FeedbackSpec {
        if s == "self" { return .selfFeedback }
        if s == "verifier" { return .verifier }
        if s.hasPrefix("model:") { return .model(try PolicySpec.parse(String(s.dropFirst("model:".count)))) }
        throw SpecError("feedback \"\(s)\": expected self, verifier or model:POLICY")
    }

    public var description: String {
        switch self {
        case .selfFeedback: "self"
        case .verifier: "verifier"
        case .model(let p): "model:\(p)"
        }
    }
}
