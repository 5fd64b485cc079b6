import Foundation

/// A template that cannot be parsed or rendered, with its line and column (1-based).
public struct JinjaError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var column: Int
    public var description: String { "chat template line \(line), column \(column): \(message)" }
}

/// The syntax tree of a template: the statements of the subset of Jinja that chat templates use.
indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr)
    case ifBlock([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode])
    case forBlock(
        targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], at: Pos)
    case set(target: [String], attribute: String?, JinjaExpr, at: Pos)
    case setBlock(name: String, body: [JinjaNode])
    case macro(name: String, params: [(String, JinjaExpr?)], body: [JinjaNode])
    case loopBreak(Pos)
    case loopContinue(Pos)

    struct Pos: Sendable {
        var line: Int
        var column: Int
    }
}

indirect enum JinjaExpr: Sendable {
    case literal(JinjaValue)
    case name(String, JinjaNode.Pos)
    case attribute(JinjaExpr, String, JinjaNode.Pos)
    case index(JinjaExpr, JinjaExpr, JinjaNode.Pos)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)], JinjaNode.Pos)
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)], JinjaNode.Pos)
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool, JinjaNode.Pos)
    case unary(String, JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr, JinjaNode.Pos)
    case ternary(JinjaExpr, JinjaExpr, JinjaExpr?)
    case list([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
}

/// Splits a template into text and tags with Jinja2's whitespace rules as transformers sets them
/// (`trim_blocks` and `lstrip_blocks` on; `-` and `+` at a tag's edges), then parses the tags.
struct JinjaParser {
    enum Piece {
        case text(String)
        case output(String, JinjaNode.Pos)
        case statement(String, JinjaNode.Pos)
    }

    enum Token: Equatable {
        case name(String)
        case string(String)
        case int(Int)
        case double(Double)
        case op(String)
        case end
    }

    let source: String
    var pieces: [Piece] = []
    var at = 0

    init(_ source: String) throws(JinjaError) {
        self.source = source
        pieces = try Self.split(source)
    }

    /// Line and column of a character offset.
    static func position(_ chars: [Character], _ offset: Int) -> JinjaNode.Pos {
        var line = 1
        var col = 1
        for c in chars[..<min(offset, chars.count)] {
            if c == "\n" {
                line += 1
                col = 1
            } else {
                col += 1
            }
        }
        return .init(line: line, column: col)
    }

    static func split(_ source: String) throws(JinjaError) -> [Piece] {
        let s = Array(source)
        var out: [Piece] = []
        var text = ""
        var i = 0
        var stripNextWhitespace = false
        var trimNextNewline = false
        /// Ends the text before a tag: all trailing whitespace goes with `-`; with lstrip_blocks,
        /// `lstrip` spaces and tabs go (those between the line's start and a block tag).
        func flush(stripTrailing: Bool, lstrip: Int) {
            var t = text
            if stripTrailing {
                while let last = t.last, last.isWhitespace { t.removeLast() }
            } else {
                var n = lstrip
                while n > 0, let last = t.last, last == " " || last == "\t" {
                    t.removeLast()
                    n -= 1
                }
            }
            if !t.isEmpty { out.append(.text(t)) }
            text = ""
        }
        while i < s.count {
            if s[i] == "{", i + 1 < s.count, s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#" {
                let kind = s[i + 1]
                let start = i
                var j = i + 2
                var minusLeft = false
                var plusLeft = false
                if j < s.count, s[j] == "-" {
                    minusLeft = true
                    j += 1
                } else if j < s.count, s[j] == "+" {
                    plusLeft = true
                    j += 1
                }
                let closer: [Character] = kind == "{" ? ["}", "}"] : kind == "%" ? ["%", "}"] : ["#", "}"]
                // Find the closing delimiter, skipping string literals inside expressions.
                var k = j
                var quote: Character?
                var found = -1
                while k < s.count {
                    let c = s[k]
                    if let q = quote {
                        if c == "\\" {
                            k += 2
                            continue
                        }
                        if c == q { quote = nil }
                    } else if kind != "#", c == "'" || c == "\"" {
                        quote = c
                    } else if c == closer[0], k + 1 < s.count, s[k + 1] == closer[1] {
                        found = k
                        break
                    }
                    k += 1
                }
                guard found >= 0 else {
                    let p = position(s, start)
                    throw JinjaError(
                        message: "the tag opened here is never closed (\(String(closer)))", line: p.line,
                        column: p.column)
                }
                var bodyEnd = found
                var minusRight = false
                var plusRight = false
                if bodyEnd > j, s[bodyEnd - 1] == "-" {
                    minusRight = true
                    bodyEnd -= 1
                } else if bodyEnd > j, s[bodyEnd - 1] == "+" {
                    plusRight = true
                    bodyEnd -= 1
                }
                let isBlock = kind == "%" || kind == "#"
                // Text before the tag: whitespace control of this tag's left edge.
                if stripNextWhitespace { while let f = text.first, f.isWhitespace { text.removeFirst() } }
                if trimNextNewline, text.hasPrefix("\n") {
                    text.removeFirst()
                } else if trimNextNewline, text.hasPrefix("\r\n") {
                    text.removeFirst(2)
                }
                // lstrip_blocks: only spaces and tabs between the line's start and a block tag.
                var lstrip = 0
                if isBlock, !plusLeft, !minusLeft {
                    var b = start - 1
                    while b >= 0, s[b] == " " || s[b] == "\t" { b -= 1 }
                    if b < 0 || s[b] == "\n" { lstrip = start - 1 - b }
                }
                flush(stripTrailing: minusLeft, lstrip: lstrip)
                let body = String(s[j..<bodyEnd])
                let pos = position(s, start)
                switch kind {
                case "{": out.append(.output(body, pos))
                case "%": out.append(.statement(body, pos))
                default: break
                }
                i = found + 2
                stripNextWhitespace = minusRight
                trimNextNewline = isBlock && !minusRight && !plusRight
                continue
            }
            text.append(s[i])
            i += 1
        }
        if stripNextWhitespace { while let f = text.first, f.isWhitespace { text.removeFirst() } }
        if trimNextNewline, text.hasPrefix("\n") { text.removeFirst() }
        if !text.isEmpty { out.append(.text(text)) }
        return out
    }

    // MARK: Statements

    mutating func parse() throws(JinjaError) -> [JinjaNode] {
        let (nodes, end) = try block(until: [])
        if let end { throw JinjaError(message: "unexpected {% \(end.0) %}", line: end.1.line, column: end.1.column) }
        return nodes
    }

    /// Nodes up to one of the statements `until` (returned with its expression tokens), or the end.
    mutating func block(until: Set<String>) throws(JinjaError) -> ([JinjaNode], (String, JinjaNode.Pos, ExprParser)?) {
        var nodes: [JinjaNode] = []
        while at < pieces.count {
            let piece = pieces[at]
            at += 1
            switch piece {
            case .text(let t): nodes.append(.text(t))
            case .output(let body, let pos):
                var p = try ExprParser(body, pos)
                let e = try p.expression()
                try p.expectEnd()
                nodes.append(.output(e))
            case .statement(let body, let pos):
                var p = try ExprParser(body, pos)
                guard case .name(let keyword) = p.peek else { throw p.error("expected a statement name") }
                p.advance()
                if until.contains(keyword) { return (nodes, (keyword, pos, p)) }
                nodes.append(try statement(keyword, &p, pos))
            }
        }
        if !until.isEmpty {
            let p = JinjaParser.position(Array(source), source.count)
            throw JinjaError(
                message: "the template ends inside a block; expected {% \(until.sorted().joined(separator: " or ")) %}",
                line: p.line, column: p.column)
        }
        return (nodes, nil)
    }

    mutating func statement(
        _ keyword: String, _ p: inout ExprParser, _ pos: JinjaNode.Pos
    ) throws(JinjaError) -> JinjaNode {
        switch keyword {
        case "if":
            var branches: [(JinjaExpr, [JinjaNode])] = []
            var cond = try p.expression()
            try p.expectEnd()
            while true {
                let (body, end) = try block(until: ["elif", "else", "endif"])
                branches.append((cond, body))
                guard var (word, _, q) = end else { throw p.error("missing endif") }
                if word == "elif" {
                    cond = try q.expression()
                    try q.expectEnd()
                    continue
                }
                try q.expectEnd()
                if word == "else" {
                    let (otherwise, end2) = try block(until: ["endif"])
                    guard var (_, _, r) = end2 else { throw p.error("missing endif") }
                    try r.expectEnd()
                    return .ifBlock(branches, otherwise: otherwise)
                }
                word = ""
                return .ifBlock(branches, otherwise: [])
            }
        case "for":
            var targets: [String] = []
            repeat {
                guard case .name(let n) = p.peek else { throw p.error("expected a loop variable") }
                targets.append(n)
                p.advance()
            } while p.accept(",")
            guard p.acceptName("in") else { throw p.error("expected 'in'") }
            let iterable = try p.orExpression()
            var filter: JinjaExpr?
            if p.acceptName("if") { filter = try p.orExpression() }
            if p.acceptName("recursive") { throw p.error("recursive loops are not supported") }
            try p.expectEnd()
            let (body, end) = try block(until: ["else", "endfor"])
            guard var (word, _, q) = end else { throw p.error("missing endfor") }
            try q.expectEnd()
            var otherwise: [JinjaNode] = []
            if word == "else" {
                let (o, end2) = try block(until: ["endfor"])
                guard var (_, _, r) = end2 else { throw p.error("missing endfor") }
                try r.expectEnd()
                otherwise = o
            }
            word = ""
            return .forBlock(
                targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, at: pos)
        case "set":
            var targets: [String] = []
            var attribute: String?
            guard case .name(let first) = p.peek else { throw p.error("expected a name to set") }
            p.advance()
            targets.append(first)
            if p.accept(".") {
                guard case .name(let a) = p.peek else { throw p.error("expected an attribute name") }
                p.advance()
                attribute = a
            }
            while p.accept(",") {
                guard case .name(let n) = p.peek else { throw p.error("expected a name to set") }
                p.advance()
                targets.append(n)
            }
            if p.peek == .end {
                guard targets.count == 1, attribute == nil else { throw p.error("a block set takes one name") }
                let (body, end) = try block(until: ["endset"])
                guard var (_, _, q) = end else { throw p.error("missing endset") }
                try q.expectEnd()
                return .setBlock(name: first, body: body)
            }
            guard p.accept("=") else { throw p.error("expected '='") }
            let value = try p.expression(allowTuple: true)
            try p.expectEnd()
            return .set(target: targets, attribute: attribute, value, at: pos)
        case "macro":
            guard case .name(let name) = p.peek else { throw p.error("expected the macro's name") }
            p.advance()
            guard p.accept("(") else { throw p.error("expected '('") }
            var params: [(String, JinjaExpr?)] = []
            if !p.accept(")") {
                repeat {
                    guard case .name(let n) = p.peek else { throw p.error("expected a parameter name") }
                    p.advance()
                    params.append((n, p.accept("=") ? try p.expression() : nil))
                } while p.accept(",")
                guard p.accept(")") else { throw p.error("expected ')'") }
            }
            try p.expectEnd()
            let (body, end) = try block(until: ["endmacro"])
            guard var (_, _, q) = end else { throw p.error("missing endmacro") }
            try q.expectEnd()
            return .macro(name: name, params: params, body: body)
        case "break":
            try p.expectEnd()
            return .loopBreak(pos)
        case "continue":
            try p.expectEnd()
            return .loopContinue(pos)
        case "generation":
            // transformers' {% generation %} marks the assistant's tokens; it renders its body.
            try p.expectEnd()
            let (body, end) = try block(until: ["endgeneration"])
            guard var (_, _, q) = end else { throw p.error("missing endgeneration") }
            try q.expectEnd()
            return .ifBlock([(.literal(.bool(true)), body)], otherwise: [])
        default:
            throw JinjaError(
                message:
                    "the statement {% \(keyword) %} is not in the Jinja subset prs renders (if, for, set, macro, "
                    + "break, continue, generation)",
                line: pos.line, column: pos.column)
        }
    }
}

