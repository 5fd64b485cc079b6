#if canImport(Glibc)
    import Glibc
#else
    import Foundation  // re-exports the C library (mmap, open, stat) on Apple platforms
#endif

/// A tensor's name, shape, type and place in the data section.
public struct TensorInfo: Sendable, Hashable {
    public var name: String
    /// Dimensions, fastest-varying first (ggml's `ne`): a weight `(out, in)` is `[in, out]`.
    public var dimensions: [Int]
    public var type: TensorType
    /// Offset from the start of the data section.
    public var offset: Int
    public var elementCount: Int
    public var byteCount: Int
}

/// A parsed GGUF file (v2 or v3): metadata, tensor infos, and the tensor bytes in place.
///
/// Layout (ggml's GGUF specification): magic `GGUF`, u32 version, u64 tensor count, u64
/// metadata count; metadata as (string key, u32 type, value); tensor infos as (string name,
/// u32 dims, u64 × dims, u32 type, u64 offset); padding to `general.alignment` (default 32);
/// the data section. Every count, length, dimension and offset is checked against the file's
/// size before it is used, so a hostile file gives a `GGUFError`, never a crash or a huge allocation.
public struct GGUFContent: Sendable {
    public var version: UInt32
    /// Metadata in file order.
    public var metadata: [(key: String, value: MetadataValue)]
    public var tensors: [TensorInfo]
    public var alignment: Int
    /// Offset of the data section in the file.
    public var dataOffset: Int

    public subscript(key: String) -> MetadataValue? { metadata.first { $0.key == key }?.value }

    static let maxDimensions = 4
    static let maxAlignment = 1 << 20

