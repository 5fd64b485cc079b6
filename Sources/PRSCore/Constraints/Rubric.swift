/// Checking a response against its constraints, strictly or loosely (IFEval's two accuracies).
public enum Rubric {
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// The response as it is.
        case strict
        /// IFEval's loose variant: followed if any of eight variants of the response is (the
        /// response with its first line, last line or both removed, each with and without `*`);
        /// the score is the best variant's.
        case loose
    }

    /// One outcome per constraint, in order.
    public static func check(
        _ response: String, against constraints: [Constraint], mode: Mode = .strict
    ) -> [ConstraintOutcome] {
        let variants = mode == .strict ? [response] : looseVariants(response)
        return constraints.map { c in
            let check = c.check
            var best: (score: Double, critique: String?) = (-1, nil)
            for v in variants where !v.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty || mode == .strict {
                let r = check.evaluate(v)
                if r.score > best.score { best = r }
                if r.score == 1 { break }
            }
            if best.score < 0 { best = check.evaluate(response) }
            return ConstraintOutcome(id: c.id, score: best.score, follow: best.score == 1, critique: best.critique)
        }
    }

    static func looseVariants(_ response: String) -> [String] {
        let lines = response.split(separator: "\n", omittingEmptySubsequences: false)
        func join(_ s: ArraySlice<Substring>) -> String {
            s.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let removeFirst = join(lines.dropFirst())
        let removeLast = join(lines.dropLast())
        let removeBoth = join(lines.dropFirst().dropLast())
        let base = [response, removeFirst, removeLast, removeBoth]
        return base + base.map { $0.replacingOccurrences(of: "*", with: "") }
    }
}

extension Constraint {
    /// The constraint as an instruction to the writer, e.g. "Answer in less than 80 words."
    public var instruction: String { check.instruction }

    /// Checks one response strictly.
    public func check(_ response: String) -> ConstraintOutcome {
        Rubric.check(response, against: [self])[0]
    }
}

extension Preference {
    /// The preference's constraints rendered as instructions, for preferences given without words.
    public static func text(for constraints: [Constraint]) -> String {
        constraints.map(\.instruction).joined(separator: " ")
    }
}
