import Foundation

/// A chat template in Jinja, parsed once and rendered as transformers renders it (Jinja2 with
/// `trim_blocks` and `lstrip_blocks`, loop controls, `tojson` as `json.dumps(ensure_ascii=False)`,
/// `raise_exception` and `strftime_now`). The subset covers what chat templates use; anything
/// else is refused when the template is parsed, naming the construct and its line and column.
public struct JinjaTemplate: Sendable, Hashable {
    public let source: String
    let nodes: [JinjaNode]

    public init(_ source: String) throws(JinjaError) {
        self.source = source
        // Jinja2 drops the template's last newline (keep_trailing_newline is off).
        var body = source
        if body.hasSuffix("\n") { body.removeLast() }
        var p = try JinjaParser(body)
        nodes = try p.parse()
        try Self.check(nodes)
    }

    static let filters: Set<String> = [
        "trim", "upper", "lower", "title", "capitalize", "replace", "string", "safe", "length", "count", "first",
        "last", "default", "d",
        "join", "tojson", "list", "items", "int", "float", "abs", "reverse", "unique", "indent", "map", "select",
        "reject", "selectattr",
        "rejectattr", "round", "wordcount",
    ]
    static let tests: Set<String> = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false", "mapping",
        "sequence",
        "iterable", "callable", "odd", "even", "divisibleby", "eq", "equalto", "==", "ne", "!=", "in", "lower", "upper",
    ]

    /// Refuses filters and tests outside the subset when the template is read, naming them and where.
    static func check(_ nodes: [JinjaNode]) throws(JinjaError) {
        func expr(_ e: JinjaExpr) throws(JinjaError) {
            switch e {
            case .literal, .name: break
            case .attribute(let b, _, _): try expr(b)
            case .index(let b, let i, _):
                try expr(b)
                try expr(i)
            case .slice(let b, let x, let y, let z):
                try expr(b)
                for p in [x, y, z] { if let p { try expr(p) } }
            case .call(let f, let a, let kw, _):
                try expr(f)
                for x in a { try expr(x) }
                for (_, x) in kw { try expr(x) }
            case .filter(let b, let name, let a, let kw, let pos):
                guard filters.contains(name) else {
                    throw JinjaError(
                        message: "the filter |\(name) is not in the Jinja subset prs renders", line: pos.line,
                        column: pos.column)
                }
                try expr(b)
                for x in a { try expr(x) }
                for (_, x) in kw { try expr(x) }
            case .test(let b, let name, let a, _, let pos):
                guard tests.contains(name) else {
                    throw JinjaError(
                        message: "the test 'is \(name)' is not in the Jinja subset prs renders", line: pos.line,
                        column: pos.column)
                }
                try expr(b)
                for x in a { try expr(x) }
            case .unary(_, let x): try expr(x)
            case .binary(_, let a, let b, _):
                try expr(a)
                try expr(b)
            case .ternary(let c, let a, let b):
                try expr(c)
                try expr(a)
                if let b { try expr(b) }
            case .list(let items): for x in items { try expr(x) }
            case .dict(let pairs):
                for (k, v) in pairs {
                    try expr(k)
                    try expr(v)
                }
            }
        }
        for n in nodes {
            switch n {
            case .text, .loopBreak, .loopContinue: break
            case .output(let e): try expr(e)
            case .ifBlock(let branches, let otherwise):
                for (c, body) in branches {
                    try expr(c)
                    try check(body)
                }
                try check(otherwise)
            case .forBlock(_, let iterable, let filter, let body, let otherwise, _):
                try expr(iterable)
                if let filter { try expr(filter) }
                try check(body)
                try check(otherwise)
            case .set(_, _, let e, _): try expr(e)
            case .setBlock(_, let body): try check(body)
            case .macro(_, let params, let body):
                for (_, d) in params { if let d { try expr(d) } }
                try check(body)
            }
        }
    }

    public static func == (a: JinjaTemplate, b: JinjaTemplate) -> Bool { a.source == b.source }
    public func hash(into h: inout Hasher) { h.combine(source) }

    /// Renders with `context` (`messages`, `add_generation_prompt`, `bos_token`, …).
    public func render(_ context: [String: JinjaValue]) throws(JinjaError) -> String {
        let r = JinjaRenderer(globals: context)
        do { try r.run(nodes) } catch let e as JinjaError { throw e } catch {
            throw JinjaError(message: "\(error)", line: 0, column: 0)
        }
        return r.out
    }
}