    /// Parses the header, metadata and tensor infos of `bytes` and checks every tensor lies in the data section.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> GGUFContent {
        var r = ByteReader(bytes)
        let magic = try r.read(UInt32.self, "the magic number")
        guard magic == 0x4655_4747 else {
            throw GGUFError("not a GGUF file (the first four bytes are not \"GGUF\")", offset: 0)
        }
        let version = try r.read(UInt32.self, "the version")
        guard version == 2 || version == 3 else {
            throw GGUFError("GGUF version \(version) is not supported (2 and 3 are)", offset: 4)
        }
        let tensorCount = try r.read(UInt64.self, "the tensor count")
        let kvCount = try r.read(UInt64.self, "the metadata count")
        // Each entry needs at least a string length, a type and a value; bound counts by the bytes left.
        guard kvCount <= UInt64(r.remaining / 13) else {
            throw GGUFError("metadata count \(kvCount) cannot fit in the \(r.remaining) bytes that remain", offset: 16)
        }
        guard tensorCount <= UInt64(r.remaining / 24) else {
            throw GGUFError("tensor count \(tensorCount) cannot fit in the \(r.remaining) bytes that remain", offset: 8)
        }
        var metadata: [(String, MetadataValue)] = []
        var seenKeys: Set<String> = []
        metadata.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let at = r.offset
            let key = try r.readString("metadata key #\(i)")
            guard seenKeys.insert(key).inserted else {
                throw GGUFError("duplicate metadata key \"\(key)\"", offset: at)
            }
            let value = try readValue(&r, key: key)
            metadata.append((key, value))
        }
        var alignment = 32
        if let a = metadata.first(where: { $0.0 == "general.alignment" })?.1 {
            guard case .uint32(let v) = a else {
                throw GGUFError("general.alignment must be a uint32, found \(a.typeDescription)")
            }
            guard v > 0, v & (v - 1) == 0, Int(v) <= maxAlignment else {
                throw GGUFError("general.alignment \(v) must be a power of two between 1 and \(maxAlignment)")
            }
            alignment = Int(v)
        }
        var infos: [TensorInfo] = []
        var names: Set<String> = []
        infos.reserveCapacity(Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let at = r.offset
            let name = try r.readString("the name of tensor #\(i)")
            guard names.insert(name).inserted else { throw GGUFError("duplicate tensor name \"\(name)\"", offset: at) }
            let nDims = try r.read(UInt32.self, "the dimension count of \(name)")
            guard nDims >= 1, nDims <= UInt32(maxDimensions) else {
                throw GGUFError(
                    "tensor \(name) has \(nDims) dimensions (1 to \(maxDimensions) are allowed)", offset: at)
            }
            var dims: [Int] = []
            var elements = 1
            for d in 0..<Int(nDims) {
                let v = try r.read(UInt64.self, "dimension \(d) of \(name)")
                guard v >= 1, v <= UInt64(Int64.max) else {
                    throw GGUFError(
                        "tensor \(name) has dimension \(d) of \(Int64(bitPattern: v)) (must be positive)", offset: at)
                }
                let (p, overflow) = elements.multipliedReportingOverflow(by: Int(v))
                guard !overflow else { throw GGUFError("tensor \(name): the element count overflows", offset: at) }
                elements = p
                dims.append(Int(v))
            }
            let rawType = try r.read(UInt32.self, "the type of \(name)")
            guard let type = TensorType(rawValue: rawType) else {
                throw GGUFError(
                    "tensor \(name) has ggml type \(rawType), which prs does not read (F32, F16, BF16, Q4_0, Q4_1, "
                        + "Q5_0, Q8_0, Q4_K, Q5_K, Q6_K)",
                    offset: at)
            }
            guard dims[0] % type.blockSize == 0 else {
                throw GGUFError(
                    "tensor \(name): \(type) needs rows that are a multiple of \(type.blockSize) elements, found "
                        + "\(dims[0])",
                    offset: at)
            }
            guard let bytes = type.byteCount(elements: elements) else {
                throw GGUFError("tensor \(name): the byte size of \(elements) \(type) elements overflows", offset: at)
            }
            let offset = try r.read(UInt64.self, "the offset of \(name)")
            guard offset <= UInt64(Int.max), Int(offset) % alignment == 0 else {
                throw GGUFError(
                    "tensor \(name) starts at data offset \(offset), not a multiple of the alignment \(alignment)",
                    offset: at)
            }
            infos.append(
                TensorInfo(
                    name: name, dimensions: dims, type: type, offset: Int(offset), elementCount: elements,
                    byteCount: bytes))
        }
        let padded = (r.offset + alignment - 1) / alignment * alignment
        guard padded <= bytes.count || infos.isEmpty else {
            throw GGUFError("file ends before its data section", offset: r.offset)
        }
        let dataOffset = min(padded, bytes.count)
        let dataSize = bytes.count - dataOffset
        for t in infos {
            guard t.offset <= dataSize, t.byteCount <= dataSize - t.offset else {
                throw GGUFError(
                    "tensor \(t.name) (\(t.byteCount) bytes at data offset \(t.offset)) runs past the end of the "
                        + "file (data section: \(dataSize) bytes)"
                )
            }
        }
        let sorted = infos.sorted { $0.offset < $1.offset }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw GGUFError("tensors \(a.name) and \(b.name) overlap in the data section")
        }
        return GGUFContent(
            version: version, metadata: metadata, tensors: infos, alignment: alignment, dataOffset: dataOffset)
    }

    static func readValue(_ r: inout ByteReader, key: String) throws -> MetadataValue {
        let at = r.offset
        let raw = try r.read(UInt32.self, "the type of \(key)")
        guard let type = MetadataValue.ValueType(rawValue: raw) else {
            throw GGUFError("metadata \(key) has unknown value type \(raw)", offset: at)
        }
        if type == .array {
            let elemRaw = try r.read(UInt32.self, "the element type of \(key)")
            guard let elem = MetadataValue.ValueType(rawValue: elemRaw) else {
                throw GGUFError("metadata \(key) is an array of unknown value type \(elemRaw)", offset: at)
            }
            guard elem != .array else {
                throw GGUFError("metadata \(key) is an array of arrays, which GGUF readers do not accept", offset: at)
            }
            let count = try r.read(UInt64.self, "the length of \(key)")
            let minSize = elem.fixedSize ?? 8
            guard count <= UInt64(r.remaining / minSize) else {
                throw GGUFError(
                    "metadata \(key) claims \(count) elements but only \(r.remaining) bytes remain", offset: at)
            }
            let n = Int(count)
            switch elem {
            case .string:
                var a: [String] = []
                a.reserveCapacity(n)
                for i in 0..<n { a.append(try r.readString("\(key)[\(i)]")) }
                return .array(.strings(a))
            case .float32:
                var a: [Float] = []
                a.reserveCapacity(n)
                for i in 0..<n { a.append(try r.readF32("\(key)[\(i)]")) }
                return .array(.floats(a))
            case .float64:
                var a: [Double] = []
                a.reserveCapacity(n)
                for i in 0..<n { a.append(try r.readF64("\(key)[\(i)]")) }
                return .array(.doubles(a))
            case .bool:
                var a: [Bool] = []
                a.reserveCapacity(n)
                for i in 0..<n { a.append(try r.read(UInt8.self, "\(key)[\(i)]") != 0) }
                return .array(.bools(a))
            case .uint64:
                var a: [UInt64] = []
                a.reserveCapacity(n)
                for i in 0..<n { a.append(try r.read(UInt64.self, "\(key)[\(i)]")) }
                return .array(.uint64s(a))
            default:
                var a: [Int64] = []
                a.reserveCapacity(n)
                for i in 0..<n { a.append(try readInteger(&r, elem, "\(key)[\(i)]")) }
                return .array(.integers(a, elem))
            }
        }
        switch type {
        case .uint8: return .uint8(try r.read(UInt8.self, key))
        case .int8: return .int8(try r.read(Int8.self, key))
        case .uint16: return .uint16(try r.read(UInt16.self, key))
        case .int16: return .int16(try r.read(Int16.self, key))
        case .uint32: return .uint32(try r.read(UInt32.self, key))
        case .int32: return .int32(try r.read(Int32.self, key))
        case .uint64: return .uint64(try r.read(UInt64.self, key))
        case .int64: return .int64(try r.read(Int64.self, key))
        case .float32: return .float32(try r.readF32(key))
        case .float64: return .float64(try r.readF64(key))
        case .bool:
            let b = try r.read(UInt8.self, key)
            guard b <= 1 else { throw GGUFError("metadata \(key) is a bool with byte value \(b)", offset: at) }
            return .bool(b == 1)
        case .string: return .string(try r.readString(key))
        case .array: fatalError("handled above")
        }
    }

    static func readInteger(_ r: inout ByteReader, _ t: MetadataValue.ValueType, _ what: String) throws -> Int64 {
        switch t {
        case .uint8: Int64(try r.read(UInt8.self, what))
        case .int8: Int64(try r.read(Int8.self, what))
        case .uint16: Int64(try r.read(UInt16.self, what))
        case .int16: Int64(try r.read(Int16.self, what))
        case .uint32: Int64(try r.read(UInt32.self, what))
        case .int32: Int64(try r.read(Int32.self, what))
        default: try r.read(Int64.self, what)
        }
    }
}

