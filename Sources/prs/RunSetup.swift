import Foundation
import Logging
import PRSCore
import PRSStore

/// Checking a run directory against the settings of this invocation, and the words for its state.
enum RunSetup {
    /// Records the settings of a new run; for an existing one, refuses different settings
    /// (naming each differing key with both values) unless `--force`.
    static func check(store: RunStore, settings: SampleSettings, logger: Logger) throws {
        var files: [String: String] = [:]
        if let data = FileManager.default.contents(atPath: settings.prompts) {
            files[settings.prompts] = ContentHash.fnv1a64(data)
        }
        if case .embedded(let path, _) = settings.policy,
            let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        {
            files[path] = ContentHash.fnv1a64(data)
        }
        let info = RunInfo(
            settings: settings.runSettings.fields, prsVersion: PRS.configuration.version,
            policy: settings.policy.description,
            reward: settings.reward.description, feedback: settings.feedback.description, files: files)
        guard let stored = try store.info() else { return try store.saveInfo(info) }
        let keys = stored.differences(from: info)
        guard !keys.isEmpty else { return }
        let what = keys.map { "\($0): \(show(stored.settings[$0])) → \(show(info.settings[$0]))" }.joined(
            separator: "; ")
        if settings.force {
            logger.warning("reusing a run directory with other settings (--force)", metadata: ["changed": "\(what)"])
            return try store.saveInfo(info, replace: true)
        }
        throw CLIFailure.badInput(
            "\(settings.out) was started with other settings (\(what)); run with the same settings to resume, choose "
                + "another --out, or pass --force"
        )
    }

    static func show(_ v: String?) -> String { v.map { $0.isEmpty ? "(none)" : $0 } ?? "(unset)" }

    /// Records skipped prompt lines; returns how many were not recorded before.
    static func recordInvalid(_ problems: [PromptProblem], store: RunStore) throws -> Int {
        let before = try store.invalidLineCount()
        try store.recordInvalidLines(problems)
        return try store.invalidLineCount() - before
    }

    /// `items: 18 done, 1 failed, 0 pending, 0 running`
    static func describe(_ counts: [ItemState: Int]) -> String {
        "items: "
            + ItemState.allCases.sorted { order($0) < order($1) }.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(
                separator: ", ")
    }

    static func order(_ s: ItemState) -> Int { [ItemState.done, .failed, .pending, .running].firstIndex(of: s) ?? 0 }
}
