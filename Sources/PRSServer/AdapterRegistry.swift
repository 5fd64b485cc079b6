import Foundation
import LMEngine

/// The adapters a server answers for, by name: given at start (`--lora`) or loaded and unloaded at
/// run time (vLLM's `/v1/load_lora_adapter` and `/v1/unload_lora_adapter`). A request holds a
/// lease on its adapter while it runs; unloading refuses new requests for the name at once and
/// waits for the leases in flight before the adapter goes.
final class AdapterRegistry: @unchecked Sendable {
    struct Entry {
        var stack: AdapterStack
        var spec: String
        var inFlight = 0
        var unloading = false
    }

    /// A request's hold on an adapter; released once, explicitly or when dropped.
    final class Lease: @unchecked Sendable {
        private let registry: AdapterRegistry
        private let name: String
        private let lock = NSLock()
        private var done = false

        fileprivate init(_ registry: AdapterRegistry, _ name: String) {
            self.registry = registry
            self.name = name
        }

        func release() {
            lock.lock()
            let first = !done
            done = true
            lock.unlock()
            if first { registry.leave(name) }
        }

        deinit { release() }
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    private(set) var order: [String] = []
    let base: String

    init(base: String) { self.base = base }

    /// Names and specs in the order they were added (adapters being unloaded are left out).
    var listing: [(String, String)] {
        lock.lock()
        defer { lock.unlock() }
        return order.compactMap { n in entries[n].flatMap { $0.unloading ? nil : (n, $0.spec) } }
    }

    func contains(_ name: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return entries[name] != nil
    }

    /// Adds an adapter under `name`; 400 when the name is the base's or taken.
    func add(_ name: String, stack: AdapterStack, spec: String) throws(APIError) {
        lock.lock()
        defer { lock.unlock() }
        guard !name.isEmpty else { throw .invalid("lora_name is empty", param: "lora_name") }
        guard name != base else { throw .invalid("The name `\(name)` is the base model's", param: "lora_name") }
        if entries[name] != nil {
            throw .invalid(
                "The lora adapter `\(name)` has already been loaded; unload it first", param: "lora_name",
                code: "adapter_exists")
        }
        entries[name] = Entry(stack: stack, spec: spec)
        order.append(name)
    }

    func acquire(_ name: String, known: @autoclosure () -> [String]) throws(APIError) -> (AdapterStack, Lease) {
        lock.lock()
        guard var e = entries[name], !e.unloading else {
            lock.unlock()
            throw .unknownModel(name, known: known())
        }
        e.inFlight += 1
        entries[name] = e
        lock.unlock()
        return (e.stack, Lease(self, name))
    }

    fileprivate func leave(_ name: String) {
        lock.lock()
        entries[name]?.inFlight -= 1
        lock.unlock()
    }

    /// Stops new requests for `name`, waits for those in flight, then removes it; 404 when unknown.
    /// Returns the requests it waited for.
    func unload(_ name: String) async throws(APIError) -> Int {
        guard let waited = beginUnload(name) else {
            throw APIError(
                status: .notFound, message: "The lora adapter `\(name)` cannot be found", type: "invalid_request_error",
                param: "lora_name", code: "adapter_not_found")
        }
        while !removeIfIdle(name) { try? await Task.sleep(for: .milliseconds(20)) }
        return waited
    }

    /// Marks `name` as going; its requests in flight, or nil when it is unknown (or already going).
    private func beginUnload(_ name: String) -> Int? {
        lock.withLock {
            guard var e = entries[name], !e.unloading else { return nil }
            e.unloading = true
            entries[name] = e
            return e.inFlight
        }
    }

    private func removeIfIdle(_ name: String) -> Bool {
        lock.withLock {
            guard (entries[name]?.inFlight ?? 0) == 0 else { return false }
            entries[name] = nil
            order.removeAll { $0 == name }
            return true
        }
    }
}
