import Foundation
import LMEngine
import Testing

@Suite struct SamplerTests {
    let logits: [Float] = [2.0, 1.5, 1.0, 0.5, 0.0, -1.0, -3.0, -6.0]

    func draw(_ settings: SamplerSettings, _ logits: [Float]) -> SampledToken {
        var sampler = Sampler(settings)
        var l = logits
        return l.withUnsafeMutableBufferPointer { sampler.sample($0, topLogprobs: 3) }
    }

    /// A forced choice: only the allowed tokens can come out, and `top` lists each of them with its
    /// log-probability under the whole distribution (what a judge's expected rating is made of).
    @Test func aForcedChoicePicksOnlyAllowedTokensAndReportsTheirFullDistributionLogprobs() {
        let logZ = log(logits.map { exp(Double($0)) }.reduce(0, +))
        var greedy = SamplerSettings(temperature: 0)
        greedy.allowed = [6, 3, 4]
        let g = draw(greedy, logits)
        #expect(g.token == 3, "the most likely allowed token, not the most likely token")
        #expect(g.top.map(\.token) == [3, 4, 6])
        for (t, lp) in g.top { #expect(abs(Double(lp) - (Double(logits[Int(t)]) - logZ)) < 1e-5) }
        var counts: [Int32: Int] = [:]
        for i in 0..<4000 {
            var s = SamplerSettings(temperature: 1, seed: UInt64(i) &* 0x9E37_79B9)
            s.allowed = [6, 3, 4]
            counts[draw(s, logits).token, default: 0] += 1
        }
        #expect(Set(counts.keys).isSubset(of: [3, 4, 6]))
        // p(3) : p(4) = e^0.5 within sampling noise (about 0.62 of the draws are 3).
        let share3 = Double(counts[3] ?? 0) / 4000
        #expect(abs(share3 - exp(0.5) / (exp(0.5) + 1 + exp(-6))) < 0.03)
    }

    /// 20,000 seeded draws against the computed distribution: a chi-square test at p ≈ 0.001.
    @Test(arguments: [
        SamplerSettings(temperature: 1),
        SamplerSettings(temperature: 0.7, topK: 4),
        SamplerSettings(temperature: 1.3, topP: 0.8),
        SamplerSettings(temperature: 1, minP: 0.2),
        SamplerSettings(temperature: 0.8, topK: 6, topP: 0.95, minP: 0.05),
    ])
    func drawsFollowTheDistribution(settings: SamplerSettings) {
        let expected = Sampler(settings).distribution(logits.withUnsafeBufferPointer { $0 })
        let n = 20_000
        var counts: [Int32: Int] = [:]
        for i in 0..<n {
            var s = settings
            s.seed = UInt64(i) &* 0x9E37_79B9
            counts[draw(s, logits).token, default: 0] += 1
        }
        let allowed = Set(expected.map(\.0))
        #expect(Set(counts.keys).isSubset(of: allowed), "no token outside the truncated set")
        var chi2 = 0.0
        for (t, p) in expected {
            let e = p * Double(n)
            let o = Double(counts[t] ?? 0)
            chi2 += (o - e) * (o - e) / e
        }
        // Critical values of chi-square at 0.001 for up to 7 degrees of freedom.
        let critical = [10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32][max(0, expected.count - 2)]
        #expect(chi2 < critical, "chi² \(chi2) over \(expected.count) tokens")
    }

    @Test func truncationKeepsWhatItShould() {
        let d = Sampler(SamplerSettings(temperature: 1, topK: 3)).distribution(logits.withUnsafeBufferPointer { $0 })
        #expect(d.map(\.0) == [0, 1, 2])
        let total = exp(2.0) + exp(1.5) + exp(1.0)
        #expect(abs(d[0].1 - exp(2.0) / total) < 1e-9)
        let minP = Sampler(SamplerSettings(temperature: 1, minP: 0.5)).distribution(
            logits.withUnsafeBufferPointer { $0 })
        #expect(minP.map(\.0) == [0, 1], "e^-0.5 ≥ 0.5 > e^-1")
    }

    @Test func greedyAndSeedsAreReproducible() {
        #expect(draw(SamplerSettings(temperature: 0), logits).token == 0)
        let a = (0..<50).map { draw(SamplerSettings(temperature: 1, seed: UInt64($0)), logits).token }
        let b = (0..<50).map { draw(SamplerSettings(temperature: 1, seed: UInt64($0)), logits).token }
        #expect(a == b)
        #expect(Set(a).count > 1)
    }

    @Test func logprobsAreOfTheFullDistribution() {
        let s = draw(SamplerSettings(temperature: 0), logits)
        let z = log(logits.map { exp(Double($0)) }.reduce(0, +))
        #expect(abs(Double(s.logprob) - (2.0 - z)) < 1e-5)
        #expect(s.top.map(\.token) == [0, 1, 2])
    }

    @Test func penaltiesLowerTokensAlreadyGenerated() {
        var sampler = Sampler(SamplerSettings(temperature: 0, presencePenalty: 0.6, frequencyPenalty: 0.1))
        var first = logits
        let t1 = first.withUnsafeMutableBufferPointer { sampler.sample($0) }.token
        var second = logits
        let t2 = second.withUnsafeMutableBufferPointer { sampler.sample($0) }.token
        #expect(t1 == 0)
        #expect(t2 == 1, "2.0 − 0.7 falls below 1.5")
        #expect(abs(second[0] - 1.3) < 1e-6)
        var rep = Sampler(SamplerSettings(temperature: 0, repetitionPenalty: 2))
        var l = logits
        _ = l.withUnsafeMutableBufferPointer { rep.sample($0) }
        var l2 = logits
        _ = l2.withUnsafeMutableBufferPointer { rep.sample($0) }
        #expect(l2[0] == 1.0, "positive logits are divided")
    }

    /// Top-k over a large vocabulary takes a partial selection; it must keep exactly the k largest.
    @Test func topKOverALargeVocabularyKeepsTheKLargest() {
        var rng = SplitMix64(seed: 99)
        let big = (0..<5000).map { _ in Float(Int(rng.next() % 20000)) / 1000 - 10 }
        for k in [1, 5, 50, 300] {
            let d = Sampler(SamplerSettings(temperature: 1, topK: k)).distribution(big.withUnsafeBufferPointer { $0 })
            let expected = big.indices.sorted { big[$0] > big[$1] || (big[$0] == big[$1] && $0 < $1) }.prefix(k).map {
                Int32($0)
            }
            #expect(d.map(\.0) == expected, "k = \(k)")
        }
    }

    /// Over the whole vocabulary (no top-k or top-p) the draw takes a vectorised pass of its own;
    /// with the same uniform number it must land on the token the reference distribution's CDF
    /// gives, but for draws within float rounding of a boundary (allowed: 1 in 500).
    @Test(arguments: [Float(0), 0.05])
    func theWholeVocabularyDrawAgreesWithTheDistribution(minP: Float) {
        var rng = SplitMix64(seed: 7)
        let big = (0..<5003).map { _ in Float(Int(rng.next() % 16000)) / 1000 - 8 }
        let settings = SamplerSettings(temperature: 0.9, minP: minP)
        let dist = Sampler(settings).distribution(big.withUnsafeBufferPointer { $0 })
        var differ = 0
        for seed in 0..<2000 as Range<UInt64> {
            var s = settings
            s.seed = seed
            var sampler = Sampler(s)
            var l = big
            let got = l.withUnsafeMutableBufferPointer { sampler.sample($0) }.token
            var r = SplitMix64(seed: seed)
            let u = Double(r.next() >> 11) / Double(1 << 53)
            var cum = 0.0
            var want = dist.last!.0
            for (t, p) in dist {
                cum += p
                if u < cum {
                    want = t
                    break
                }
            }
            if got != want { differ += 1 }
            #expect(dist.contains { $0.0 == got }, "token \(got) is outside min-p's set")
        }
        #expect(differ <= 4, "\(differ) of 2000 draws differ")
    }
}
