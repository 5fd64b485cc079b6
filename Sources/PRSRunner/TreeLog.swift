import Foundation
import PRSCore

/// `trees.jsonl` of a run directory: one finished tree a line, appended as items finish.
///
/// A line is written with one `write` and flushed, so a kill leaves at most a partial last
/// line, which `open` cuts off: the item it held is sampled again.
actor TreeLog {
    let url: URL
    private let handle: FileHandle
    private let encoder: JSONEncoder

    /// Opens (creating) the log and returns the trees already in it.
    static func open(_ url: URL) throws -> (TreeLog, [Tree]) {
        let fm = FileManager.default
        if !fm.fileExists(atPath: url.path) {
            guard fm.createFile(atPath: url.path, contents: nil) else {
                throw RunError("\(url.path): cannot create the file (is the directory writable?)")
            }
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw RunError("\(url.path): cannot read: \(error.localizedDescription)") }
        var trees: [Tree] = []
        var goodLength = 0
        var offset = 0
        var line = 0
        let decoder = JSONDecoder()
        for raw in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            line += 1
            let end = offset + raw.count
            let complete = end < data.count  // followed by a newline
            defer { offset = end + 1 }
            if raw.isEmpty { if complete { goodLength = end + 1 }; continue }
            do {
                trees.append(try decoder.decode(Tree.self, from: Data(raw)))
                if complete { goodLength = end + 1 } else { trees.removeLast() }
            } catch {
                if complete {
                    throw RunError("\(url.path):\(line): not a tree of this format (\(error)); move the file away to start over")
                }
            }
        }
        let handle: FileHandle
        do { handle = try FileHandle(forUpdating: url) } catch {
            throw RunError("\(url.path): cannot open for writing: \(error.localizedDescription)")
        }
        if goodLength < data.count { try handle.truncate(atOffset: UInt64(goodLength)) }
        try handle.seekToEnd()
        return (TreeLog(url: url, handle: handle), trees)
    }

    private init(url: URL, handle: FileHandle) {
        self.url = url
        self.handle = handle
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    func append(_ tree: Tree) throws {
        var data = try encoder.encode(tree)
        data.append(UInt8(ascii: "\n"))
        do {
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            throw RunError("\(url.path): cannot write item \(tree.id): \(error.localizedDescription)")
        }
    }

    func close() { try? handle.close() }
}

/// A run that cannot go on, with what to do about it.
public struct RunError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
