import Foundation

/// A problem with one line of a prompt file, printed as `file:line: field: problem`.
public struct PromptProblem: Sendable, Hashable, Error, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var field: String?
    public var message: String

    public init(file: String, line: Int, field: String?, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field { return "\(file):\(line): \(field): \(message)" }
        return "\(file):\(line): \(message)"
    }
}

/// A prompt file read into items, with the lines that could not be read.
public struct PromptSet: Sendable {
    public var items: [PromptItem]
    public var problems: [PromptProblem]
    /// The line each item came from (1-based), by item id.
    public var lineByID: [String: Int]
}

/// Reads JSONL prompt files: prs's own format
/// `{"id","instruction","input"?,"preference"?,"category"?,"constraints"?}` and
/// IFEval's (`key`, `prompt`, `instruction_id_list`, `kwargs`).
///
/// An item without `id` gets its 1-based line number as id, so a file without ids
/// still names its items stably. Other keys are kept as metadata.
public enum PromptFileParser {
    static let ownKeys: Set<String> = ["id", "instruction", "input", "preference", "category", "constraints"]
    static let ifevalKeys: Set<String> = ["key", "prompt", "instruction_id_list", "kwargs"]

    /// Parses `data` (the bytes of `file`, named in problems); never throws, every bad line is a problem.
    public static func parse(_ data: Data, file: String) -> PromptSet {
        var items: [PromptItem] = []
        var problems: [PromptProblem] = []
        var lineByID: [String: Int] = [:]
        let decoder = JSONDecoder()
        var lineNumber = 0
        for rawLine in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Data(rawLine)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let object: [String: JSONValue]
            do {
                object = try decoder.decode([String: JSONValue].self, from: line)
            } catch {
                let what =
                    (try? decoder.decode(JSONValue.self, from: line)).map {
                        "line is \($0.typeName), not a JSON object"
                    }
                    ?? "line is not valid JSON"
                problems.append(PromptProblem(file: file, line: lineNumber, field: nil, message: what))
                continue
            }
            let result =
                object["prompt"] != nil && object["instruction"] == nil
                ? ifevalItem(object, line: lineNumber, file: file)
                : ownItem(object, line: lineNumber, file: file)
            switch result {
            case .failure(let problem):
                problems.append(problem)
            case .success(let item):
                if let first = lineByID[item.id] {
                    problems.append(
                        PromptProblem(
                            file: file, line: lineNumber, field: "id",
                            message: "duplicate id \"\(item.id)\" (first used on line \(first))"))
                    continue
                }
                lineByID[item.id] = lineNumber
                items.append(item)
            }
        }
        return PromptSet(items: items, problems: problems, lineByID: lineByID)
    }

    private static func ownItem(_ o: [String: JSONValue], line: Int, file: String) -> Result<PromptItem, PromptProblem>
    {
        func problem(_ field: String, _ message: String) -> Result<PromptItem, PromptProblem> {
            .failure(PromptProblem(file: file, line: line, field: field, message: message))
        }
        let id: String
        switch o["id"] {
        case nil, .null?: id = String(line)
        case .string(let s)? where !s.isEmpty: id = s
        case .string?: return problem("id", "is empty")
        case let v? where v.wholeNumber != nil: id = String(v.wholeNumber!)
        case let v?: return problem("id", "expected a string or an integer, found \(v.typeName)")
        }
        guard let instructionValue = o["instruction"] else { return problem("instruction", "missing") }
        guard case .string(let instruction) = instructionValue else {
            return problem("instruction", "expected a string, found \(instructionValue.typeName)")
        }
        if instruction.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            return problem("instruction", "is empty")
        }
        var input: String?
        if let v = o["input"], v != .null {
            guard case .string(let s) = v else { return problem("input", "expected a string, found \(v.typeName)") }
            input = s
        }
        var category: String?
        if let v = o["category"], v != .null {
            guard case .string(let s) = v else { return problem("category", "expected a string, found \(v.typeName)") }
            category = s
        }
        var constraints: [Constraint]?
        if let v = o["constraints"], v != .null {
            guard case .array(let a) = v else {
                return problem("constraints", "expected an array, found \(v.typeName)")
            }
            var parsed: [Constraint] = []
            for (i, c) in a.enumerated() {
                do { parsed.append(try Constraint(json: c)) } catch {
                    return problem("constraints[\(i)]" + (error.field.map { "." + $0 } ?? ""), error.message)
                }
            }
            constraints = parsed
        }
        var preference: Preference?
        if let v = o["preference"], v != .null {
            guard case .string(let s) = v else {
                return problem("preference", "expected a string, found \(v.typeName)")
            }
            preference = Preference(text: s, category: category, constraints: constraints)
        } else if category != nil || constraints != nil {
            // Constraints without words: their instructions become the preference's words.
            preference = Preference(
                text: Preference.text(for: constraints ?? []), category: category, constraints: constraints)
        }
        let metadata = o.filter { !ownKeys.contains($0.key) }
        return .success(
            PromptItem(id: id, instruction: instruction, input: input, preference: preference, metadata: metadata))
    }

    private static func ifevalItem(
        _ o: [String: JSONValue], line: Int, file: String
    ) -> Result<PromptItem, PromptProblem> {
        func problem(_ field: String, _ message: String) -> Result<PromptItem, PromptProblem> {
            .failure(PromptProblem(file: file, line: line, field: field, message: message))
        }
        let id: String
        switch o["key"] {
        case let v? where v.wholeNumber != nil: id = String(v.wholeNumber!)
        case .string(let s)? where !s.isEmpty: id = s
        case nil: return problem("key", "missing")
        case let v?: return problem("key", "expected an integer or a string, found \(v.typeName)")
        }
        guard case .string(let prompt)? = o["prompt"] else {
            return problem("prompt", "expected a string, found \(o["prompt"]?.typeName ?? "nothing")")
        }
        var ids: [String] = []
        if let v = o["instruction_id_list"] {
            guard case .array(let a) = v else {
                return problem("instruction_id_list", "expected an array, found \(v.typeName)")
            }
            for (i, e) in a.enumerated() {
                guard case .string(let s) = e else {
                    return problem("instruction_id_list[\(i)]", "expected a string, found \(e.typeName)")
                }
                ids.append(s)
            }
        }
        var kwargs: [JSONValue] = []
        if let v = o["kwargs"] {
            guard case .array(let a) = v else { return problem("kwargs", "expected an array, found \(v.typeName)") }
            kwargs = a
        }
        if !kwargs.isEmpty && kwargs.count != ids.count {
            return problem("kwargs", "has \(kwargs.count) entries but instruction_id_list has \(ids.count)")
        }
        var constraints: [Constraint] = []
        for (i, cid) in ids.enumerated() {
            var fields: [String: JSONValue] = [:]
            if i < kwargs.count {
                guard case .object(let k) = kwargs[i] else {
                    return problem("kwargs[\(i)]", "expected an object, found \(kwargs[i].typeName)")
                }
                fields = k.filter { $0.value != .null }
            }
            fields["id"] = .string(cid)
            do { constraints.append(try Constraint(json: .object(fields))) } catch {
                let field =
                    error.field == "id"
                    ? "instruction_id_list[\(i)]" : "kwargs[\(i)]" + (error.field.map { "." + $0 } ?? "")
                return problem(field, error.message)
            }
        }
        let preference =
            constraints.isEmpty
            ? nil
            : Preference(text: Preference.text(for: constraints), category: nil, constraints: constraints)
        let metadata = o.filter { !ifevalKeys.contains($0.key) }
        return .success(PromptItem(id: id, instruction: prompt, input: nil, preference: preference, metadata: metadata))
    }
}
