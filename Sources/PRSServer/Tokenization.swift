import Foundation
import HTTPTypes
import Hummingbird
import LMEngine
import Logging
import NIOCore
import PRSCore
import ServiceLifecycle

/// `POST /tokenize`, `POST /detokenize` (vLLM's shapes); `GET /tokenizer_info` is answered from the loaded model.
extension ModelServer {
    func tokenize(_ request: Request) async throws -> Response {
        let served = try state.ready()
        let f = Fields(object: try await body(request.body))
        let r = try TokenizeRequest(f)
        let tokenizer = served.model.tokenizer
        let ids: [Int32]
        switch r.input {
        case .messages: ids = try served.reader.chat(f, modelName: served.baseName).prompts[0]
        case .text(let text, let addSpecial):
            ids =
                addSpecial
                ? tokenizer.promptTokens(text) : tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        }
        func text(_ t: Int32) -> String { String(decoding: tokenizer.bytes(of: t, special: true), as: UTF8.self) }
        let length = served.engine.contextTokens
        if r.withPieces {
            let pieces = ids.map { TokenPiece(id: Int($0), piece: text($0)) }
            return JSONOut.response(TokenizeReply(tokens: pieces, count: ids.count, maxModelLen: length))
        }
        let strings = r.returnTokenStrings ? ids.map(text) : nil
        return JSONOut.response(
            TokenizeReply(tokens: ids.map(Int.init), count: ids.count, maxModelLen: length, tokenStrs: strings))
    }

    func detokenize(_ request: Request) async throws -> Response {
        let served = try state.ready()
        let r = try DetokenizeRequest(
            Fields(object: try await body(request.body)), vocabulary: served.model.config.vocabSize)
        let text = served.model.tokenizer.decode(r.tokens)
        return JSONOut.response(DetokenizeReply(content: text, prompt: text))
    }
}

/// `POST /tokenize`'s reply: token ids (vLLM's), or `{"id", "piece"}` pairs with `with_pieces` (llama-server's).
struct TokenizeReply<Token: Encodable & Sendable>: Encodable, Sendable {
    var tokens: [Token]
    var count: Int
    var maxModelLen: Int
    var tokenStrs: [String]?
    enum CodingKeys: String, CodingKey {
        case tokens, count
        case maxModelLen = "max_model_len"
        case tokenStrs = "token_strs"
    }
}

/// `POST /detokenize`'s reply: the text as llama-server (`content`) and vLLM (`prompt`) name it.
struct DetokenizeReply: Encodable, Sendable {
    var content: String
    var prompt: String
}

/// A token of `/tokenize` with `with_pieces`.
struct TokenPiece: Encodable, Sendable {
    var id: Int
    var piece: String
}

/// The body of `/detokenize`: `tokens`, each a token id of the model, read and checked once.
struct DetokenizeRequest: Sendable {
    var tokens: [Int32]

    init(_ f: Fields, vocabulary: Int) throws(APIError) {
        guard let raw = f["tokens"] else { throw APIError.invalid("tokens is required", param: "tokens") }
        guard case .array(let list) = raw else { throw f.wrong("tokens", "an array of token ids", raw) }
        tokens = []
        for (i, v) in list.enumerated() {
            guard case .int(let t) = v, t >= 0, t < Int64(vocabulary) else {
                throw APIError.invalid(
                    "tokens[\(i)] is not a token id of this model (0..<\(vocabulary))", param: "tokens")
            }
            tokens.append(Int32(t))
        }
    }
}

/// The body of `/tokenize`: chat `messages` (rendered as for a chat completion), or a text
/// (vLLM's `prompt`, which adds special tokens unless told not to; llama-server's `content`,
/// which does not), and how the reply shows the tokens.
struct TokenizeRequest: Sendable {
    enum Input: Sendable {
        case messages
        case text(String, addSpecial: Bool)
    }
    var input: Input
    var withPieces: Bool
    var returnTokenStrings: Bool

    init(_ f: Fields) throws(APIError) {
        if f["messages"] != nil {
            input = .messages
        } else {
            var text = try f.string("prompt")
            if text == nil { text = try f.string("content") }
            if text == nil { text = try f.string("input") }
            guard let text else {
                throw APIError.invalid(
                    "prompt (or content) is required: the text to tokenize; or messages", param: "prompt")
            }
            var addSpecial = try f.bool("add_special_tokens")
            if addSpecial == nil { addSpecial = try f.bool("add_special") }
            input = .text(text, addSpecial: addSpecial ?? (f["prompt"] != nil))
        }
        withPieces = try f.bool("with_pieces") ?? false
        returnTokenStrings = try f.bool("return_token_strs") ?? false
    }
}
