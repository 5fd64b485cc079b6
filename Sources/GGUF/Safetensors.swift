import Foundation

/// A safetensors file: an 8-byte little-endian header length N, N bytes of JSON
/// (`{NAME: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {String: String}}`),
/// then the tensors' raw little-endian bytes, offsets counted from the end of the header.
///
/// Reading checks the whole header before anything is used: every entry's dtype is known, its
/// shape's element count times the dtype's size equals its byte span, spans lie inside the data
/// and do not overlap, and together they cover the data. Errors name the file and the tensor.
public struct SafetensorsFile: Sendable {
    public enum DType: String, Sendable, CaseIterable {
        case f32 = "F32"
        case f16 = "F16"
        case bf16 = "BF16"
        case f64 = "F64"
        public var size: Int {
            switch self {
            case .f32: 4
            case .f16, .bf16: 2
            case .f64: 8
            }
        }
    }

    public struct Tensor: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Byte range within the data section.
        public var begin: Int
        public var end: Int
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let tensors: [String: Tensor]
    public let metadata: [String: String]
    let data: Data
    let dataStart: Int

    /// Largest header accepted (the format's own readers cap it at 100 MB).
    static let maxHeader = 100 << 20

    public init(path: String) throws {
        let bytes: Data
        do { bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
            throw GGUFError("cannot read: \(error.localizedDescription)", file: path)
        }
        try self.init(bytes: bytes, path: path)
    }

    public init(bytes: Data, path: String = "<memory>") throws {
        func fail(_ m: String) -> GGUFError { GGUFError(m, file: path) }
        guard bytes.count >= 8 else {
            throw fail("not a safetensors file: \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
        guard n > 1, n <= UInt64(Self.maxHeader), Int(n) <= bytes.count - 8 else {
            throw fail(
                "the header length \(n) does not fit the file of \(bytes.count) bytes (or exceeds \(Self.maxHeader))")
        }
        let headerBytes = bytes.subdata(in: (bytes.startIndex + 8)..<(bytes.startIndex + 8 + Int(n)))
        guard let object = try? JSONSerialization.jsonObject(with: headerBytes), let header = object as? [String: Any]
        else {
            throw fail("the header is not a JSON object")
        }
        let dataLength = bytes.count - 8 - Int(n)
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ must be an object of strings") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("__metadata__.\(k) must be a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw fail("tensor \(name): its entry is not an object") }
            guard let d = entry["dtype"] as? String else { throw fail("tensor \(name): dtype is missing") }
            guard let dtype = DType(rawValue: d) else {
                throw fail(
                    "tensor \(name): dtype \(d) is not supported (supported: "
                        + "\(DType.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
            guard let shapeValues = entry["shape"] as? [Any] else { throw fail("tensor \(name): shape is missing") }
            var shape: [Int] = []
            for s in shapeValues {
                guard let i = (s as? NSNumber)?.intValue, i >= 0, (s as? NSNumber)?.doubleValue == Double(i) else {
                    throw fail("tensor \(name): shape \(shapeValues) holds \(s), not a dimension")
                }
                shape.append(i)
            }
            guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                let begin = (offsets[0] as? NSNumber)?.intValue, let end = (offsets[1] as? NSNumber)?.intValue
            else {
                throw fail("tensor \(name): data_offsets must be [begin, end]")
            }
            guard begin >= 0, end >= begin, end <= dataLength else {
                throw fail(
                    "tensor \(name): data_offsets [\(begin), \(end)] fall outside the \(dataLength) bytes of data")
            }
            let count = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
            guard count != Int.max, count * dtype.size == end - begin else {
                throw fail(
                    "tensor \(name): shape \(shape) of \(d) needs "
                        + "\(count == Int.max ? "too many" : String(count * dtype.size)) bytes; data_offsets span "
                        + "\(end - begin)"
                )
            }
            tensors[name] = Tensor(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
        }
        // The spans tile the data: no overlap, no hole.
        var at = 0
        for t in tensors.values.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) where t.end > t.begin {
            guard t.begin >= at else {
                throw fail(
                    "tensor \(t.name): data_offsets [\(t.begin), \(t.end)] overlap the tensor before (which ends "
                        + "at \(at))"
                )
            }
            guard t.begin == at else {
                throw fail(
                    "tensor \(t.name): a gap of \(t.begin - at) bytes before its data_offsets [\(t.begin), \(t.end)]")
            }
            at = t.end
        }
        guard at == dataLength else {
            throw fail("the tensors cover \(at) bytes of data; the file holds \(dataLength) after the header")
        }
        self.path = path
        self.tensors = tensors
        self.metadata = metadata
        data = bytes
        dataStart = bytes.startIndex + 8 + Int(n)
    }

    /// The tensor's values as Float (F64 narrowed), row-major.
    public func floats(_ t: Tensor) -> [Float] {
        let count = t.elementCount
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
                let base = raw.baseAddress!.advanced(by: dataStart - data.startIndex + t.begin)
                for i in 0..<count {
                    switch t.dtype {
                    case .f32:
                        out[i] = Float(
                            bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
                        )
                    case .f16:
                        out[i] = Half.toFloat(
                            UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    case .bf16:
                        out[i] = Half.bf16ToFloat(
                            UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    case .f64:
                        out[i] = Float(
                            Double(
                                bitPattern: UInt64(
                                    littleEndian: base.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))))
                    }
                }
            }
            initialized = count
        }
    }
}

/// Writes a safetensors file of F32 (or F16) tensors, in the order given, with `__metadata__`.
public enum SafetensorsWriter {
    public struct Entry: Sendable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
        public var dtype: SafetensorsFile.DType
        public init(name: String, shape: [Int], values: [Float], dtype: SafetensorsFile.DType = .f32) {
            self.name = name
            self.shape = shape
            self.values = values
            self.dtype = dtype
        }
    }

