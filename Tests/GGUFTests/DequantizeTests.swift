import Foundation
import GGUF
import Testing

/// Dequantization against gguf-py's (ggml's Python reference), from the committed corpus
/// written by scripts/make-gguf-corpus.py.
@Suite struct DequantizeTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")

    @Test(arguments: ["Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"])
    func matchesTheReference(type: String) throws {
        let f = try GGUFFile(path: Self.corpus.appendingPathComponent("dequant.gguf").path)
        let t = try #require(f.tensor(type))
        let ref = try #require(f.tensor(type + ".ref"))
        #expect(t.type.description == type)
        let ours = f.floats(t)
        let theirs = f.floats(ref)
        #expect(ours.count == theirs.count)
        let worst = zip(ours, theirs).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst <= 1e-6, "max relative difference \(worst)")
    }

    @Test func readsEveryMetadataTypeGGUFPyWrites() throws {
        let f = try GGUFFile(path: Self.corpus.appendingPathComponent("metadata.gguf").path)
        let c = f.content
        #expect(c["t.u8"] == .uint8(200))
        #expect(c["t.i8"] == .int8(-5))
        #expect(c["t.u16"] == .uint16(60000))
        #expect(c["t.i16"] == .int16(-300))
        #expect(c["t.u32"] == .uint32(4_000_000_000))
        #expect(c["t.i32"] == .int32(-70000))
        #expect(c["t.f32"] == .float32(0.5))
        #expect(c["t.u64"] == .uint64(1 << 40))
        #expect(c["t.i64"] == .int64(-(1 << 40)))
        #expect(c["t.f64"] == .float64(1e-300))
        #expect(c["t.bool"] == .bool(true))
        #expect(c["t.str"] == .string("héllo ✓"))
        #expect(c["t.strs"]?.array == .strings(["a", "", "<0x0A>"]))
        #expect(c["t.floats"]?.array == .floats([0.25, -1.5]))
        #expect(c["t.ints"]?.array?.count == 3)
        let f32 = try #require(f.tensor("f32"))
        #expect(f32.dimensions == [4, 2])
        #expect(f.floats(f32) == (0..<8).map(Float.init))
        #expect(f.floats(try #require(f.tensor("f16"))).last == 2)
    }

    @Test(arguments: [TensorType.f32, .f16, .q8_0, .q4_1, .q5_0])
    func writerQuantizesWithinTheTypesResolution(type: TensorType) throws {
        var rng = SplitMix(seed: 7)
        let values = (0..<256).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
        let bytes = try Quantize.encode(values, as: type)
        #expect(bytes.count == type.byteCount(elements: 256))
        let back = bytes.withUnsafeBytes { Dequantize.toFloat($0, type: type, count: 256) }
        // Worst case per type: F16 rounding; Q8_0 half a step of amax/127; Q4_1 half a step of range/15 (plus f16 scale rounding).
        let tolerance: Float =
            switch type {
            case .f32: 0
            case .f16: 0.0005
            case .q8_0: 1.0 / 127 / 2 + 0.001
            // Q5_0 maps the largest magnitude to -16, so the other sign clips at +15: one step of amax/16.
            case .q5_0: 1.0 / 16 + 0.002
            default: 2.0 / 15 / 2 + 0.002
            }
        let worst = zip(values, back).map { abs($0 - $1) }.max()!
        #expect(worst <= tolerance, "\(type): \(worst)")
    }

    @Test func halfConversionsRoundTrip() {
        for bits in stride(from: 0, through: 0xFFFF, by: 1) {
            let h = UInt16(bits)
            let f = Half.toFloat(h)
            if f.isNaN { continue }
            #expect(Half.fromFloat(f) == h, "bits \(h)")
        }
        #expect(Half.fromFloat(65520) == 0x7C00, "rounds to infinity past the largest half")
        #expect(Half.fromFloat(1.0009765625 + 0.00048828125) == 0x3C02, "ties go to even")
    }
}
