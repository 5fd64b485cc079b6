extension Duration {
    /// The duration in seconds, as a Double (for logs, summaries and rates).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