/// The expression grammar of Jinja2, precedence lowest first: conditional, or, and, not,
/// comparisons (in, not in), `~`, `+ -`, `* / // %`, `**`, unary minus, then primaries with
/// attributes, subscripts, calls, filters (`|`) and tests (`is`).
struct ExprParser {
    var tokens: [(JinjaParser.Token, JinjaNode.Pos)] = []
    var i = 0

    init(_ text: String, _ pos: JinjaNode.Pos) throws(JinjaError) {
        let s = Array(text)
        var k = 0
        func here() -> JinjaNode.Pos {
            var line = pos.line
            var col = pos.column + 2
            for c in s[..<k] {
                if c == "\n" {
                    line += 1
                    col = 1
                } else {
                    col += 1
                }
            }
            return .init(line: line, column: col)
        }
        let ops = [
            "**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "|", ".", ",", ":", "(", ")", "[", "]",
            "{", "}", "=", "<", ">",
        ]
        while k < s.count {
            let c = s[k]
            if c.isWhitespace {
                k += 1
                continue
            }
            let p = here()
            if c.isLetter || c == "_" {
                var j = k
                while j < s.count, s[j].isLetter || s[j].isNumber || s[j] == "_" { j += 1 }
                tokens.append((.name(String(s[k..<j])), p))
                k = j
            } else if c.isNumber {
                var j = k
                while j < s.count, s[j].isNumber || s[j] == "_" { j += 1 }
                var isFloat = false
                if j + 1 < s.count, s[j] == ".", s[j + 1].isNumber {
                    isFloat = true
                    j += 1
                    while j < s.count, s[j].isNumber { j += 1 }
                }
                let digits = String(s[k..<j]).replacingOccurrences(of: "_", with: "")
                tokens.append((isFloat ? .double(Double(digits) ?? 0) : .int(Int(digits) ?? 0), p))
                k = j
            } else if c == "'" || c == "\"" {
                var j = k + 1
                var value = ""
                while j < s.count, s[j] != c {
                    if s[j] == "\\", j + 1 < s.count {
                        j += 1
                        switch s[j] {
                        case "n": value.append("\n")
                        case "t": value.append("\t")
                        case "r": value.append("\r")
                        case "\\": value.append("\\")
                        case "'": value.append("'")
                        case "\"": value.append("\"")
                        default:
                            value.append("\\")
                            value.append(s[j])
                        }
                    } else {
                        value.append(s[j])
                    }
                    j += 1
                }
                guard j < s.count else {
                    throw JinjaError(message: "a string literal is never closed", line: p.line, column: p.column)
                }
                tokens.append((.string(value), p))
                k = j + 1
            } else if let op = ops.first(where: { o in k + o.count <= s.count && String(s[k..<(k + o.count)]) == o }) {
                tokens.append((.op(op), p))
                k += op.count
            } else {
                throw JinjaError(message: "unexpected character '\(c)'", line: p.line, column: p.column)
            }
        }
        tokens.append((.end, here()))
    }

