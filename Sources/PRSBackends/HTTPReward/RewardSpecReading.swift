import Foundation
import PRSCore

extension RewardSpec {
    /// Parses a reward, reading each `http:` term's URL and options as the HTTP reward model will,
    /// so a bad option is a usage error before a run starts, not mid-run.
    public static func read(_ spec: String) throws -> RewardSpec {
        try parse(spec, checkHTTP: { _ = try HTTPRewardSpec.parse($0) })
    }
}
