import Foundation
import LMEngine
import PRSCore

extension HTTPRewardSpec {
    /// Parses `http://HOST:PORT/PATH/ENDPOINT[#option=value&…]`; errors name the option at fault.
    public static func parse(_ text: String) throws -> HTTPRewardSpec {
        func bad(_ why: String) -> SpecError { SpecError("reward http:\(text): \(why)") }
        let pieces = text.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        var url = pieces[0]
        while url.hasSuffix("/") { url.removeLast() }
        guard url.hasPrefix("http://") || url.hasPrefix("https://"),
            let parsed = URLComponents(string: url), let host = parsed.host, !host.isEmpty
        else {
            throw bad("\"\(url)\" is not an http:// or https:// URL")
        }
        let last = parsed.path.split(separator: "/").last.map(String.init) ?? ""
        guard let endpoint = Endpoint(rawValue: last) else {
            let known = Endpoint.allCases.map { "/" + $0.rawValue }.joined(separator: ", ")
            throw bad("the URL's path must end in \(known) to name the protocol, e.g. http://HOST:8000/pooling")
        }
        var spec = HTTPRewardSpec(url: url, endpoint: endpoint)
        var seen: Set<String> = []
        for (key, value) in try options(pieces.count > 1 ? pieces[1] : "", bad) {
            guard seen.insert(key).inserted else { throw bad("option \(key) is given twice") }
            try spec.set(key, value, bad)
        }
        if endpoint == .score, seen.contains("format") || seen.contains("template") {
            throw bad("format and template do not apply to /score, which takes the prompt and the response as a pair")
        }
        if spec.format == .raw, seen.contains("template") {
            throw bad("template applies only with format=chat")
        }
        if endpoint == .pooling, spec.format == .chat, seen.contains("template") {
            throw bad(
                "template does not apply to /pooling with format=chat: the server renders the messages with the "
                    + "model's own template"
            )
        }
        return spec
    }

    /// `key=value` pairs of the fragment; a fragment without `=` is the model's name.
    static func options(_ fragment: String, _ bad: (String) -> SpecError) throws -> [(String, String)] {
        if fragment.isEmpty { return [] }
        if !fragment.contains("=") { return [("model", fragment.removingPercentEncoding ?? fragment)] }
        return try fragment.split(separator: "&").map { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard kv.count == 2, !kv[0].isEmpty else { throw bad("\"\(pair)\" is not option=value") }
            return (kv[0], kv[1].removingPercentEncoding ?? kv[1])
        }
    }

    mutating func set(_ key: String, _ value: String, _ bad: (String) -> SpecError) throws {
        func count(_ what: String) throws -> Int {
            guard let n = Int(value), n >= 1 else {
                throw bad("\(key)=\(value): \(what) must be a whole number of at least 1")
            }
            return n
        }
        switch key {
        case "model":
            guard !value.isEmpty else { throw bad("model= needs a name") }
            model = value
        case "format":
            guard let f = TextFormat(rawValue: value) else { throw bad("format=\(value): expected chat or raw") }
            format = f
        case "template":
            guard let t = ChatTemplate.named(value) else {
                throw bad("template=\(value): expected one of \(ChatTemplate.names.joined(separator: ", "))")
            }
            template = t
        case "batch": batch = try count("the batch size")
        case "concurrency": concurrency = try count("the number of requests in flight")
        default:
            throw bad("unknown option \"\(key)\"; known: \(Self.optionNames.joined(separator: ", "))")
        }
    }
}
