/// A GGUF file that cannot be read, with where and why.
public struct GGUFError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The file, when reading from one.
    public var file: String?
    /// Byte offset of the problem, when known.
    public var offset: Int?
    public var message: String

    public init(_ message: String, offset: Int? = nil, file: String? = nil) {
        self.message = message
        self.offset = offset
        self.file = file
    }

    public var description: String {
        var s = file.map { "\($0): " } ?? ""
        if let offset { s += "at byte \(offset): " }
        return s + message
    }
}
