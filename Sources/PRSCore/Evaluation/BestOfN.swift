import Foundation

/// Expected best-of-n rewards from stored samples, without bias.
///
/// For independent sampling (rand, prand), the n samples are a uniformly random subset of the
/// N stored ones, so the expectation is exact over all C(N, n) subsets: the i-th smallest of N
/// values is the j-th largest of a subset of n with probability C(i−1, n−j)·C(N−i, j−1)/C(N, n).
/// For a tree (PRS), a smaller budget is the tree truncated to its first n scored responses in
/// generation order, so the value is read off that prefix.
public enum BestOfN {
    /// E[max of n of `values` drawn without replacement], n in 1...values.count.
    public static func expectedMax(_ values: [Double], n: Int) -> Double {
        expectedOrder(values, n: n, j: 1)
    }

    /// E[mean of the top min(k, n) of n draws without replacement].
    public static func expectedTopMean(_ values: [Double], n: Int, k: Int = 3) -> Double {
        let m = min(k, n)
        return (1...m).map { expectedOrder(values, n: n, j: $0) }.reduce(0, +) / Double(m)
    }

    /// E[j-th largest of a random n-subset].
    static func expectedOrder(_ values: [Double], n: Int, j: Int) -> Double {
        let v = values.sorted()
        let N = v.count
        precondition(n >= 1 && n <= N && j >= 1 && j <= n)
        let total = logChoose(N, n)
        var sum = 0.0
        for i in 1...N {
            let below = i - 1
            let above = N - i
            guard below >= n - j, above >= j - 1 else { continue }
            sum += v[i - 1] * exp(logChoose(below, n - j) + logChoose(above, j - 1) - total)
        }
        return sum
    }

    static func logChoose(_ n: Int, _ k: Int) -> Double {
        guard k >= 0, k <= n else { return -.infinity }
        return lgamma(Double(n + 1)) - lgamma(Double(k + 1)) - lgamma(Double(n - k + 1))
    }

    /// Best and top-3 mean of a tree truncated to its first `n` scored responses (generation order).
    public static func truncated(_ tree: Tree, n: Int) -> (best: Double, top3: Double)? {
        let first = tree.scoredResponses.sorted { $0.id < $1.id }.prefix(n).compactMap(\.reward)
        guard !first.isEmpty else { return nil }
        let top = first.sorted(by: >).prefix(3)
        return (top[top.startIndex], top.reduce(0, +) / Double(top.count))
    }

    /// The curve of one prompt's tree: for n in 1...budget, (expected best, expected top-3 mean).
    /// Independent strategies use the exact expectation; trees use truncation. `nil` past the
    /// responses that were scored.
    public static func curve(_ tree: Tree, independent: Bool, budget: Int) -> [(best: Double, top3: Double)?] {
        let values = tree.scoredResponses.compactMap(\.reward)
        return (1...max(1, budget)).map { n in
            if independent {
                guard n <= values.count else { return nil }
                return (expectedMax(values, n: n), expectedTopMean(values, n: n))
            }
            guard n <= values.count else { return nil }
            return truncated(tree, n: n)
        }
    }
}
