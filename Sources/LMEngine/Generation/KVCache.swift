import CKernels

/// The keys and values of every sequence in flight, in fixed-size blocks of positions
/// (F16, as llama.cpp keeps them), with a prefix index: a full block is known by the tokens
/// it holds and all the tokens before it, so a request that starts with the same tokens as
/// an earlier one takes its blocks instead of recomputing them.
///
/// Blocks are reference-counted. A block nobody holds but whose contents are indexed stays
/// cached on a least-recently-used list and is evicted only when a new block is needed; the
/// memory is bounded by the number of blocks. Not thread-safe: the engine's scheduler owns it.
final class KVCache {
    static let blockSize = 16
    let blocks: Int
    let layers: Int
    let kvDim: Int
    let keys: [UnsafeMutablePointer<UInt16>]
    let values: [UnsafeMutablePointer<UInt16>]

    private var refs: [Int32]
    /// The index key of each block whose contents are indexed.
    private var keyOf: [UInt64?]
    private var tokensOf: [[Int32]]
    private var index: [UInt64: Int32] = [:]
    private var free: [Int32]
    /// Unheld indexed blocks, least recently used first: a linked list over block ids.
    private var prev: [Int32], next: [Int32]
    private var head: Int32 = -1, tail: Int32 = -1
    private(set) var cachedCount = 0

    /// Prompt tokens looked up and found, and blocks evicted, since the start.
    private(set) var lookedUp = 0
    private(set) var found = 0
    private(set) var evictions = 0

    init(layers: Int, kvDim: Int, tokens: Int) {
        self.layers = layers
        self.kvDim = kvDim
        blocks = max(1, (tokens + Self.blockSize - 1) / Self.blockSize)
        let rows = blocks * Self.blockSize * kvDim
        keys = (0..<layers).map { _ in .allocate(capacity: rows) }
        values = (0..<layers).map { _ in .allocate(capacity: rows) }
        refs = Array(repeating: 0, count: blocks)
        keyOf = Array(repeating: nil, count: blocks)
        tokensOf = Array(repeating: [], count: blocks)
        free = (0..<Int32(blocks)).reversed()
        prev = Array(repeating: -1, count: blocks)
        next = Array(repeating: -1, count: blocks)
    }

    deinit {
        keys.forEach { $0.deallocate() }
        values.forEach { $0.deallocate() }
    }

    /// Blocks that can be handed out now: free ones and cached ones nobody holds.
    var available: Int { free.count + cachedCount }
    var bytes: Int { 2 * layers * blocks * Self.blockSize * kvDim * MemoryLayout<UInt16>.size }

    /// A block for new contents, held once: a free one, or else the least recently used
    /// cached one (forgotten). nil when every block is held.
    func allocate() -> Int32? {
        var b: Int32
        if let f = free.popLast() {
            b = f
        } else if head >= 0 {
            b = head
            unlink(b)
            forget(b)
            evictions += 1
        } else {
            return nil
        }
        refs[Int(b)] = 1
        return b
    }

    func retain(_ b: Int32) {
        if refs[Int(b)] == 0 { unlink(b) }
        refs[Int(b)] += 1
    }

    func release(_ b: Int32) {
        let i = Int(b)
        precondition(refs[i] > 0, "block \(b) released more often than held")
        refs[i] -= 1
        guard refs[i] == 0 else { return }
        if keyOf[i] != nil { append(b) } else { free.append(b) }
    }

    /// The index key of the block holding `tokens` after the blocks keyed `parent` (0 for the first).
    static func key(parent: UInt64, _ tokens: ArraySlice<Int32>) -> UInt64 {
        var h = parent ^ 0x9E37_79B9_7F4A_7C15
        for t in tokens {
            h = (h ^ UInt64(UInt32(bitPattern: t))) &* 0x100_0000_01B3
            h ^= h >> 29
        }
        return h == 0 ? 1 : h
    }

    /// The cached block keyed `key` holding `tokens`, held once more; nil if absent.
    func lookup(_ key: UInt64, _ tokens: ArraySlice<Int32>) -> Int32? {
        lookedUp += tokens.count
        guard let b = index[key], tokensOf[Int(b)].elementsEqual(tokens) else { return nil }
        found += tokens.count
        retain(b)
        return b
    }

