import Foundation
import GGUF
import Testing

/// The safetensors reader and writer: what is written reads back, and every malformed header is
/// refused with an error that names the file and the tensor at fault.
@Suite struct SafetensorsTests {
    /// A file from a raw header and data (the header is taken as given, unpadded).
    func file(_ header: String, data: [UInt8]) -> Data {
        var out = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        out.append(contentsOf: data)
        return out
    }

    func refusal(_ header: String, data: [UInt8] = Array(repeating: 0, count: 16)) -> String {
        do {
            _ = try SafetensorsFile(bytes: file(header, data: data), path: "bad.safetensors")
            return "accepted"
        } catch { return "\(error)" }
    }

    @Test func writtenTensorsReadBack() throws {
        let a: [Float] = [1, -2.5, 3.25, 0, .pi, -0.0]
        let b: [Float] = [0.5, 1.5, -65504, 1e-4]
        let bytes = try SafetensorsWriter.bytes(
            [
                .init(name: "x.lora_A.weight", shape: [2, 3], values: a),
                .init(name: "x.lora_B.weight", shape: [4, 1], values: b, dtype: .f16),
            ],
            metadata: ["format": "pt"])
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0, "the header is padded so the data is aligned")
        let f = try SafetensorsFile(bytes: Data(bytes))
        #expect(f.metadata == ["format": "pt"])
        let ta = try #require(f.tensors["x.lora_A.weight"])
        let tb = try #require(f.tensors["x.lora_B.weight"])
        #expect(ta.shape == [2, 3] && ta.dtype == .f32 && tb.dtype == .f16 && tb.shape == [4, 1])
        #expect(f.floats(ta).map(\.bitPattern) == a.map(\.bitPattern), "F32 values bit for bit")
        #expect(f.floats(tb) == b.map { Half.toFloat(Half.fromFloat($0)) }, "F16 values rounded to nearest")
    }

    @Test func bfloat16AndFloat64AreRead() throws {
        // 1.0 as bf16 is 0x3F80; 2.0 as f64.
        let data: [UInt8] = [0x80, 0x3F, 0, 0, 0, 0, 0, 0, 0, 0x40]
        let header =
            #"{"a":{"dtype":"BF16","shape":[1],"data_offsets":[0,2]},"b":{"dtype":"F64","shape":[1],"data_offsets":[2,10]}}"#
        let f = try SafetensorsFile(bytes: file(header, data: data))
        #expect(f.floats(f.tensors["a"]!) == [1] && f.floats(f.tensors["b"]!) == [2])
    }

    @Test func malformedHeadersAreRefusedNamingTheTensor() {
        #expect(
            refusal(#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#).contains(
                "tensor w: shape [2, 2] of F32 needs 16 bytes; data_offsets span 12"))
        #expect(
            refusal(#"{"w":{"dtype":"I8","shape":[16],"data_offsets":[0,16]}}"#).contains(
                "tensor w: dtype I8 is not supported"))
        #expect(
            refusal(#"{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#).contains(
                "tensor w: data_offsets [0, 32] fall outside the 16 bytes"))
        #expect(
            refusal(
                #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
            )
            .contains("tensor b: data_offsets [8, 16] overlap"))
        #expect(
            refusal(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#
            )
            .contains("tensor b: a gap of 4 bytes"))
        #expect(
            refusal(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#).contains(
                "the tensors cover 8 bytes of data; the file holds 16"))
        #expect(refusal(#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}}"#).contains("tensor w: shape"))
        #expect(refusal(#"{"w":{"dtype":"F32","shape":[4]}}"#).contains("tensor w: data_offsets must be [begin, end]"))
        #expect(refusal("[1, 2]").contains("the header is not a JSON object"))
        #expect(refusal("{}").contains("bad.safetensors"), "errors name the file")
        // A header length past the end of the file.
        var short = Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0])
        short.append(contentsOf: Array("{}".utf8))
        #expect((try? SafetensorsFile(bytes: short)) == nil)
    }
}
