import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A field OpenAI's shapes write as an explicit `null` when there is nothing to say.
struct OrNull<T: Encodable & Sendable>: Encodable, Sendable {
    var value: T?
    init(_ value: T?) { self.value = value }
    static var null: OrNull { OrNull(nil) }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let value { try c.encode(value) } else { try c.encodeNil() }
    }
}

/// JSON bodies out: the endpoint families' `Encodable` response types, keys sorted so responses are stable.
enum JSONOut {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func bytes(_ value: some Encodable) -> [UInt8] {
        (try? [UInt8](encoder.encode(value))) ?? Array(#"{}"#.utf8)
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes(value))))
    }
}

/// `GET /health`.
struct HealthBody: Encodable, Sendable {
    var status: String
}
