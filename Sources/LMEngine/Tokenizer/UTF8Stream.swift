/// Turns a stream of token bytes into text without ever emitting a broken character: a
/// partial multi-byte UTF-8 sequence at the end is held back until its bytes arrive.
public struct UTF8Stream: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    /// The text that `bytes` complete; invalid sequences become U+FFFD.
    public mutating func push(_ bytes: [UInt8]) -> String {
        pending += bytes
        let keep = Self.incompleteTail(pending)
        let ready = pending[..<(pending.count - keep)]
        let text = String(decoding: ready, as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return text
    }

    /// Whatever is held back, as text (U+FFFD for an unfinished sequence).
    public mutating func flush() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    /// How many bytes at the end start a sequence that is not finished yet.
    static func incompleteTail(_ b: [UInt8]) -> Int {
        var i = b.count - 1
        var back = 0
        while i >= 0, back < 4 {
            let byte = b[i]
            back += 1
            if byte & 0xC0 != 0x80 {  // a lead byte (or ASCII)
                let need = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1
                return need > back && byte >= 0xC0 && byte < 0xF8 ? back : 0
            }
            i -= 1
        }
        return 0
    }
}
