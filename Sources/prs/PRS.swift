import ArgumentParser
import Foundation
import GGUF
import Logging
import PRSCore
import PRSRunner

/// Exit statuses of the contract: 0 done, 1 failed, 2 bad usage or input, 3 interrupted (resumable).
enum Exit {
    static let failed: Int32 = 1
    static let badInput: Int32 = 2
    static let interrupted: Int32 = 3
}

/// An error that ends the command with a message and an exit status.
struct CLIFailure: Error, CustomStringConvertible {
    var code: Int32
    var description: String
    static func badInput(_ m: String) -> CLIFailure { CLIFailure(code: Exit.badInput, description: m) }
    static func failed(_ m: String) -> CLIFailure { CLIFailure(code: Exit.failed, description: m) }

    /// The one place an error a command lets through becomes an exit status: a setting, spec or
    /// model file that cannot be read is bad input (2); ArgumentParser's own errors are left to it.
    static func from(_ error: any Error) -> CLIFailure? {
        switch error {
        case let f as CLIFailure: f
        case let e as SpecError: .badInput(e.description)
        case let e as ConfigError: .badInput(e.description)
        case let e as GGUFError: .badInput(e.description)
        case let e as ReportInputError: .badInput(e.description)
        default: nil
        }
    }
}

@main
struct PRS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prs",
        abstract:
            "Preference-guided reflective sampling: sample, refine and select answers under a user's preference, and "
            + "train on them.",
        discussion: """
            Commands, one example each (M is a GGUF model; `make demo` or scripts/setup.sh
            puts the default, SmolLM2-135M-Instruct, in models/):
              prs sample --prompts P.jsonl --out runs/x --strategy prs --budget 8
              prs compare --prompts P.jsonl --out runs/cmp --strategies rand,prs
              prs report runs/cmp --out runs/cmp/report.html
              prs inspect runs/x --item p1
              prs export runs/x --format sft --out sft.jsonl
              prs train --data sft.jsonl --model M --out adapter.gguf
              prs loop --config examples/loop-small.yaml --out runs/loop
              prs score --prompts P.jsonl --responses R.jsonl --reward rubric
              prs merge runs/shard0 runs/shard1 --out runs/all
              prs model generate M --chat --prompt 'Hi' --lora adapter.gguf
              prs serve --model M --lora concise=adapter.gguf --port 8080
            --verbose shows detailed logs. prs help COMMAND shows a command's options.
            """,
        version: "0.1.0",
        subcommands: [
            Sample.self, Compare.self, Score.self, Export.self, Inspect.self, Merge.self, Report.self, Model.self,
            Train.self, Loop.self, Serve.self,
        ]
    )

    static func main() async {
        // `--verbose` anywhere shows the info-level logs (each request's retries, runs resumed
        // item by item, …); by default prs logs its stages, progress and problems (notice and up).
        var arguments = Array(CommandLine.arguments.dropFirst())
        let verbose = arguments.contains("--verbose")
        arguments.removeAll { $0 == "--verbose" }
        let level =
            ProcessInfo.processInfo.environment["PRS_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
            ?? (verbose ? .info : .notice)
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if let failure = CLIFailure.from(error) {
                FileHandle.standardError.write(Data("prs: \(failure.description)\n".utf8))
                Foundation.exit(failure.code)
            }
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            // Usage errors (ArgumentParser's 64) become the contract's 2.
            Foundation.exit(code == .validationFailure ? Exit.badInput : code.rawValue)
        }
    }
}