/// A GGUF file mapped into memory read-only; tensor bytes are used in place.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let content: GGUFContent
    private let base: UnsafeRawPointer?
    private let size: Int

    /// Maps and parses `path`. Errors name the file.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw GGUFError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw GGUFError("cannot stat: \(String(cString: strerror(errno)))", file: path)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw GGUFError("not a regular file", file: path) }
        size = Int(st.st_size)
        if size == 0 {
            base = nil
        } else {
            let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
            guard let p, p != MAP_FAILED else {
                throw GGUFError("cannot map: \(String(cString: strerror(errno)))", file: path)
            }
            base = UnsafeRawPointer(p)
        }
        do {
            content = try GGUFContent.parse(UnsafeRawBufferPointer(start: base, count: size))
        } catch var e as GGUFError {
            if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
            e.file = path
            throw e
        }
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    public var fileSize: Int { size }

    public func tensor(_ name: String) -> TensorInfo? { content.tensors.first { $0.name == name } }

    /// The raw bytes of a tensor, in the mapping (valid while this object lives).
    public func bytes(of t: TensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: base! + content.dataOffset + t.offset, count: t.byteCount)
    }

    /// A tensor's values as F32.
    public func floats(_ t: TensorInfo) -> [Float] {
        Dequantize.toFloat(bytes(of: t), type: t.type, count: t.elementCount)
    }
}
