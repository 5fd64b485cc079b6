import Foundation
import PRSCore

/// What a run was started with: the settings compared on resume, and the identities of what
/// produced its data.
public struct RunInfo: Sendable, Hashable, Codable {
    /// Flat settings (`strategy`, `budget`, `seed`, `policy`, …) compared key by key on resume.
    public var settings: [String: String]
    public var prsVersion: String
    public var policy: String
    public var reward: String
    public var feedback: String
    /// Input files and their content hashes (`fnv1a64:…`), for the record.
    public var files: [String: String]
    public var createdAt: Date

    public init(
        settings: [String: String], prsVersion: String, policy: String, reward: String, feedback: String,
        files: [String: String], createdAt: Date = Date()
    ) {
        self.settings = settings
        self.prsVersion = prsVersion
        self.policy = policy
        self.reward = reward
        self.feedback = feedback
        self.files = files
        self.createdAt = createdAt
    }

    /// The stored settings, typed.
    public func run() throws -> RunSettings { try RunSettings(fields: settings) }

    /// Keys whose values differ between two runs' settings, sorted, ignoring `ignoring`
    /// (``RunSettings/differences(_:_:ignoring:)``: a key one side lacks reads as empty).
    public func differences(from other: RunInfo, ignoring: Set<String> = []) -> [String] {
        RunSettings.differences(settings, other.settings, ignoring: ignoring)
    }
}

/// Where an item stands in a run.
public enum ItemState: String, Sendable, Hashable, Codable, CaseIterable {
    case pending, running, done, failed
}

/// An item as the store holds it.
public struct StoredItem: Sendable, Hashable {
    public var item: PromptItem
    public var position: Int
    public var state: ItemState
    /// Failed attempts so far.
    public var attempts: Int
    public var error: String?
}
