/// A run that cannot go on, with what to do about it.
public struct RunError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