/// A loop's `break` or `continue`, unwinding to the loop.
private enum LoopSignal: Error { case breakLoop, continueLoop }

final class JinjaRenderer {
    var out = ""
    var scopes: [[String: JinjaValue]]
    var macros: [String: (params: [(String, JinjaExpr?)], body: [JinjaNode])] = [:]
    var namespaces: [[(String, JinjaValue)]] = []

    init(globals: [String: JinjaValue]) { scopes = [globals] }

    func fail(_ m: String, _ p: JinjaNode.Pos) -> JinjaError { JinjaError(message: m, line: p.line, column: p.column) }

    func lookup(_ name: String) -> JinjaValue {
        for s in scopes.reversed() { if let v = s[name] { return v } }
        if macros[name] != nil || Self.builtins.contains(name) { return .callable(name) }
        return .undefined(name)
    }

    static let builtins: Set<String> = [
        "raise_exception", "strftime_now", "range", "namespace", "dict", "joiner", "cycler", "len",
    ]

    func run(_ nodes: [JinjaNode]) throws {
        for n in nodes { try run(n) }
    }

    func run(_ node: JinjaNode) throws {
        switch node {
        case .text(let t): out += t
        case .output(let e): out += try eval(e).str
        case .ifBlock(let branches, let otherwise):
            for (cond, body) in branches where try eval(cond).truthy {
                try run(body)
                return
            }
            try run(otherwise)
        case .forBlock(let targets, let iterable, let filter, let body, let otherwise, let pos):
            var items = try iterate(try eval(iterable), pos)
            if let filter {
                items = try items.filter { item in
                    scopes.append(try bind(targets, item, pos))
                    defer { scopes.removeLast() }
                    return try eval(filter).truthy
                }
            }
            if items.isEmpty {
                try run(otherwise)
                return
            }
            for (k, item) in items.enumerated() {
                var scope = try bind(targets, item, pos)
                scope["loop"] = .dict([
                    ("index", .int(k + 1)), ("index0", .int(k)), ("revindex", .int(items.count - k)),
                    ("revindex0", .int(items.count - k - 1)),
                    ("first", .bool(k == 0)), ("last", .bool(k == items.count - 1)), ("length", .int(items.count)),
                    ("previtem", k > 0 ? items[k - 1] : .undefined("previtem")),
                    ("nextitem", k + 1 < items.count ? items[k + 1] : .undefined("nextitem")),
                ])
                scopes.append(scope)
                defer { scopes.removeLast() }
                do { try run(body) } catch LoopSignal.breakLoop { break } catch LoopSignal.continueLoop { continue }
            }
        case .set(let targets, let attribute, let expr, let pos):
            let value = try eval(expr)
            if let attribute {
                guard case .namespace(let slot) = lookup(targets[0]) else {
                    throw fail("{% set \(targets[0]).\(attribute) %}: \(targets[0]) is not a namespace", pos)
                }
                if let i = namespaces[slot].firstIndex(where: { $0.0 == attribute }) {
                    namespaces[slot][i].1 = value
                } else {
                    namespaces[slot].append((attribute, value))
                }
                return
            }
            if targets.count == 1 {
                scopes[scopes.count - 1][targets[0]] = value
            } else {
                let items = try iterate(value, pos)
                guard items.count == targets.count else {
                    throw fail("cannot unpack \(items.count) values into \(targets.count) names", pos)
                }
                for (t, v) in zip(targets, items) { scopes[scopes.count - 1][t] = v }
            }
        case .setBlock(let name, let body):
            let saved = out
            out = ""
            try run(body)
            let captured = out
            out = saved
            scopes[scopes.count - 1][name] = .string(captured)
        case .macro(let name, let params, let body):
            macros[name] = (params, body)
        case .loopBreak: throw LoopSignal.breakLoop
        case .loopContinue: throw LoopSignal.continueLoop
        }
    }

    func bind(_ targets: [String], _ item: JinjaValue, _ pos: JinjaNode.Pos) throws -> [String: JinjaValue] {
        if targets.count == 1 { return [targets[0]: item] }
        let parts = try iterate(item, pos)
        guard parts.count == targets.count else {
            throw fail("cannot unpack \(parts.count) values into \(targets.count) loop variables", pos)
        }
        return Dictionary(uniqueKeysWithValues: zip(targets, parts).map { ($0, $1) })
    }

