import Foundation

/// Where a run stands; passed to the progress callback after every finished item.
public struct RunProgress: Sendable {
    public var total: Int
    /// Items finished in this process.
    public var done: Int
    /// Items finished by an earlier, interrupted process and skipped now.
    public var resumed: Int
    public var failed: Int
    public var inFlight: Int
    public var nodes: Int
    public var completionTokens: Int
    public var elapsedSeconds: Double

    /// Items per second in this process.
    public var rate: Double { elapsedSeconds > 0 ? Double(done + failed) / elapsedSeconds : 0 }
    /// Seconds left at the current rate; `nil` before the first item finishes.
    public var etaSeconds: Double? {
        let left = total - resumed - done - failed
        guard rate > 0 else { return nil }
        return Double(max(0, left)) / rate
    }

    /// `12/40 items · 0.8/s · ETA 35s · 96 nodes · 41 tok/s · 1 failed`
    public var line: String {
        var parts = ["\(resumed + done + failed)/\(total) items"]
        parts.append(String(format: "%.2f/s", rate))
        parts.append("ETA " + (etaSeconds.map(Self.duration) ?? "?"))
        parts.append("\(nodes) nodes")
        if elapsedSeconds > 0 { parts.append(String(format: "%.0f tok/s", Double(completionTokens) / elapsedSeconds)) }
        if failed > 0 { parts.append("\(failed) failed") }
        return parts.joined(separator: " · ")
    }

    /// "45s", "3m05s", "1h02m".
    public static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t >= 3600 { return "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m" }
        if t >= 60 { return "\(t / 60)m\(String(format: "%02d", t % 60))s" }
        return "\(t)s"
    }
}
