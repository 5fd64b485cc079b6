/// A little-endian cursor over bytes that never reads past the end: every read checks
/// that the bytes exist and throws `GGUFError` naming the offset otherwise.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset: Int

    init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else {
            throw GGUFError("file ends inside \(what()) (needs \(n) bytes, \(remaining) left)", offset: offset)
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        let v = bytes.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func readF32(_ what: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try read(UInt32.self, what()))
    }

    mutating func readF64(_ what: @autoclosure () -> String) throws -> Double {
        Double(bitPattern: try read(UInt64.self, what()))
    }

    /// A GGUF string: a u64 length and that many bytes of UTF-8 (invalid sequences are repaired).
    mutating func readString(_ what: @autoclosure () -> String) throws -> String {
        let start = offset
        let n = try read(UInt64.self, "the length of \(what())")
        guard n <= UInt64(remaining) else {
            throw GGUFError("\(what()) claims \(n) bytes but only \(remaining) remain", offset: start)
        }
        let count = Int(n)
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), as: UTF8.self)
        offset += count
        return s
    }

    mutating func skip(_ n: Int, _ what: @autoclosure () -> String) throws {
        try need(n, what())
        offset += n
    }
}