    /// Records that block `b` (held, full) holds `tokens` under `key`, unless another block already does.
    func publish(_ b: Int32, key: UInt64, _ tokens: ArraySlice<Int32>) {
        guard index[key] == nil, keyOf[Int(b)] == nil else { return }
        index[key] = b
        keyOf[Int(b)] = key
        tokensOf[Int(b)] = Array(tokens)
    }

    /// Copies the first `rows` positions of block `from` into block `to`, in every layer.
    func copy(_ from: Int32, to: Int32, rows: Int) {
        let n = rows * kvDim
        let src = Int(from) * Self.blockSize * kvDim
        let dst = Int(to) * Self.blockSize * kvDim
        for l in 0..<layers {
            (keys[l] + dst).update(from: keys[l] + src, count: n)
            (values[l] + dst).update(from: values[l] + src, count: n)
        }
    }

    private func forget(_ b: Int32) {
        if let k = keyOf[Int(b)] { index[k] = nil }
        keyOf[Int(b)] = nil
        tokensOf[Int(b)] = []
    }

    private func append(_ b: Int32) {
        prev[Int(b)] = tail
        next[Int(b)] = -1
        if tail >= 0 { next[Int(tail)] = b } else { head = b }
        tail = b
        cachedCount += 1
    }

    private func unlink(_ b: Int32) {
        let p = prev[Int(b)]
        let n = next[Int(b)]
        if p >= 0 { next[Int(p)] = n } else { head = n }
        if n >= 0 { prev[Int(n)] = p } else { tail = p }
        prev[Int(b)] = -1
        next[Int(b)] = -1
        cachedCount -= 1
    }
}

/// One sequence's place in the cache: its tokens (those whose keys and values are computed
/// come first) and the blocks holding them.
final class CachedSequence {
    var tokens: [Int32] = []
    /// Positions whose keys and values are in the cache.
    var computed = 0
    var table: [Int32] = []
    /// Index keys of the full blocks, in order.
    var keys: [UInt64] = []
    /// The key before the first block: 0 for the base model, the adapter stack's root otherwise.
    var root: UInt64 = 0

    /// Takes the longest run of cached full blocks that starts `prompt`, leaving at least its
    /// last token to compute (its logits are needed). Returns the tokens found. With `reuse`
    /// false nothing is taken: every position is computed (its blocks are still published).
    func attach(_ prompt: [Int32], root: UInt64 = 0, reuse: Bool = true, cache: KVCache) -> Int {
        tokens = prompt
        self.root = root
        let bs = KVCache.blockSize
        let usable = reuse ? (prompt.count - 1) / bs : 0
        var parent: UInt64 = root
        for b in 0..<usable {
            let slice = prompt[(b * bs)..<((b + 1) * bs)]
            let key = KVCache.key(parent: parent, slice)
            guard let block = cache.lookup(key, slice) else { break }
            table.append(block)
            keys.append(key)
            parent = key
        }
        computed = table.count * bs
        return computed
    }

    /// A sequence starting with all of `other`'s computed positions: its full blocks shared,
    /// its last partial block copied.
    func fork(from other: CachedSequence, cache: KVCache) -> Bool {
        let bs = KVCache.blockSize
        let full = other.computed / bs
        let partial = other.computed % bs
        var table = Array(other.table.prefix(full))
        if partial > 0 {
            guard let copy = cache.allocate() else { return false }
            cache.copy(other.table[full], to: copy, rows: partial)
            table.append(copy)
        }
        for b in table.prefix(full) { cache.retain(b) }
        self.table = table
        tokens = Array(other.tokens.prefix(other.computed))
        computed = other.computed
        keys = Array(other.keys.prefix(full))
        root = other.root
        return true
    }

    /// Makes room for positions up to `position` (allocating a block when one starts there);
    /// false when the cache is full. Positions are made room for in order.
    func reserve(_ position: Int, _ cache: KVCache) -> Bool {
        if position / KVCache.blockSize < table.count { return true }
        guard let b = cache.allocate() else { return false }
        table.append(b)
        return true
    }

    /// After position `computed` was filled: indexes the block it completed.
    func advance(_ cache: KVCache) {
        computed += 1
        let bs = KVCache.blockSize
        guard computed % bs == 0 else { return }
        let b = computed / bs - 1
        let slice = tokens[(b * bs)..<(computed)]
        let key = KVCache.key(parent: keys.last ?? root, slice)
        keys.append(key)
        cache.publish(table[b], key: key, slice)
    }

    func release(_ cache: KVCache) {
        for b in table { cache.release(b) }
        table = []
        keys = []
        computed = 0
    }
}
