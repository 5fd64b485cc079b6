import Foundation

/// A response to score: the prompt's id and the text.
public struct ResponseRecord: Sendable, Hashable {
    public var id: String
    public var response: String
    /// The 1-based line (or array index + 1) it came from.
    public var line: Int
}

/// Reads responses for `prs score`: JSONL of `{"id","response"}` (`key` is taken for `id`, as
/// IFEval's response files name it), or AlpacaEval-style outputs (`instruction`, `output`,
/// `generator`), as JSONL or one JSON array, matched to prompts by their instruction.
public enum ResponseFileParser {
    /// Every bad line is a problem naming `file:line: field`; `instructionToID` maps a prompt's
    /// instruction (its `prompt` text) to its id, for AlpacaEval-style records.
    public static func parse(
        _ data: Data, file: String, instructionToID: [String: String]
    ) -> (records: [ResponseRecord], problems: [PromptProblem]) {
        var objects: [(Int, JSONValue)] = []
        var problems: [PromptProblem] = []
        let decoder = JSONDecoder()
        let trimmed = data.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        if trimmed.first == UInt8(ascii: "[") {
            do {
                let array = try decoder.decode([JSONValue].self, from: Data(trimmed))
                objects = array.enumerated().map { ($0.offset + 1, $0.element) }
            } catch {
                return (
                    [],
                    [PromptProblem(file: file, line: 1, field: nil, message: "not a JSON array of outputs: \(error)")]
                )
            }
        } else {
            var n = 0
            for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
                n += 1
                if raw.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
                guard let v = try? decoder.decode(JSONValue.self, from: Data(raw)) else {
                    problems.append(PromptProblem(file: file, line: n, field: nil, message: "line is not valid JSON"))
                    continue
                }
                objects.append((n, v))
            }
        }
        var records: [ResponseRecord] = []
        var seen: [String: Int] = [:]
        for (line, value) in objects {
            func problem(_ field: String?, _ message: String) {
                problems.append(PromptProblem(file: file, line: line, field: field, message: message))
            }
            guard case .object(let o) = value else {
                problem(nil, "expected an object, found \(value.typeName)")
                continue
            }
            let id: String
            let text: String
            if let out = o["output"] {
                guard case .string(let s) = out else {
                    problem("output", "expected a string, found \(out.typeName)")
                    continue
                }
                text = s
                if let given = idValue(o["id"]) {
                    id = given
                } else {
                    guard let instruction = o["instruction"]?.stringValue else {
                        problem("instruction", "missing (needed to match an output to its prompt)")
                        continue
                    }
                    guard let match = instructionToID[instruction] else {
                        problem("instruction", "matches no prompt of the prompt file")
                        continue
                    }
                    id = match
                }
            } else {
                guard let r = o["response"] else {
                    problem(
                        "response",
                        "missing (expected {\"id\",\"response\"} or AlpacaEval's {\"instruction\",\"output\"})")
                    continue
                }
                guard case .string(let s) = r else {
                    problem("response", "expected a string, found \(r.typeName)")
                    continue
                }
                text = s
                guard let given = idValue(o["id"]) ?? idValue(o["key"]) else {
                    problem("id", "missing or not a string or integer")
                    continue
                }
                id = given
            }
            if let first = seen[id] {
                problem("id", "duplicate response for \"\(id)\" (first on line \(first))")
                continue
            }
            seen[id] = line
            records.append(ResponseRecord(id: id, response: text, line: line))
        }
        return (records, problems)
    }

    static func idValue(_ v: JSONValue?) -> String? {
        switch v {
        case .string(let s)? where !s.isEmpty: s
        case let v? where v.wholeNumber != nil: String(v.wholeNumber!)
        default: nil
        }
    }
}
