import PRSCore
import Testing

@Suite struct ComparisonReadingTests {
    @Test func namesTheLeaderItsIntervalAndWhetherItSeparates() throws {
        let clear = try #require(
            ComparisonReading.sentence([("rand", [0.1, 0.2, 0.1, 0.2]), ("prs", [0.9, 0.8, 0.85, 0.95])], budget: 8))
        #expect(clear.contains("prs had the highest mean best reward, 0.875"))
        #expect(clear.contains("against rand's 0.150") && clear.contains("do not overlap, so prs wins"))
        let close = try #require(
            ComparisonReading.sentence([("rand", [0.1, 0.9, 0.5]), ("prs", [0.2, 0.8, 0.6])], budget: 4))
        #expect(close.contains("intervals overlap"))
        let baseline = try #require(ComparisonReading.sentence([("rand", [0.9]), ("prs", [0.1])], budget: 2))
        #expect(baseline.contains("the baseline rand had the highest"))
        #expect(ComparisonReading.sentence([("rand", [0.5])], budget: 2) == nil)
    }
}
