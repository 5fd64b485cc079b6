/// A machine-checkable part of a preference: an instruction id (IFEval's where IFEval has the
/// same instruction, `prs:…` otherwise) and its keyword arguments, kept as given.
///
/// On disk a constraint is one flat JSON object: `{"id": "length_constraints:number_words",
/// "num_words": 80, "relation": "less than"}`. `Constraint(json:)` checks the id and the
/// arguments the kind needs, so a bad prompt file fails when it is read, not mid-run.
public struct Constraint: Sendable, Hashable, Codable {
    public let id: String
    public let kind: ConstraintKind
    /// The keyword arguments, without `id`.
    public let arguments: [String: JSONValue]
    /// The arguments read and typed once, when the constraint is made.
    let check: Check

    /// Reads and checks one constraint object.
    public init(json: JSONValue) throws(ConstraintError) {
        guard case .object(var fields) = json else {
            throw ConstraintError(field: nil, message: "expected an object, found \(json.typeName)")
        }
        guard let id = fields.removeValue(forKey: "id")?.stringValue else {
            throw ConstraintError(field: "id", message: "missing or not a string")
        }
        guard let kind = ConstraintKind(rawValue: id) else {
            throw ConstraintError(
                field: "id",
                message:
                    "unknown instruction id \"\(id)\"; known: "
                    + "\(ConstraintKind.allCases.map(\.rawValue).joined(separator: ", "))"
            )
        }
        self.id = id
        self.kind = kind
        self.arguments = fields.filter { $0.value != .null }
        self.check = try Check(kind: kind, arguments: arguments)
    }

    public init(from decoder: any Decoder) throws {
        let value = try JSONValue(from: decoder)
        do { try self.init(json: value) } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var object = arguments
        object["id"] = .string(id)
        try JSONValue.object(object).encode(to: encoder)
    }
}

/// What is wrong with a constraint object: the field at fault and the problem.
public struct ConstraintError: Error, Sendable, Hashable, CustomStringConvertible {
    public var field: String?
    public var message: String
    public init(field: String?, message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { field.map { "\($0): \(message)" } ?? message }
}

/// How a count is compared with its target. IFEval has `less than` and `at least`; prs adds
/// `at most`, `exactly` and `more than`.
public enum Relation: String, Sendable, Hashable, CaseIterable {
    case lessThan = "less than"
    case atMost = "at most"
    case exactly
    case atLeast = "at least"
    case moreThan = "more than"

    public func holds(_ count: Int, _ target: Int) -> Bool {
        switch self {
        case .lessThan: count < target
        case .atMost: count <= target
        case .exactly: count == target
        case .atLeast: count >= target
        case .moreThan: count > target
        }
    }

    /// Partial credit: 1 when the relation holds, otherwise 1 minus the distance to the
    /// nearest count that satisfies it, relative to the target, floored at 0.
    public func score(_ count: Int, _ target: Int) -> Double {
        if holds(count, target) { return 1 }
        let distance: Int
        switch self {
        case .lessThan: distance = count - (target - 1)
        case .atMost: distance = count - target
        case .exactly: distance = abs(count - target)
        case .atLeast: distance = target - count
        case .moreThan: distance = target + 1 - count
        }
        return max(0, 1 - Double(distance) / Double(max(target, 1)))
    }
}

/// The result of checking one constraint on one response.
public struct ConstraintOutcome: Sendable, Hashable, Codable {
    public var id: String
    /// Graded score in [0, 1]; 1 exactly when the constraint is followed.
    public var score: Double
    public var follow: Bool
    /// A short sentence saying what is wrong, when it is not followed.
    public var critique: String?

    public init(id: String, score: Double, follow: Bool, critique: String?) {
        self.id = id
        self.score = score
        self.follow = follow
        self.critique = critique
    }
}