    func iterate(_ v: JinjaValue, _ pos: JinjaNode.Pos) throws -> [JinjaValue] {
        switch v {
        case .list(let l): return l
        case .dict(let d): return d.map { .string($0.0) }
        case .string(let s): return s.map { .string(String($0)) }
        case .undefined, .none: return []
        default: throw fail("\(v.repr) is not iterable", pos)
        }
    }

    // MARK: Expressions

    func eval(_ e: JinjaExpr) throws -> JinjaValue {
        switch e {
        case .literal(let v): return v
        case .name(let n, _): return lookup(n)
        case .list(let items): return .list(try items.map(eval))
        case .dict(let pairs): return .dict(try pairs.map { (try eval($0.0).str, try eval($0.1)) })
        case .attribute(let base, let name, let pos): return try attribute(try eval(base), name, pos)
        case .index(let base, let index, let pos):
            let b = try eval(base)
            let k = try eval(index)
            if case .undefined(let n) = b { throw fail("\(n) is undefined", pos) }
            switch (b, k) {
            case (.list(let l), .int(let i)):
                let j = i < 0 ? l.count + i : i
                return j >= 0 && j < l.count ? l[j] : .undefined("[\(i)]")
            case (.string(let s), .int(let i)):
                let chars = Array(s)
                let j = i < 0 ? chars.count + i : i
                return j >= 0 && j < chars.count ? .string(String(chars[j])) : .undefined("[\(i)]")
            case (.dict, .string(let key)): return b[key] ?? .undefined(key)
            case (.namespace, .string(let key)): return try attribute(b, key, pos)
            default: return try attribute(b, k.str, pos)
            }
        case .slice(let base, let lo, let hi, let step):
            let b = try eval(base)
            let st = try step.map { try eval($0) }
            guard
                let stepValue = st.map({ v -> Int in if case .int(let i) = v { return i } else { return 1 } }) ?? 1
                    as Int?, stepValue != 0
            else {
                return .undefined("slice")
            }
            func sliced<T>(_ a: [T]) throws -> [T] {
                let n = a.count
                func bound(_ x: JinjaExpr?, _ d: Int) throws -> Int {
                    guard let x, case .int(var v) = try eval(x) else { return d }
                    if v < 0 { v += n }
                    return stepValue > 0 ? min(max(v, 0), n) : min(max(v, -1), n - 1)
                }
                var r: [T] = []
                if stepValue > 0 {
                    var i = try bound(lo, 0)
                    let end = try bound(hi, n)
                    while i < end {
                        r.append(a[i])
                        i += stepValue
                    }
                } else {
                    var i = try bound(lo, n - 1)
                    let end = try bound(hi, -1)
                    while i > end {
                        r.append(a[i])
                        i += stepValue
                    }
                }
                return r
            }
            switch b {
            case .list(let l): return .list(try sliced(l))
            case .string(let s): return .string(String(try sliced(Array(s))))
            default: return .undefined("slice")
            }
        case .call(let callee, let args, let kwargs, let pos):
            let a = try args.map(eval)
            let kw = try kwargs.map { ($0.0, try eval($0.1)) }
            if case .attribute(let base, let method, _) = callee {
                return try callMethod(try eval(base), method, a, kw, pos)
            }
            let f = try eval(callee)
            guard case .callable(let name) = f else { throw fail("\(describe(callee)) is not callable", pos) }
            return try call(name, a, kw, pos)
        case .filter(let base, let name, let args, let kwargs, let pos):
            return try filter(try eval(base), name, try args.map(eval), try kwargs.map { ($0.0, try eval($0.1)) }, pos)
        case .test(let base, let name, let args, let negated, let pos):
            let r = try test(try eval(base), name, try args.map(eval), pos)
            return .bool(negated ? !r : r)
        case .unary(let op, let x):
            let v = try eval(x)
            if op == "not" { return .bool(!v.truthy) }
            switch v {
            case .int(let i): return .int(-i)
            case .double(let d): return .double(-d)
            default: return .undefined("-")
            }
        case .binary(let op, let l, let r, let pos):
            if op == "and" {
                let a = try eval(l)
                return a.truthy ? try eval(r) : a
            }
            if op == "or" {
                let a = try eval(l)
                return a.truthy ? a : try eval(r)
            }
            return try binary(op, try eval(l), try eval(r), pos)
        case .ternary(let cond, let a, let b):
            if try eval(cond).truthy { return try eval(a) }
            return try b.map(eval) ?? .undefined("else")
        }
    }

