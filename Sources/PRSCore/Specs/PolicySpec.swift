import Foundation

/// A policy: where responses come from.
public enum PolicySpec: Sendable, Hashable, CustomStringConvertible {
    /// One OpenAI-compatible server.
    public struct Endpoint: Sendable, Hashable {
        /// The base URL, e.g. `http://127.0.0.1:8080/v1`.
        public var baseURL: String
        /// The model name; when `nil`, the first model `GET /models` lists.
        public var model: String?
        public init(baseURL: String, model: String?) {
            var url = baseURL
            while url.hasSuffix("/") { url.removeLast() }
            self.baseURL = url
            self.model = model
        }
    }

    /// An OpenAI-compatible server, or several balanced.
    case openAI([Endpoint])
    /// A GGUF file run in-process, with LoRA adapters (`A.gguf` or `A.gguf@SCALE`) applied.
    case embedded(path: String, adapters: [String] = [])

    /// Parses `openai:http://HOST:PORT/v1[#model][,http://…]` or `embedded:PATH.gguf[+ADAPTER.gguf[@SCALE]]...`.
    public static func parse(_ spec: String) throws -> PolicySpec {
        if spec.hasPrefix("openai:") {
            let urls = spec.dropFirst("openai:".count).split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            guard !urls.isEmpty else { throw SpecError("policy \"\(spec)\": no base URL after openai:") }
            var endpoints: [Endpoint] = []
            for u in urls {
                let parts = u.split(separator: "#", maxSplits: 1).map(String.init)
                let base = parts[0]
                guard base.hasPrefix("http://") || base.hasPrefix("https://"), base.count > 8 else {
                    throw SpecError("policy \"\(spec)\": \"\(base)\" is not an http:// or https:// URL")
                }
                endpoints.append(.init(baseURL: base, model: parts.count > 1 && !parts[1].isEmpty ? parts[1] : nil))
            }
            // A model named once applies to every URL that names none.
            if let model = endpoints.compactMap(\.model).first {
                endpoints = endpoints.map { .init(baseURL: $0.baseURL, model: $0.model ?? model) }
            }
            return .openAI(endpoints)
        }
        if spec.hasPrefix("embedded:") {
            let parts = spec.dropFirst("embedded:".count).components(separatedBy: "+")
            guard let path = parts.first, !path.isEmpty else {
                throw SpecError("policy \"\(spec)\": no file after embedded:")
            }
            let adapters = Array(parts.dropFirst())
            for a in adapters {
                guard !a.isEmpty, !a.hasPrefix("@") else {
                    throw SpecError("policy \"\(spec)\": an empty adapter after +")
                }
                if let at = a.lastIndex(of: "@"), Float(a[a.index(after: at)...]) == nil {
                    throw SpecError("policy \"\(spec)\": \"\(a)\": the scale after @ must be a number")
                }
            }
            return .embedded(path: path, adapters: adapters)
        }
        throw SpecError("policy \"\(spec)\": expected openai:http://HOST:PORT/v1[#model] or embedded:PATH.gguf")
    }

    public var description: String {
        switch self {
        case .openAI(let e): "openai:" + e.map { $0.baseURL + ($0.model.map { "#" + $0 } ?? "") }.joined(separator: ",")
        case .embedded(let p, let adapters): "embedded:" + ([p] + adapters).joined(separator: "+")
        }
    }
}

extension PolicySpec: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try PolicySpec.parse(text) } catch let e as SpecError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
