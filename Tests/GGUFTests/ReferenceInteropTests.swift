import Foundation
import GGUF
import Testing

/// Our writer's files against the reference tools of scripts/setup.sh: llama.cpp and gguf-py.
@Suite struct ReferenceInteropTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let python = root.appendingPathComponent(".venv/bin/python").path
    static let model = root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

    func python(_ args: [String], stdin: String = "") throws -> String {
        guard FileManager.default.isExecutableFile(atPath: Self.python) else {
            throw GGUFError("the reference tools are not installed: run scripts/setup.sh (make test does)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.python)
        p.arguments = args
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("py-\(UUID())")
        FileManager.default.createFile(atPath: tmp.path + ".out", contents: nil)
        FileManager.default.createFile(atPath: tmp.path + ".err", contents: nil)
        try stdin.write(toFile: tmp.path + ".in", atomically: true, encoding: .utf8)
        p.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: tmp.path + ".in"))
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp.path + ".out"))
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp.path + ".err"))
        try p.run()
        p.waitUntilExit()
        let out = try String(contentsOfFile: tmp.path + ".out", encoding: .utf8)
        guard p.terminationStatus == 0 else {
            throw GGUFError(
                "python \(args.first ?? "") failed: "
                    + "\(try String(contentsOfFile: tmp.path + ".err", encoding: .utf8).suffix(2000))"
            )
        }
        return out
    }

    /// Copies every metadata entry and tensor (same types, bytes as they are) with our writer.
    func copy(_ source: GGUFFile, to path: String) throws {
        var w = GGUFWriter()
        w.alignment = source.content.alignment
        w.metadata = source.content.metadata
        w.tensors = source.content.tensors.map { t in
            .init(name: t.name, dimensions: t.dimensions, type: t.type, data: [UInt8](source.bytes(of: t)))
        }
        try w.write(to: path)
    }

    @Test func aCopyByOurWriterGivesLlamaCppTheSameGreedyTokens() throws {
        let source = try GGUFFile(path: Self.model)
        let copyPath = FileManager.default.temporaryDirectory.appendingPathComponent("copy-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: copyPath) }
        try copy(source, to: copyPath)
        let reread = try GGUFFile(path: copyPath)
        #expect(reread.content.tensors.map(\.name) == source.content.tensors.map(\.name))
        #expect(reread.content.metadata.count == source.content.metadata.count)
        let prompts =
            #"["The capital of France is", "def fibonacci(n):", "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n"]"#
        let script = Self.root.appendingPathComponent("scripts/reference/llama_greedy.py").path
        let original = try python([script, Self.model, "24"], stdin: prompts)
        let copied = try python([script, copyPath, "24"], stdin: prompts)
        #expect(!original.isEmpty)
        #expect(original == copied)
    }

    @Test func ggufPyReadsOurFiles() throws {
        var w = GGUFWriter()
        w.metadata = [
            ("general.architecture", .string("llama")), ("x.ints", .array(.integers([1, -2], .int32))),
            ("x.name", .string("✓ ok")),
        ]
        w.tensors = [
            .init(
                name: "w", dimensions: [32, 2], type: .q8_0,
                data: try Quantize.encode((0..<64).map { Float($0) / 10 }, as: .q8_0)),
            .init(
                name: "v", dimensions: [32], type: .q4_1,
                data: try Quantize.encode((0..<32).map { Float($0) / 10 }, as: .q4_1)),
        ]
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ours-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        let out = try python([
            "-c",
            """
            import sys, gguf, numpy as np
            r = gguf.GGUFReader(sys.argv[1])
            f = r.fields
            print(bytes(f["x.name"].parts[-1]).decode())
            print([int(f["x.ints"].parts[i][0]) for i in f["x.ints"].data])
            for t in r.tensors:
                d = gguf.quants.dequantize(t.data, t.tensor_type)
                print(t.name, t.tensor_type.name, list(map(int, t.shape)), \
            round(float(np.asarray(d).reshape(-1)[-1]), 2))
            """, path,
        ])
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines == ["✓ ok", "[1, -2]", "w Q8_0 [32, 2] 6.3", "v Q4_1 [32] 3.1"])
    }
}