    func describe(_ e: JinjaExpr) -> String {
        switch e {
        case .name(let n, _): n
        case .attribute(let b, let n, _): describe(b) + "." + n
        default: "the expression"
        }
    }

    func attribute(_ v: JinjaValue, _ name: String, _ pos: JinjaNode.Pos) throws -> JinjaValue {
        switch v {
        case .undefined(let n): throw fail("'\(n)' is undefined (reading .\(name))", pos)
        case .dict: return v[name] ?? .undefined(name)
        case .namespace(let slot): return namespaces[slot].first { $0.0 == name }?.1 ?? .undefined(name)
        default: return .undefined(name)
        }
    }

    func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue, _ pos: JinjaNode.Pos) throws -> JinjaValue {
        switch op {
        case "==": return .bool(a == b)
        case "!=": return .bool(a != b)
        case "~": return .string(a.str + b.str)
        case "in":
            switch b {
            case .string(let s): return .bool(s.contains(a.str) || a.str.isEmpty)
            case .list(let l): return .bool(l.contains(a))
            case .dict(let d): return .bool(d.contains { $0.0 == a.str })
            case .undefined, .none: return .bool(false)
            default: throw fail("'in' needs a string, list or dict on its right, not \(b.repr)", pos)
            }
        case "<", ">", "<=", ">=":
            let r: Bool
            if let x = a.number, let y = b.number {
                r = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else if case .string(let x) = a, case .string(let y) = b {
                r = op == "<" ? x < y : op == ">" ? x > y : op == "<=" ? x <= y : x >= y
            } else {
                throw fail("cannot compare \(a.repr) and \(b.repr) with \(op)", pos)
            }
            return .bool(r)
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(x + y)
            case (.list(let x), .list(let y)): return .list(x + y)
            case (.int(let x), .int(let y)): return .int(x + y)
            default:
                if let x = a.number, let y = b.number { return .double(x + y) }
                throw fail("cannot add \(a.repr) and \(b.repr)", pos)
            }
        case "-", "*", "/", "//", "%", "**":
            if op == "*", case .string(let s) = a, case .int(let n) = b {
                return .string(String(repeating: s, count: max(0, n)))
            }
            if op == "%", case .string(let fmt) = a { return .string(pyFormat(fmt, b)) }
            guard let x = a.number, let y = b.number else {
                throw fail("cannot apply \(op) to \(a.repr) and \(b.repr)", pos)
            }
            let ints: Bool = { if case .int = a, case .int = b { return true } else { return false } }()
            switch op {
            case "-": return ints ? .int(Int(x) - Int(y)) : .double(x - y)
            case "*": return ints ? .int(Int(x) * Int(y)) : .double(x * y)
            case "/":
                guard y != 0 else { throw fail("division by zero", pos) }
                return .double(x / y)
            case "//":
                guard y != 0 else { throw fail("division by zero", pos) }
                return ints ? .int(Int((x / y).rounded(.down))) : .double((x / y).rounded(.down))
            case "%":
                guard y != 0 else { throw fail("modulo by zero", pos) }
                let m = x - y * (x / y).rounded(.down)
                return ints ? .int(Int(m)) : .double(m)
            default: return ints && y >= 0 ? .int(Int(Foundation.pow(x, y))) : .double(Foundation.pow(x, y))
            }
        default: throw fail("unknown operator \(op)", pos)
        }
    }

    /// `"%s" % value` for the `%s` and `%d` the occasional template uses.
    func pyFormat(_ fmt: String, _ v: JinjaValue) -> String {
        var args: [JinjaValue] = { if case .list(let l) = v { return l } else { return [v] } }()
        var out = ""
        var it = fmt.makeIterator()
        while let c = it.next() {
            if c == "%", let d = it.next() {
                if d == "%" {
                    out.append("%")
                    continue
                }
                out += args.isEmpty ? "" : args.removeFirst().str
            } else {
                out.append(c)
            }
        }
        return out
    }

    // MARK: Calls, methods, filters, tests

    func call(
        _ name: String, _ a: [JinjaValue], _ kw: [(String, JinjaValue)], _ pos: JinjaNode.Pos
    ) throws -> JinjaValue {
        if let m = macros[name] {
            var scope: [String: JinjaValue] = [:]
            for (i, (param, def)) in m.params.enumerated() {
                if let v = kw.first(where: { $0.0 == param })?.1 {
                    scope[param] = v
                } else if i < a.count {
                    scope[param] = a[i]
                } else {
                    scope[param] = try def.map(eval) ?? .undefined(param)
                }
            }
            let saved = out
            out = ""
            scopes.append(scope)
            defer { scopes.removeLast() }
            try run(m.body)
            let result = out
            out = saved
            return .string(result)
        }
        switch name {
        case "raise_exception": throw fail("the template raised an exception: \(a.first?.str ?? "")", pos)
        case "strftime_now":
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.dateFormat = Self.dateFormat(a.first?.str ?? "")
            return .string(f.string(from: Date()))
        case "range":
            let ints = a.compactMap { v -> Int? in if case .int(let i) = v { return i } else { return nil } }
            let (lo, hi, st) =
                ints.count == 1
                ? (0, ints[0], 1)
                : ints.count == 2 ? (ints[0], ints[1], 1) : ints.count >= 3 ? (ints[0], ints[1], ints[2]) : (0, 0, 1)
            guard st != 0 else { throw fail("range() step must not be zero", pos) }
            return .list(Array(stride(from: lo, to: hi, by: st)).map { .int($0) })
        case "namespace":
            var record: [(String, JinjaValue)] = []
            if case .dict(let d)? = a.first { record = d }
            record += kw
            namespaces.append(record)
            return .namespace(namespaces.count - 1)
        case "dict": return .dict(kw)
        case "len": return try filter(a.first ?? .none, "length", [], [], pos)
        default: throw fail("\(name)() is not a function prs's chat templates know", pos)
        }
    }

    /// strftime's common directives in DateFormatter's terms.
    static func dateFormat(_ s: String) -> String {
        let map: [Character: String] = [
            "d": "dd", "m": "MM", "Y": "yyyy", "y": "yy", "B": "MMMM", "b": "MMM", "H": "HH", "M": "mm", "S": "ss",
            "A": "EEEE", "a": "EEE", "p": "a",
        ]
        var out = ""
        var it = s.makeIterator()
        var literal = ""
        func flushLiteral() {
            if !literal.isEmpty {
                out += "'" + literal.replacingOccurrences(of: "'", with: "''") + "'"
                literal = ""
            }
        }
        while let c = it.next() {
            if c == "%", let d = it.next() {
                flushLiteral()
                out += map[d] ?? ""
            } else {
                literal.append(c)
            }
        }
        flushLiteral()
        return out
    }

    func callMethod(
        _ v: JinjaValue, _ m: String, _ a: [JinjaValue], _ kw: [(String, JinjaValue)], _ pos: JinjaNode.Pos
    ) throws -> JinjaValue {
        if case .undefined(let n) = v { throw fail("'\(n)' is undefined (calling .\(m)())", pos) }
        if case .string(let s) = v {
            func chars(_ x: JinjaValue?) -> Set<Character>? {
                x.flatMap { if case .string(let c) = $0 { Set(c) } else { nil } }
            }
            func strip(_ str: String, _ set: Set<Character>?, left: Bool, right: Bool) -> String {
                var t = Substring(str)
                let drop: (Character) -> Bool = { set?.contains($0) ?? $0.isWhitespace }
                if left { while let f = t.first, drop(f) { t = t.dropFirst() } }
                if right { while let l = t.last, drop(l) { t = t.dropLast() } }
                return String(t)
            }
            switch m {
            case "strip": return .string(strip(s, chars(a.first), left: true, right: true))
            case "lstrip": return .string(strip(s, chars(a.first), left: true, right: false))
            case "rstrip": return .string(strip(s, chars(a.first), left: false, right: true))
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(s.capitalized)
            case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
            case "startswith", "endswith":
                let options: [String] = {
                    if case .list(let l)? = a.first { return l.map(\.str) } else { return [a.first?.str ?? ""] }
                }()
                return .bool(options.contains { m == "startswith" ? s.hasPrefix($0) : s.hasSuffix($0) })
            case "split":
                if let sep = a.first, case .string(let d) = sep {
                    var parts = s.components(separatedBy: d)
                    if a.count > 1, case .int(let n) = a[1], n >= 0, parts.count > n + 1 {
                        parts = Array(parts[..<n]) + [parts[n...].joined(separator: d)]
                    }
                    return .list(parts.map { .string($0) })
                }
                return .list(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
            case "replace":
                guard a.count >= 2 else { throw fail("replace() takes two arguments", pos) }
                return .string(s.replacingOccurrences(of: a[0].str, with: a[1].str))
            case "find":
                guard let r = s.range(of: a.first?.str ?? "") else { return .int(-1) }
                return .int(s.distance(from: s.startIndex, to: r.lowerBound))
            case "count": return .int(a.first.map { s.components(separatedBy: $0.str).count - 1 } ?? 0)
            case "join":
                guard case .list(let l)? = a.first else { return .string("") }
                return .string(l.map(\.str).joined(separator: s))
            case "isdigit": return .bool(!s.isEmpty && s.allSatisfy(\.isNumber))
            case "format":
                var r = s
                for x in a { if let range = r.range(of: "{}") { r.replaceSubrange(range, with: x.str) } }
                for (k, x) in kw { r = r.replacingOccurrences(of: "{\(k)}", with: x.str) }
                return .string(r)
            default: break
            }
        }
        if case .dict(let d) = v {
            switch m {
            case "items": return .list(d.map { .list([.string($0.0), $0.1]) })
            case "keys": return .list(d.map { .string($0.0) })
            case "values": return .list(d.map { $0.1 })
            case "get": return v[a.first?.str ?? ""] ?? (a.count > 1 ? a[1] : .none)
            default: break
            }
        }
        if case .list = v, m == "index", let x = a.first, case .list(let l) = v, let i = l.firstIndex(of: x) {
            return .int(i)
        }
        throw fail("the method .\(m)() of \(v.repr.prefix(40)) is not in the Jinja subset prs renders", pos)
    }

    func filter(
        _ v: JinjaValue, _ name: String, _ a: [JinjaValue], _ kw: [(String, JinjaValue)], _ pos: JinjaNode.Pos
    ) throws -> JinjaValue {
        func arg(_ i: Int, _ key: String) -> JinjaValue? { kw.first { $0.0 == key }?.1 ?? (i < a.count ? a[i] : nil) }
        switch name {
        case "trim": return try callMethod(.string(v.str), "strip", a, [], pos)
        case "upper", "lower", "title", "capitalize": return try callMethod(.string(v.str), name, [], [], pos)
        case "replace": return try callMethod(.string(v.str), "replace", a, [], pos)
        case "string": return .string(v.str)
        case "safe": return v
        case "length", "count":
            switch v {
            case .string(let s): return .int(s.count)
            case .list(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            default: return .int(0)
            }
        case "first":
            if case .list(let l) = v { return l.first ?? .undefined("first") }
            if case .string(let s) = v { return s.first.map { .string(String($0)) } ?? .undefined("first") }
            return .undefined("first")
        case "last":
            if case .list(let l) = v { return l.last ?? .undefined("last") }
            if case .string(let s) = v { return s.last.map { .string(String($0)) } ?? .undefined("last") }
            return .undefined("last")
        case "default", "d":
            let fallback = arg(0, "default_value") ?? .string("")
            let boolean = arg(1, "boolean")?.truthy ?? false
            if !v.isDefined || (boolean && !v.truthy) { return fallback }
            return v
        case "join":
            let sep = arg(0, "d")?.str ?? ""
            var items = try iterate(v, pos)
            if let attr = kw.first(where: { $0.0 == "attribute" })?.1.str {
                items = items.map { $0[attr] ?? .undefined(attr) }
            }
            return .string(items.map(\.str).joined(separator: sep))
        case "tojson":
            var indent: Int?
            if case .int(let n)? = arg(0, "indent") { indent = n }
            return .string(v.json(indent: indent))
        case "list": return .list(try iterate(v, pos))
        case "items": return try callMethod(v, "items", [], [], pos)
        case "int":
            switch v {
            case .int: return v
            case .double(let d): return .int(Int(d))
            case .string(let s): return .int(Int(s.trimmingCharacters(in: .whitespaces)) ?? 0)
            case .bool(let b): return .int(b ? 1 : 0)
            default: return .int(0)
            }
        case "float": return .double(v.number ?? Double(v.str) ?? 0)
        case "abs": return v.number.map { if case .int(let i) = v { .int(abs(i)) } else { .double(abs($0)) } } ?? v
        case "reverse":
            if case .list(let l) = v { return .list(l.reversed()) }
            return .string(String(v.str.reversed()))
        case "unique":
            var seen: [JinjaValue] = []
            for x in try iterate(v, pos) where !seen.contains(x) { seen.append(x) }
            return .list(seen)
        case "indent":
            let width: Int = { if case .int(let n)? = arg(0, "width") { return n } else { return 4 } }()
            let first = arg(1, "first")?.truthy ?? false
            let pad = String(repeating: " ", count: width)
            let lines = v.str.components(separatedBy: "\n")
            return .string(
                lines.enumerated().map { i, l in (i == 0 && !first) || l.isEmpty ? l : pad + l }.joined(separator: "\n")
            )
        case "map":
            let items = try iterate(v, pos)
            if let attr = kw.first(where: { $0.0 == "attribute" })?.1.str {
                return .list(items.map { $0[attr] ?? kw.first { $0.0 == "default" }?.1 ?? .undefined(attr) })
            }
            guard let f = a.first?.str else { throw fail("map needs a filter name or attribute=", pos) }
            return .list(try items.map { try filter($0, f, Array(a.dropFirst()), [], pos) })
        case "select", "reject":
            let items = try iterate(v, pos)
            guard let t = a.first?.str else { return .list(items.filter { name == "select" ? $0.truthy : !$0.truthy }) }
            return .list(try items.filter { try test($0, t, Array(a.dropFirst()), pos) == (name == "select") })
        case "selectattr", "rejectattr":
            let items = try iterate(v, pos)
            guard let attr = a.first?.str else { throw fail("\(name) needs an attribute name", pos) }
            return .list(
                try items.filter { item in
                    let x = item[attr] ?? .undefined(attr)
                    let r = a.count > 1 ? try test(x, a[1].str, Array(a.dropFirst(2)), pos) : x.truthy
                    return r == (name == "selectattr")
                })
        case "round":
            let digits: Int = { if case .int(let n)? = arg(0, "precision") { return n } else { return 0 } }()
            guard let x = v.number else { return v }
            let f = Foundation.pow(10.0, Double(digits))
            return .double((x * f).rounded(.toNearestOrEven) / f)
        case "wordcount": return .int(v.str.split(whereSeparator: { $0.isWhitespace }).count)
        default: throw fail("the filter |\(name) is not in the Jinja subset prs renders", pos)
        }
    }

    func test(_ v: JinjaValue, _ name: String, _ a: [JinjaValue], _ pos: JinjaNode.Pos) throws -> Bool {
        switch name {
        case "defined": return v.isDefined
        case "undefined": return !v.isDefined
        case "none": return v == .none && v.isDefined
        case "string": if case .string = v { return true } else { return false }
        case "number": if case .int = v { return true } else if case .double = v { return true } else { return false }
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": return v == .bool(true)
        case "false": if case .bool(false) = v { return true } else { return false }
        case "mapping": if case .dict = v { return true } else { return false }
        case "sequence", "iterable":
            switch v {
            case .list, .string, .dict: return true
            default: return false
            }
        case "callable": if case .callable = v { return true } else { return false }
        case "odd", "even":
            guard case .int(let i) = v else { return false }
            return name == "odd" ? i % 2 != 0 : i % 2 == 0
        case "divisibleby":
            guard case .int(let i) = v, case .int(let d)? = a.first, d != 0 else { return false }
            return i % d == 0
        case "eq", "equalto", "==": return v == (a.first ?? .none)
        case "ne", "!=": return v != (a.first ?? .none)
        case "in": return try binary("in", v, a.first ?? .none, pos).truthy
        case "lower": return v.str == v.str.lowercased()
        case "upper": return v.str == v.str.uppercased()
        default: throw fail("the test 'is \(name)' is not in the Jinja subset prs renders", pos)
        }
    }
}