    var peek: JinjaParser.Token { tokens[i].0 }
    var pos: JinjaNode.Pos { tokens[i].1 }
    mutating func advance() { if i < tokens.count - 1 { i += 1 } }

    func error(_ m: String) -> JinjaError { JinjaError(message: m, line: pos.line, column: pos.column) }

    mutating func accept(_ op: String) -> Bool {
        if peek == .op(op) {
            advance()
            return true
        }
        return false
    }

    mutating func acceptName(_ n: String) -> Bool {
        if peek == .name(n) {
            advance()
            return true
        }
        return false
    }

    mutating func expectEnd() throws(JinjaError) {
        guard peek == .end else { throw error("unexpected \(describe(peek)) (expected the end of the tag)") }
    }

    func describe(_ t: JinjaParser.Token) -> String {
        switch t {
        case .name(let n): "'\(n)'"
        case .string(let s): "the string '\(s)'"
        case .int(let v): "\(v)"
        case .double(let v): "\(v)"
        case .op(let o): "'\(o)'"
        case .end: "the end of the tag"
        }
    }

    /// An expression; with `allowTuple`, `a, b` is a list (for `set x, y = …`).
    mutating func expression(allowTuple: Bool = false) throws(JinjaError) -> JinjaExpr {
        let first = try conditional()
        guard allowTuple, peek == .op(",") else { return first }
        var items = [first]
        while accept(",") { items.append(try conditional()) }
        return .list(items)
    }

