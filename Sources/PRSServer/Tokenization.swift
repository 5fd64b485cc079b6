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
        let tokenizer = served.model.tokenizer
        var ids: [Int32]
        if f["messages"] != nil {
            ids = try served.reader.chat(f, modelName: served.baseName).prompts[0]
        } else {
            // vLLM's `prompt` adds special tokens unless told not to; llama-server's `content` does not.
            let vllm = f["prompt"] != nil
            guard let text = try f.string("prompt") ?? f.string("content") ?? f.string("input") else {
                throw APIError.invalid(
                    "prompt (or content) is required: the text to tokenize; or messages", param: "prompt")
            }
            let addSpecial = try f.bool("add_special_tokens") ?? f.bool("add_special") ?? vllm
            ids =
                addSpecial
                ? tokenizer.promptTokens(text) : tokenizer.encode(text, addSpecial: false, parseSpecial: true)
        }
        func text(_ t: Int32) -> String { String(decoding: tokenizer.bytes(of: t, special: true), as: UTF8.self) }
        if try f.bool("with_pieces") == true {
            let pieces = ids.map { TokenPiece(id: Int($0), piece: text($0)) }
            return JSONOut.response(TokenizeReply(tokens: pieces, count: ids.count, maxModelLen: served.engine.contextTokens))
        }
        let strings = try f.bool("return_token_strs") == true ? ids.map(text) : nil
        return JSONOut.response(TokenizeReply(tokens: ids.map(Int.init), count: ids.count,
                                              maxModelLen: served.engine.contextTokens, tokenStrs: strings))
    }

    func detokenize(_ request: Request) async throws -> Response {
        let served = try state.ready()
        let f = Fields(object: try await body(request.body))
        guard let raw = f["tokens"] else { throw APIError.invalid("tokens is required", param: "tokens") }
        guard case .array(let list) = raw else { throw f.wrong("tokens", "an array of token ids", raw) }
        var ids: [Int32] = []
        for (i, v) in list.enumerated() {
            guard case .int(let t) = v, t >= 0, t < Int64(served.model.config.vocabSize) else {
                throw APIError.invalid(
                    "tokens[\(i)] is not a token id of this model (0..<\(served.model.config.vocabSize))",
                    param: "tokens")
            }
            ids.append(Int32(t))
        }
        let text = served.model.tokenizer.decode(ids)
        return JSONOut.response(DetokenizeReply(content: text, prompt: text))
    }
}

/// `POST /tokenize`'s reply: token ids (vLLM's), or `{"id", "piece"}` pairs with `with_pieces` (llama-server's).
struct TokenizeReply<Token: Encodable & Sendable>: Encodable, Sendable {
    var tokens: [Token]
    var count: Int
    var maxModelLen: Int
    var tokenStrs: [String]?
    enum CodingKeys: String, CodingKey { case tokens, count, maxModelLen = "max_model_len", tokenStrs = "token_strs" }
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
