/// Percentile bootstrap over prompts: resample the per-prompt values with replacement and take
/// the 2.5th and 97.5th percentiles of the resampled means (or of any statistic). Seeded, so a
/// report is reproducible.
public struct Bootstrap: Sendable {
    public var resamples: Int
    public var seed: UInt64

    public init(resamples: Int = 1000, seed: UInt64 = 0) {
        self.resamples = resamples
        self.seed = seed
    }

    /// (low, high) of the 95% interval of `statistic` over resamples of `values`.
    public func interval<T>(
        _ values: [T], level: Double = 0.95, _ statistic: ([T]) -> Double
    ) -> (low: Double, high: Double)? {
        guard !values.isEmpty else { return nil }
        var rng = SplitMix64(seed: seed)
        var stats: [Double] = []
        stats.reserveCapacity(resamples)
        var sample = values
        for _ in 0..<resamples {
            for i in sample.indices { sample[i] = values[Int(rng.next() % UInt64(values.count))] }
            stats.append(statistic(sample))
        }
        stats.sort()
        let alpha = (1 - level) / 2
        func q(_ p: Double) -> Double {
            let x = p * Double(stats.count - 1)
            let lo = Int(x.rounded(.down))
            let hi = min(lo + 1, stats.count - 1)
            return stats[lo] + (stats[hi] - stats[lo]) * (x - Double(lo))
        }
        return (q(alpha), q(1 - alpha))
    }

    public func meanInterval(_ values: [Double]) -> (low: Double, high: Double)? {
        interval(values) { $0.reduce(0, +) / Double($0.count) }
    }
}

/// A seedable generator for resampling: SplitMix64's mix (`Seeds.splitMix`) of a counter.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 1
        return Seeds.splitMix(state)
    }
}