    mutating func conditional() throws(JinjaError) -> JinjaExpr {
        let value = try orExpression()
        if acceptName("if") {
            let cond = try orExpression()
            let otherwise = acceptName("else") ? try conditional() : nil
            return .ternary(cond, value, otherwise)
        }
        return value
    }

    mutating func orExpression() throws(JinjaError) -> JinjaExpr {
        var e = try andExpression()
        while peek == .name("or") {
            let p = pos
            advance()
            e = .binary("or", e, try andExpression(), p)
        }
        return e
    }

    mutating func andExpression() throws(JinjaError) -> JinjaExpr {
        var e = try notExpression()
        while peek == .name("and") {
            let p = pos
            advance()
            e = .binary("and", e, try notExpression(), p)
        }
        return e
    }

    mutating func notExpression() throws(JinjaError) -> JinjaExpr {
        if acceptName("not") { return .unary("not", try notExpression()) }
        return try comparison()
    }

    mutating func comparison() throws(JinjaError) -> JinjaExpr {
        var e = try concat()
        while true {
            let p = pos
            if case .op(let o) = peek, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                advance()
                e = .binary(o, e, try concat(), p)
            } else if peek == .name("in") {
                advance()
                e = .binary("in", e, try concat(), p)
            } else if peek == .name("not"), i + 1 < tokens.count, tokens[i + 1].0 == .name("in") {
                advance()
                advance()
                e = .unary("not", .binary("in", e, try concat(), p))
            } else {
                return e
            }
        }
    }

    mutating func concat() throws(JinjaError) -> JinjaExpr {
        var e = try sum()
        while peek == .op("~") {
            let p = pos
            advance()
            e = .binary("~", e, try sum(), p)
        }
        return e
    }

    mutating func sum() throws(JinjaError) -> JinjaExpr {
        var e = try product()
        while case .op(let o) = peek, o == "+" || o == "-" {
            let p = pos
            advance()
            e = .binary(o, e, try product(), p)
        }
        return e
    }

    mutating func product() throws(JinjaError) -> JinjaExpr {
        var e = try power()
        while case .op(let o) = peek, ["*", "/", "//", "%"].contains(o) {
            let p = pos
            advance()
            e = .binary(o, e, try power(), p)
        }
        return e
    }

    mutating func power() throws(JinjaError) -> JinjaExpr {
        var e = try unary()
        while peek == .op("**") {
            let p = pos
            advance()
            e = .binary("**", e, try unary(), p)
        }
        return e
    }

    mutating func unary() throws(JinjaError) -> JinjaExpr {
        if accept("-") { return .unary("-", try unary()) }
        if accept("+") { return try unary() }
        var e = try postfix(try primary())
        // Filters and tests bind tighter than arithmetic (Jinja2's parse_filter_expr).
        while true {
            let p = pos
            if accept("|") {
                guard case .name(let f) = peek else { throw error("expected a filter name after '|'") }
                advance()
                var args: [JinjaExpr] = []
                var kwargs: [(String, JinjaExpr)] = []
                if peek == .op("(") { (args, kwargs) = try arguments() }
                e = try postfix(.filter(e, f, args, kwargs, p))
            } else if peek == .name("is") {
                advance()
                let negated = acceptName("not")
                guard case .name(let t) = peek else { throw error("expected a test name after 'is'") }
                advance()
                var args: [JinjaExpr] = []
                if peek == .op("(") {
                    args = try arguments().0
                } else if case .name(let n) = peek, !["and", "or", "if", "else", "is", "in", "not"].contains(n) {
                    args = [try primary()]
                } else if case .string = peek {
                    args = [try primary()]
                } else if case .int = peek {
                    args = [try primary()]
                }
                e = .test(e, t, args, negated: negated, p)
            } else {
                return e
            }
        }
    }

    mutating func arguments() throws(JinjaError) -> ([JinjaExpr], [(String, JinjaExpr)]) {
        guard accept("(") else { throw error("expected '('") }
        var args: [JinjaExpr] = []
        var kwargs: [(String, JinjaExpr)] = []
        if accept(")") { return (args, kwargs) }
        repeat {
            if case .name(let n) = peek, i + 1 < tokens.count, tokens[i + 1].0 == .op("=") {
                advance()
                advance()
                kwargs.append((n, try expression()))
            } else {
                args.append(try expression())
            }
        } while accept(",") && peek != .op(")")
        guard accept(")") else { throw error("expected ')'") }
        return (args, kwargs)
    }

    mutating func postfix(_ base: JinjaExpr) throws(JinjaError) -> JinjaExpr {
        var e = base
        while true {
            let p = pos
            if accept(".") {
                switch peek {
                case .name(let n):
                    advance()
                    e = .attribute(e, n, p)
                case .int(let v):
                    advance()
                    e = .index(e, .literal(.int(v)), p)
                default: throw error("expected an attribute name after '.'")
                }
            } else if peek == .op("[") {
                advance()
                var parts: [JinjaExpr?] = []
                var current: JinjaExpr? = nil
                var isSlice = false
                while peek != .op("]") {
                    if accept(":") {
                        isSlice = true
                        parts.append(current)
                        current = nil
                    } else {
                        current = try expression()
                    }
                }
                advance()
                parts.append(current)
                if isSlice {
                    while parts.count < 3 { parts.append(nil) }
                    e = .slice(e, parts[0], parts[1], parts[2])
                } else {
                    guard let idx = parts[0] else { throw error("an empty subscript") }
                    e = .index(e, idx, p)
                }
            } else if peek == .op("(") {
                let (args, kwargs) = try arguments()
                e = .call(e, args, kwargs, p)
            } else {
                return e
            }
        }
    }

    mutating func primary() throws(JinjaError) -> JinjaExpr {
        let p = pos
        switch peek {
        case .string(var s):
            advance()
            // Adjacent string literals join, as in Python.
            while case .string(let t) = peek {
                s += t
                advance()
            }
            return .literal(.string(s))
        case .int(let v):
            advance()
            return .literal(.int(v))
        case .double(let v):
            advance()
            return .literal(.double(v))
        case .name(let n):
            advance()
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n, p)
            }
        case .op("("):
            advance()
            if accept(")") { return .list([]) }
            let e = try expression()
            if peek == .op(",") {
                var items = [e]
                while accept(",") && peek != .op(")") { items.append(try expression()) }
                guard accept(")") else { throw error("expected ')'") }
                return .list(items)
            }
            guard accept(")") else { throw error("expected ')'") }
            return e
        case .op("["):
            advance()
            var items: [JinjaExpr] = []
            while !accept("]") {
                items.append(try expression())
                if !accept(",") {
                    guard accept("]") else { throw error("expected ']' or ','") }
                    break
                }
            }
            return .list(items)
        case .op("{"):
            advance()
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !accept("}") {
                let k = try expression()
                guard accept(":") else { throw error("expected ':' in a dict literal") }
                pairs.append((k, try expression()))
                if !accept(",") {
                    guard accept("}") else { throw error("expected '}' or ','") }
                    break
                }
            }
            return .dict(pairs)
        default:
            throw error("unexpected \(describe(peek))")
        }
    }
}
