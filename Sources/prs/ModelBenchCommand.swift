import ArgumentParser
import Foundation
import GGUF
import LMEngine
import PRSCore

extension Model {
    struct Bench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Measure this engine alone: prompt processing, decoding, N-way sampling from one prompt, peak memory.",
            discussion: """
                The products run on the best kernel table the machine has (amx, else avx512, else avx2); \
                PRS_ISA=avx2|avx512|amx \
                forces one, and every table gives the same tokens.
                Example:
                  prs model bench \(defaultModel) --threads 2 --json
                  PRS_ISA=avx2 prs model bench \(defaultModel) --json
                """)
        @Argument(help: "A GGUF model file.") var model: String
        @Option(name: .customLong("prompt-tokens"), help: "Prompt length (default 200).") var promptTokens = 200
        @Option(help: "Tokens to generate (default 128).") var gen = 128
        @Option(help: "Continuations of one prompt for the N-way figure (default 8).") var n = 8
        @Option(help: "Threads (default 2).") var threads = 2
        @Option(help: "A LoRA adapter to apply, A.gguf or A.gguf@SCALE (repeatable).") var lora: [String] = []
        @Flag(
            help: "Also measure the machine's memory read bandwidth (1 thread and --threads) and decode's share of it.")
        var bandwidth = false
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if promptTokens < 2 || gen < 1 || n < 1 || threads < 1 {
                throw ValidationError("--prompt-tokens ≥ 2, --gen, --n and --threads ≥ 1")
            }
        }

        func run() async throws {
            var settings = Benchmark.Settings()
            (settings.promptTokens, settings.gen, settings.n, settings.threads, settings.bandwidth) = (
                promptTokens, gen, n, threads, bandwidth
            )
            let out: Benchmark.Result
            do {
                out = try await Benchmark.run(path: model, settings: settings) { try Model.adapters(lora, $0) }
            } catch let e as CLIFailure {
                throw e
            } catch { throw CLIFailure.badInput("\(error)") }
            if json {
                print(try Model.json(out))
                return
            }
            print(
                String(
                    format: "prompt %.1f tok/s · decode %.1f tok/s · %d-way %.1f tok/s · peak RSS %.0f MB",
                    out.promptTokensPerSecond, out.decodeTokensPerSecond, n, out.nwayTokensPerSecond,
                    out.peakRSSMegabytes)
                    + " · kernels \(out.isa) · tokens \(out.nwayTokensFNV1a)")
            print(
                String(
                    format: "load %.2f s, of which repacking %.0f MB into the kernels' layout %.2f s",
                    out.loadSeconds, out.repackedMegabytes, out.repackSeconds))
            if let bw1 = out.readGBPerSecondOneThread, let bwT = out.readGBPerSecond,
                let share = out.decodeBandwidthShare
            {
                print(
                    String(
                        format:
                            "read bandwidth %.1f GB/s on 1 thread, %.1f on %d; decode reads %.0f MB a token: "
                            + "%.0f%% of it",
                        bw1, bwT, threads, out.decodeReadMegabytes * 1_048_576 / 1e6, share * 100))
            }
        }
    }
}
