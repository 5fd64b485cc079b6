/// Part `index` of `count` of a prompt set, for splitting one set across machines
/// (`--shard I/N`). An item belongs to the shard its id hashes to, so the split does not
/// depend on the file's order and every item is in exactly one shard.
public struct Shard: Sendable, Hashable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    /// Parses `I/N` with `0 ≤ I < N`.
    public init(_ text: String) throws {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 0, i < n else {
            throw ConfigError("shard \"\(text)\": expected I/N with 0 ≤ I < N, e.g. 0/4")
        }
        index = i
        count = n
    }

    public func contains(_ itemID: String) -> Bool {
        Int(Seeds.splitMix(Seeds.fnv1a(itemID)) % UInt64(count)) == index
    }

    public var description: String { "\(index)/\(count)" }
}

/// FNV-1a (64-bit) of bytes, for recording which input files a run used.
public enum ContentHash {
    public static func fnv1a64<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        "fnv1a64:" + String(Seeds.fnv1a(bytes), radix: 16)
    }
}
