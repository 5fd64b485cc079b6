import Foundation

/// A training run's state after a step: the trainable parameters, AdamW's moments, the DPO
/// reference log-probabilities and the log so far. One file, written to a temporary name and
/// renamed into place, so a kill during the write leaves the previous checkpoint whole.
///
/// Layout: `PRSCKPT1`, a little-endian UInt64 header length, the JSON header, then the
/// parameters, m and v as F32 and the reference as F64, each `count` values as the header says.
struct Checkpoint {
    var step: Int
    var parameters: [Float]
    var m: [Float]
    var v: [Float]
    var reference: [Double]
    var log: [StepReport]

    struct Header: Codable {
        var fingerprint: String
        var step: Int
        var parameters: Int
        var reference: Int
        var log: [StepReport]
    }

    static let magic = Array("PRSCKPT1".utf8)

    func write(_ path: String, fingerprint: String) throws {
        let header = try JSONEncoder().encode(
            Header(
                fingerprint: fingerprint, step: step, parameters: parameters.count,
                reference: reference.count, log: log))
        var data = Data(Self.magic)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(header)
        for a in [parameters, m, v] { a.withUnsafeBytes { data.append(contentsOf: $0) } }
        reference.withUnsafeBytes { data.append(contentsOf: $0) }
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw TrainingError("\(path): cannot write the checkpoint: \(error.localizedDescription)")
        }
    }

    /// The checkpoint at `path` if there is one; an error if it belongs to other settings or data.
    static func load(_ path: String, fingerprint: String, parameters count: Int) throws -> Checkpoint? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError("\(path): cannot read the checkpoint")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else {
            throw TrainingError("\(path): not a prs training checkpoint")
        }
        let headerLength = bytes[8..<16].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard 16 + headerLength <= bytes.count,
            let header = try? JSONDecoder().decode(Header.self, from: Data(bytes[16..<(16 + headerLength)]))
        else {
            throw TrainingError("\(path): the checkpoint's header is damaged; delete it to start over")
        }
        guard header.fingerprint == fingerprint else {
            throw TrainingError(
                "\(path): a checkpoint of other settings or data; delete it (or choose another --out) to start over")
        }
        guard header.parameters == count else {
            throw TrainingError("\(path): the checkpoint holds \(header.parameters) parameters, the model \(count)")
        }
        let floats = 3 * count * 4
        let total = 16 + headerLength + floats + header.reference * 8
        guard bytes.count == total else {
            throw TrainingError(
                "\(path): the checkpoint is \(bytes.count) bytes, expected \(total); delete it to start over")
        }
        var offset = 16 + headerLength
        func floatArray(_ n: Int) -> [Float] {
            defer { offset += n * 4 }
            return bytes.withUnsafeBytes { raw in
                (0..<n).map { raw.loadUnaligned(fromByteOffset: offset + $0 * 4, as: Float.self) }
            }
        }
        let p = floatArray(count)
        let m = floatArray(count)
        let v = floatArray(count)
        let r: [Double] = bytes.withUnsafeBytes { raw in
            (0..<header.reference).map { raw.loadUnaligned(fromByteOffset: offset + $0 * 8, as: Double.self) }
        }
        return Checkpoint(step: header.step, parameters: p, m: m, v: v, reference: r, log: header.log)
    }
}
