import GGUF

/// Builds GGUF bytes field by field, so tests can write files that no writer would.
struct RawGGUF {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func str(_ s: String) {
        u64(UInt64(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes.append(contentsOf: Array("GGUF".utf8))
        u32(version)
        u64(tensors)
        u64(kvs)
    }
    mutating func kvU32(_ key: String, _ v: UInt32) {
        str(key)
        u32(4)
        u32(v)
    }
    mutating func kvString(_ key: String, _ v: String) {
        str(key)
        u32(8)
        str(v)
    }
    mutating func tensorInfo(_ name: String, dims: [UInt64], type: UInt32 = 0, offset: UInt64 = 0) {
        str(name)
        u32(UInt32(dims.count))
        dims.forEach { u64($0) }
        u32(type)
        u64(offset)
    }
    mutating func padData(_ alignment: Int = 32, thenBytes n: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
        bytes.append(contentsOf: [UInt8](repeating: 0x3C, count: n))
    }
}

func parse(_ bytes: [UInt8]) throws -> GGUFContent {
    try bytes.withUnsafeBytes { try GGUFContent.parse($0) }
}

/// A small valid file: three metadata entries and two F32 tensors.
func smallValidFile() throws -> [UInt8] {
    var w = GGUFWriter()
    w.metadata = [
        ("general.architecture", .string("llama")), ("llama.block_count", .uint32(2)),
        ("tokenizer.ggml.tokens", .array(.strings(["a", "b", "<0x0A>"]))),
    ]
    w.tensors = [
        .init(name: "a", dimensions: [4, 2], type: .f32, data: try Quantize.encode((0..<8).map(Float.init), as: .f32)),
        .init(
            name: "b", dimensions: [32], type: .q8_0,
            data: try Quantize.encode((0..<32).map { Float($0) / 8 }, as: .q8_0)),
    ]
    return try w.encode()
}
