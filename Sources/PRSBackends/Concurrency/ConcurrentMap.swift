/// Runs `transform` on each of `0..<count` with at most `limit` calls in flight and returns the
/// results in index order; the first error cancels the rest and is thrown.
func concurrentMap<T: Sendable>(
    _ count: Int, limit: Int, _ transform: @escaping @Sendable (Int) async throws -> T
) async throws -> [T] {
    var results = [T?](repeating: nil, count: count)
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        var next = 0
        func add() {
            let i = next
            next += 1
            group.addTask { (i, try await transform(i)) }
        }
        while next < min(max(1, limit), count) { add() }
        for try await (i, r) in group {
            results[i] = r
            if next < count { add() }
        }
    }
    return results.map { $0! }
}
