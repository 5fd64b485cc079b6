import Foundation
import HTTPTypes
import Hummingbird
import LMEngine
import Logging
import NIOCore
import PRSCore
import ServiceLifecycle

/// vLLM's runtime adapters: `POST /v1/load_lora_adapter` and `POST /v1/unload_lora_adapter`.
extension ModelServer {
    /// The runtime adapter endpoints answer only when the server was started to allow them.
    func runtimeAdapters() throws(APIError) {
        guard options.allowRuntimeLoRA else {
            throw APIError(
                status: .notFound,
                message:
                    "Loading adapters at run time is off: start prs serve with --allow-runtime-lora (or "
                    + "PRS_ALLOW_RUNTIME_LORA=1)",
                type: "invalid_request_error", param: nil, code: "runtime_lora_disabled")
        }
    }

    /// vLLM's `POST /v1/load_lora_adapter {"lora_name", "lora_path"}`: reads the adapter (a GGUF file
    /// or a PEFT directory, `@SCALE` allowed) off the event loop and serves it under its name.
    func loadAdapter(_ request: Request) async throws -> Response {
        try runtimeAdapters()
        let served = try state.ready()
        let r = try AdapterRequest(Fields(object: try await body(request.body)), needsPath: true)
        let (name, spec) = (r.name, r.path!)
        if served.adapters.contains(name) || name == served.baseName {
            throw APIError.invalid(
                "The lora adapter `\(name)` has already been loaded; unload it first", param: "lora_name",
                code: "adapter_exists")
        }
        let path = (try? LoRAAdapter.parseSpec(spec))?.path ?? spec
        guard FileManager.default.fileExists(atPath: path) else {
            throw APIError(
                status: .notFound, message: "lora_path \(path): no such file or directory on the server",
                type: "invalid_request_error",
                param: "lora_path", code: "not_found")
        }
        let started = ContinuousClock.now
        let loaded: Result<AdapterStack, any Error> = await withCheckedContinuation { c in
            Thread.detachNewThread { c.resume(returning: Result { try ServedModel.stack(spec, served.model) }) }
        }
        let stack: AdapterStack
        switch loaded {
        case .success(let s): stack = s
        case .failure(let e):
            throw APIError.invalid("lora_path \(spec): \(e)", param: "lora_path", code: "invalid_adapter")
        }
        try served.adapters.add(name, stack: stack, spec: spec)
        logger.notice(
            "adapter loaded",
            metadata: ["name": "\(name)", "path": "\(spec)", "took": "\(ContinuousClock.now - started)"])
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "Success: LoRA adapter '\(name)' added successfully.")))
    }

    /// vLLM's `POST /v1/unload_lora_adapter {"lora_name"}`: new requests for it get 404 at once; it
    /// goes when the requests it is serving have finished.
    func unloadAdapter(_ request: Request) async throws -> Response {
        try runtimeAdapters()
        let served = try state.ready()
        let name = try AdapterRequest(Fields(object: try await body(request.body)), needsPath: false).name
        let waited = try await served.adapters.unload(name)
        logger.notice("adapter unloaded", metadata: ["name": "\(name)", "waited_for": "\(waited)"])
        return Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "Success: LoRA adapter '\(name)' removed successfully.")))
    }
}

/// The body of `/v1/load_lora_adapter` (`lora_name`, `lora_path`) and `/v1/unload_lora_adapter`
/// (`lora_name`), read and checked once.
struct AdapterRequest: Sendable {
    var name: String
    /// The adapter to load: a GGUF file or a PEFT directory, `@SCALE` allowed.
    var path: String?

    init(_ f: Fields, needsPath: Bool) throws(APIError) {
        guard let name = try f.string("lora_name"), !name.isEmpty else {
            throw APIError.invalid("lora_name is required", param: "lora_name")
        }
        self.name = name
        guard needsPath else { return }
        guard let path = try f.string("lora_path"), !path.isEmpty else {
            throw APIError.invalid("lora_path is required", param: "lora_path")
        }
        self.path = path
    }
}
