/// Byte-pair encoding of one pre-tokenized word: start from its byte-level characters and
/// repeatedly merge the adjacent pair of lowest merge rank (the leftmost on ties) until no
/// pair has a rank. Symbols not in the vocabulary fall back to one token per byte.
struct BPE {
    /// Merge rank of `left + " " + right`.
    let ranks: [String: Int]
    let ids: [String: Int32]
    /// Whether a word that is itself a token skips merging (llama 3's `ignore_merges`).
    let ignoreMerges: Bool

    func encode(word bytes: [UInt8], into out: inout [Int32]) {
        let text = ByteLevel.encode(bytes)
        if ignoreMerges, let id = ids[text] {
            out.append(id)
            return
        }
        var symbols = text.unicodeScalars.map { String($0) }
        while symbols.count > 1 {
            var best = -1
            var bestRank = Int.max
            for i in 0..<(symbols.count - 1) {
                if let r = ranks[symbols[i] + " " + symbols[i + 1]], r < bestRank {
                    bestRank = r
                    best = i
                }
            }
            if best < 0 { break }
            symbols[best] += symbols[best + 1]
            symbols.remove(at: best + 1)
        }
        for s in symbols {
            if let id = ids[s] {
                out.append(id)
            } else {
                for scalar in s.unicodeScalars { if let id = ids[String(scalar)] { out.append(id) } }
            }
        }
    }
}
