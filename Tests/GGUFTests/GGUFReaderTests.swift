import Foundation
import GGUF
import Testing

@Suite struct GGUFReaderTests {
    @Test func readsWhatTheWriterWrites() throws {
        let c = try parse(try smallValidFile())
        #expect(c.version == 3)
        #expect(c["general.architecture"] == .string("llama"))
        #expect(c["llama.block_count"]?.integer == 2)
        #expect(c["tokenizer.ggml.tokens"]?.array == .strings(["a", "b", "<0x0A>"]))
        #expect(c.tensors.map(\.name) == ["a", "b"])
        #expect(c.tensors[0].dimensions == [4, 2])
        #expect(c.tensors[1].type == .q8_0 && c.tensors[1].byteCount == 34)
        #expect(c.dataOffset % 32 == 0)
    }

    @Test func truncationAtAnyByteIsAnErrorNeverACrash() throws {
        let full = try smallValidFile()
        let c = try parse(full)
        // Everything up to the last tensor byte is needed; what follows is padding.
        let needed = c.dataOffset + c.tensors.map { $0.offset + $0.byteCount }.max()!
        for n in 0..<needed {
            #expect(throws: GGUFError.self, "truncated to \(n) bytes") { try parse(Array(full[..<n])) }
        }
        for n in needed...full.count { #expect(throws: Never.self) { try parse(Array(full[..<n])) } }
    }

    /// Each case: a file and words its error must contain.
    static let hostile: [(String, [UInt8], String)] = {
        var cases: [(String, [UInt8], String)] = []
        func add(_ name: String, _ expect: String, _ build: (inout RawGGUF) -> Void) {
            var r = RawGGUF()
            build(&r)
            cases.append((name, r.bytes, expect))
        }
        add("bad magic", "not a GGUF file") {
            $0.bytes = Array("GGML".utf8) + [3, 0, 0, 0] + [UInt8](repeating: 0, count: 16)
        }
        add("version 1", "version 1 is not supported") { $0.header(version: 1, tensors: 0, kvs: 0) }
        add("version 4", "version 4 is not supported") { $0.header(version: 4, tensors: 0, kvs: 0) }
        add("absurd metadata count", "metadata count") { $0.header(tensors: 0, kvs: 1 << 60) }
        add("absurd tensor count", "tensor count") { $0.header(tensors: UInt64.max, kvs: 0) }
        add("huge string length", "claims") { r in
            r.header(tensors: 0, kvs: 1)
            r.u64(1 << 62)
            r.bytes += [0, 0, 0, 0, 0, 0, 0, 0]
        }
        add("huge array", "claims") { r in
            r.header(tensors: 0, kvs: 1)
            r.str("k")
            r.u32(9)
            r.u32(10)
            r.u64(1 << 61)
        }
        add("count × size overflow", "claims") { r in
            r.header(tensors: 0, kvs: 1)
            r.str("k")
            r.u32(9)
            r.u32(11)
            r.u64(UInt64.max / 4)
        }
        add("nested arrays", "array of arrays") { r in
            r.header(tensors: 0, kvs: 1)
            r.str("k")
            r.u32(9)
            r.u32(9)
            r.u64(1)
            r.u32(4)
            r.u64(0)
        }
        add("unknown value type", "unknown value type 13") { r in
            r.header(tensors: 0, kvs: 1)
            r.str("k")
            r.u32(13)
            r.u64(0)
        }
        add("unknown array element type", "unknown value type 99") { r in
            r.header(tensors: 0, kvs: 1)
            r.str("k")
            r.u32(9)
            r.u32(99)
            r.u64(0)
        }
        add("bool not 0 or 1", "bool with byte value 2") { r in
            r.header(tensors: 0, kvs: 1)
            r.str("k")
            r.u32(7)
            r.u8(2)
            r.bytes += [UInt8](repeating: 0, count: 12)
        }
        add("duplicate key", "duplicate metadata key \"k\"") { r in
            r.header(tensors: 0, kvs: 2)
            r.kvU32("k", 1)
            r.kvU32("k", 2)
        }
        add("zero alignment", "power of two") { r in
            r.header(tensors: 0, kvs: 1)
            r.kvU32("general.alignment", 0)
        }
        add("non-power-of-two alignment", "power of two") { r in
            r.header(tensors: 0, kvs: 1)
            r.kvU32("general.alignment", 48)
        }
        add("huge alignment", "power of two") { r in
            r.header(tensors: 0, kvs: 1)
            r.kvU32("general.alignment", 1 << 31)
        }
        add("alignment of the wrong type", "must be a uint32") { r in
            r.header(tensors: 0, kvs: 1)
            r.kvString("general.alignment", "32")
        }
        add("unknown tensor type", "ggml type 99") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [32], type: 99)
            r.padData(thenBytes: 128)
        }
        add("five dimensions", "has 5 dimensions") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [1, 1, 1, 1, 1])
            r.padData(thenBytes: 4)
        }
        add("zero dimensions", "has 0 dimensions") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [])
            r.padData(thenBytes: 4)
        }
        add("a zero dimension", "must be positive") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [4, 0])
            r.padData(thenBytes: 16)
        }
        add("a negative dimension", "of -1") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [UInt64.max])
            r.padData(thenBytes: 16)
        }
        add("overflowing element count", "overflows") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [1 << 32, 1 << 32])
            r.padData(thenBytes: 16)
        }
        add("overflowing byte count", "overflows") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [1 << 62, 1], type: 0)
            r.padData(thenBytes: 16)
        }
        add("partial quant block", "multiple of 32") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [16], type: 8)
            r.padData(thenBytes: 64)
        }
        add("misaligned offset", "not a multiple of the alignment") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [4], offset: 4)
            r.padData(thenBytes: 64)
        }
        add("offset past the end", "runs past the end") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [4], offset: 4096)
            r.padData(thenBytes: 64)
        }
        add("data past the end", "runs past the end") { r in
            r.header(tensors: 1, kvs: 0)
            r.tensorInfo("t", dims: [64])
            r.padData(thenBytes: 100)
        }
        add("overlapping tensors", "overlap") { r in
            r.header(tensors: 2, kvs: 0)
            r.tensorInfo("a", dims: [16], offset: 0)
            r.tensorInfo("b", dims: [16], offset: 32)
            r.padData(thenBytes: 128)
        }
        add("duplicate tensor names", "duplicate tensor name \"a\"") { r in
            r.header(tensors: 2, kvs: 0)
            r.tensorInfo("a", dims: [4], offset: 0)
            r.tensorInfo("a", dims: [4], offset: 32)
            r.padData(thenBytes: 64)
        }
        return cases
    }()

    @Test(arguments: hostile.indices)
    func hostileFilesGiveClearErrors(index: Int) {
        let (name, bytes, expected) = Self.hostile[index]
        do {
            _ = try parse(bytes)
            Issue.record("\(name): parsed without error")
        } catch let e as GGUFError {
            #expect(e.description.contains(expected), "\(name): \(e)")
        } catch {
            Issue.record("\(name): unexpected error \(error)")
        }
    }

    @Test func fileErrorsNameTheFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("bad-\(UUID()).gguf").path
        try Data("GGML and more bytes here".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: GGUFError("not a GGUF file (the first four bytes are not \"GGUF\")", offset: 0, file: path)) {
            try GGUFFile(path: path)
        }
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
        #expect(throws: GGUFError("not a regular file", file: "/tmp")) { try GGUFFile(path: "/tmp") }
    }

    /// Mutated valid files (flipped bytes, truncations, splices) must parse or fail with a
    /// GGUFError: never crash, never read out of bounds. Seeded, so a failure reproduces.
    @Test func mutatedFilesNeverCrash() throws {
        let seeds = [try smallValidFile()] + corpus()
        var rng = SplitMix(seed: 0x5EED)
        var parsed = 0
        for i in 0..<20_000 {
            var b = seeds[i % seeds.count]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                guard !b.isEmpty else { break }
                let at = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 4 {
                case 0: b[at] ^= UInt8(truncatingIfNeeded: 1 << (rng.next() % 8))
                case 1: b[at] = [0x00, 0xFF, 0x7F, 0x80, 0x20][Int(rng.next() % 5)]
                case 2: b.removeSubrange(at...)
                default:
                    b.insert(
                        contentsOf: [UInt8](
                            repeating: UInt8(truncatingIfNeeded: rng.next()), count: Int(rng.next() % 9)), at: at)
                }
            }
            if let c = try? parse(b) {
                parsed += 1
                // Whatever parses must describe tensors inside the bytes.
                for t in c.tensors { #expect(c.dataOffset + t.offset + t.byteCount <= b.count) }
            }
        }
        #expect(parsed > 0, "some mutations leave a valid file")
    }

    func corpus() -> [[UInt8]] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Corpus")
        let files = (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.pathExtension == "gguf" }.sorted { $0.path < $1.path }.compactMap {
            try? [UInt8](Data(contentsOf: $0))
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
