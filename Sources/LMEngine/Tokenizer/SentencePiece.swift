/// SentencePiece-style encoding as llama.cpp's `llama` vocabulary (SPM) does it: spaces become
/// `▁`, the text starts as one symbol per UTF-8 character, and the adjacent pair whose
/// concatenation is the vocabulary token of highest score is merged (the leftmost on equal
/// scores) until no pair forms a token. A symbol that is not a token is written as its bytes'
/// `<0xHH>` tokens (byte fallback).
///
/// Tokens are looked up by their UTF-8 bytes: Swift's String equality is canonical equivalence,
/// under which U+037E (Greek question mark) would be found as ";" and "e" + U+0301 as "é".
struct SentencePiece {
    let ids: [[UInt8]: Int32]
    let scores: [Float]
    /// The `<0xHH>` token of each byte (nil where the vocabulary has none).
    let byteTokens: [Int32?]

    init(tokens: [String], types: [Tokenizer.TokenType], scores: [Float]) {
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        // llama.cpp's token_to_id keeps the last of duplicate texts.
        for (i, t) in tokens.enumerated() { ids[Array(t.utf8)] = Int32(i) }
        self.ids = ids
        self.scores = scores
        var bytes = [Int32?](repeating: nil, count: 256)
        for (i, t) in tokens.enumerated() where types[i] == .byte {
            if let b = UInt8(t.dropFirst(3).dropLast(), radix: 16), bytes[Int(b)] == nil { bytes[Int(b)] = Int32(i) }
        }
        byteTokens = bytes
    }

    /// `▁`, U+2581, for a space.
    static let space = "\u{2581}"

    /// A candidate merge of the symbols at `left` and `right`, ordered by score then position.
    struct Bigram: Comparable {
        var score: Float
        var left: Int
        var right: Int
        /// Bytes of the merged text: a symbol that changed since the bigram was queued no longer matches.
        var size: Int
        static func < (a: Bigram, b: Bigram) -> Bool { a.score < b.score || (a.score == b.score && a.left > b.left) }
    }

    struct Symbol {
        var start: Int
        var count: Int
        var prev: Int
        var next: Int
    }

    /// Appends the tokens of `text` (raw text between special tokens).
    func encode(_ raw: [UInt8], into out: inout [Int32]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(raw.count)
        for b in raw { if b == 0x20 { bytes += [0xE2, 0x96, 0x81] } else { bytes.append(b) } }
        guard !bytes.isEmpty else { return }
        var symbols: [Symbol] = []
        var offset = 0
        while offset < bytes.count {
            let n = min(Self.utf8Length(bytes[offset]), bytes.count - offset)
            symbols.append(
                Symbol(
                    start: offset, count: n, prev: symbols.count - 1,
                    next: offset + n == bytes.count ? -1 : symbols.count + 1))
            offset += n
        }
        var queue = Heap<Bigram>()
        func text(_ start: Int, _ count: Int) -> [UInt8] { Array(bytes[start..<(start + count)]) }
        func tryBigram(_ left: Int, _ right: Int) {
            guard left >= 0, right >= 0 else { return }
            let size = symbols[left].count + symbols[right].count
            guard let id = ids[text(symbols[left].start, size)] else { return }
            queue.push(Bigram(score: scores[Int(id)], left: left, right: right, size: size))
        }
        for i in 1..<symbols.count { tryBigram(i - 1, i) }
        while let b = queue.pop() {
            let l = symbols[b.left]
            let r = symbols[b.right]
            guard l.count > 0, r.count > 0, l.count + r.count == b.size else { continue }
            symbols[b.left].count += r.count
            symbols[b.right].count = 0
            symbols[b.left].next = r.next
            if r.next >= 0 { symbols[r.next].prev = b.left }
            tryBigram(symbols[b.left].prev, b.left)
            tryBigram(b.left, symbols[b.left].next)
        }
        var i = 0
        while i != -1 {
            let s = symbols[i]
            if let id = ids[text(s.start, s.count)] {
                out.append(id)
            } else {
                for byte in bytes[s.start..<(s.start + s.count)] {
                    if let id = byteTokens[Int(byte)] { out.append(id) }
                }
            }
            i = s.next
        }
    }

    /// The length of the UTF-8 sequence a lead byte starts (1 for a stray continuation byte).
    static func utf8Length(_ lead: UInt8) -> Int {
        switch lead >> 4 {
        case 0xF: 4
        case 0xE: 3
        case 0xC, 0xD: 2
        default: 1
        }
    }
}

/// A binary max-heap.
struct Heap<Element: Comparable> {
    private var items: [Element] = []

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[parent] < items[i] else { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count, items[m] < items[l] { m = l }
                if r < items.count, items[m] < items[r] { m = r }
                if m == i { break }
                items.swapAt(m, i)
                i = m
            }
        }
        return top
    }
}
