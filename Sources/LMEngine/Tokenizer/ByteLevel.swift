/// GPT-2's byte-level alphabet: every byte maps to one printable Unicode scalar, so BPE
/// tokens are strings (a space is `Ġ`, U+0120). Printable Latin-1 bytes map to themselves;
/// the others map to U+0100 and up, in byte order.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    static let scalarToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { m[s.value] = UInt8(b) }
        return m
    }()

    /// The byte-level string of `bytes`.
    static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(byteToScalar[Int(b)]) }
        return String(s)
    }

    /// The bytes a byte-level token string stands for; `nil` if it holds a scalar outside the alphabet.
    static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        for s in token.unicodeScalars {
            guard let b = scalarToByte[s.value] else { return nil }
            out.append(b)
        }
        return out
    }
}