    /// The file's bytes; the header is padded with spaces to a multiple of 8 bytes (as the
    /// reference writer does, so the data is aligned).
    public static func bytes(_ entries: [Entry], metadata: [String: String] = [:]) throws -> [UInt8] {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty { parts.append("\"__metadata__\":" + json(metadata)) }
        var offset = 0
        var body: [UInt8] = []
        for e in entries {
            guard e.shape.reduce(1, *) == e.values.count else {
                throw GGUFError(
                    "tensor \(e.name): shape \(e.shape) holds \(e.shape.reduce(1, *)) values; \(e.values.count) given")
            }
            guard e.dtype == .f32 || e.dtype == .f16 else {
                throw GGUFError("tensor \(e.name): writing \(e.dtype.rawValue) is not supported")
            }
            let size = e.values.count * e.dtype.size
            parts.append(
                "\(json(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + size)]}"
            )
            offset += size
            body.reserveCapacity(offset)
            for v in e.values {
                if e.dtype == .f32 {
                    let b = v.bitPattern.littleEndian
                    withUnsafeBytes(of: b) { body.append(contentsOf: $0) }
                } else {
                    let b = Half.fromFloat(v).littleEndian
                    withUnsafeBytes(of: b) { body.append(contentsOf: $0) }
                }
            }
        }
        header += parts.joined(separator: ",") + "}"
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out: [UInt8] = []
        let n = UInt64(h.count).littleEndian
        withUnsafeBytes(of: n) { out.append(contentsOf: $0) }
        return out + h + body
    }

    public static func write(_ entries: [Entry], metadata: [String: String] = [:], to path: String) throws {
        let b = try bytes(entries, metadata: metadata)
        try Data(b).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    static func json(_ s: String) -> String {
        let d = try! JSONSerialization.data(withJSONObject: [s], options: [.withoutEscapingSlashes])
        let a = String(decoding: d, as: UTF8.self)
        return String(a.dropFirst().dropLast())
    }

    static func json(_ m: [String: String]) -> String {
        let d = try! JSONSerialization.data(withJSONObject: m, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: d, as: UTF8.self)
    }
}
