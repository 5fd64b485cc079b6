/// Seeds derived from the run seed, the item id and a request's position in the tree,
/// so that a rerun with the same run seed asks for exactly the same samples, whatever
/// the order in which items are processed.
public enum Seeds {
    /// Seeds stay below 2^31 minus room for fan-out offsets: llama.cpp and other servers
    /// take 32-bit seeds, and sample `i` of a request uses `base + i`.
    public static let limit: UInt64 = (1 << 31) - 65_536

    /// The base seed of the `step`-th request of item `itemID`.
    public static func base(run: UInt64, item itemID: String, step: Int) -> UInt64 {
        var h = fnv1a(itemID)
        h = splitMix(h ^ splitMix(run))
        h = splitMix(h ^ UInt64(truncatingIfNeeded: step &+ 1))
        return h % limit
    }

    static func fnv1a(_ s: String) -> UInt64 { fnv1a(s.utf8) }

    /// FNV-1a (64-bit) of bytes.
    static func fnv1a<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    /// SplitMix64's finaliser: a bijective mix with good avalanche.
    static func splitMix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
