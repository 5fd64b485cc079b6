import Foundation

/// Writes GGUF v3 files: metadata, then tensor infos, then aligned tensor data.
///
/// Tensors are given as bytes already in their type (copy a source tensor's blocks as they
/// are, or encode floats with `Quantize.encode`). The file is written to a temporary name
/// and renamed into place, so a failed write never leaves a half file at `path`.
public struct GGUFWriter {
    public struct Tensor {
        public var name: String
        /// Fastest-varying first, as ggml's `ne`.
        public var dimensions: [Int]
        public var type: TensorType
        public var data: [UInt8]
        public init(name: String, dimensions: [Int], type: TensorType, data: [UInt8]) {
            self.name = name
            self.dimensions = dimensions
            self.type = type
            self.data = data
        }
    }

    public var metadata: [(key: String, value: MetadataValue)] = []
    public var tensors: [Tensor] = []
    public var alignment = 32

    public init() {}

    /// The file's bytes.
    public func encode() throws -> [UInt8] {
        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) {
            u64(UInt64(s.utf8.count))
            out.append(contentsOf: s.utf8)
        }
        func scalar(_ v: MetadataValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out.append(contentsOf: $0) }
            case .uint32(let x): u32(x)
            case .int32(let x): u32(UInt32(bitPattern: x))
            case .uint64(let x): u64(x)
            case .int64(let x): u64(UInt64(bitPattern: x))
            case .float32(let x): u32(x.bitPattern)
            case .float64(let x): u64(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let x): str(x)
            case .array: break
            }
        }
        var names: Set<String> = []
        for t in tensors {
            guard names.insert(t.name).inserted else { throw GGUFError("duplicate tensor name \(t.name)") }
            let n = t.dimensions.reduce(1, *)
            guard (1...4).contains(t.dimensions.count), t.dimensions.allSatisfy({ $0 > 0 }),
                t.dimensions[0] % t.type.blockSize == 0, t.type.byteCount(elements: n) == t.data.count
            else {
                throw GGUFError(
                    "tensor \(t.name): \(t.data.count) bytes do not match \(t.type) of shape \(t.dimensions)")
            }
        }
        var meta = metadata.filter { $0.key != "general.alignment" }
        if alignment != 32 { meta.append(("general.alignment", .uint32(UInt32(alignment)))) }
        out.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(meta.count))
        for (key, value) in meta {
            str(key)
            u32(value.type.rawValue)
            if case .array(let a) = value {
                u32(a.elementType.rawValue)
                u64(UInt64(a.count))
                switch a {
                case .strings(let xs): xs.forEach(str)
                case .floats(let xs): xs.forEach { u32($0.bitPattern) }
                case .doubles(let xs): xs.forEach { u64($0.bitPattern) }
                case .uint64s(let xs): xs.forEach(u64)
                case .bools(let xs): xs.forEach { out.append($0 ? 1 : 0) }
                case .integers(let xs, let t):
                    for x in xs {
                        switch t {
                        case .uint8: scalar(.uint8(UInt8(truncatingIfNeeded: x)))
                        case .int8: scalar(.int8(Int8(truncatingIfNeeded: x)))
                        case .uint16: scalar(.uint16(UInt16(truncatingIfNeeded: x)))
                        case .int16: scalar(.int16(Int16(truncatingIfNeeded: x)))
                        case .uint32: scalar(.uint32(UInt32(truncatingIfNeeded: x)))
                        case .int32: scalar(.int32(Int32(truncatingIfNeeded: x)))
                        default: scalar(.int64(x))
                        }
                    }
                }
            } else {
                scalar(value)
            }
        }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset = (offset + t.data.count + alignment - 1) / alignment * alignment
        }
        for (t, o) in zip(tensors, offsets) {
            str(t.name)
            u32(UInt32(t.dimensions.count))
            t.dimensions.forEach { u64(UInt64($0)) }
            u32(t.type.rawValue)
            u64(UInt64(o))
        }
        func pad() { while out.count % alignment != 0 { out.append(0) } }
        pad()
        for t in tensors {
            out.append(contentsOf: t.data)
            pad()
        }
        return out
    }

    /// Writes the file atomically (temporary file, then rename).
    public func write(to path: String) throws {
        let bytes = try encode()
        let url = URL(fileURLWithPath: path)
        do { try Data(bytes).write(to: url, options: .atomic) } catch {
            throw GGUFError("cannot write: \(error.localizedDescription)", file: path)
        }
    }
}
