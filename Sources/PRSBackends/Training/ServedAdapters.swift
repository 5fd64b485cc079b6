import AsyncHTTPClient
import Foundation
import LMEngine
import PRSCore

/// A running server that takes LoRA adapters at run time through vLLM's endpoints
/// (`POST /v1/load_lora_adapter {"lora_name", "lora_path"}`): vLLM started with
/// `VLLM_ALLOW_RUNTIME_LORA_UPDATING=True` and `--enable-lora`, or `prs serve --allow-runtime-lora`.
/// The loop loads each iteration's adapter there and samples and evaluates it as
/// `openai:URL#NAME`, so one long-lived server answers for every policy without a restart.
public struct RuntimeAdapterServer: Sendable {
    public enum Format: String, Sendable, CaseIterable {
        /// A PEFT directory (what vLLM and SGLang read; prs serve reads it too).
        case peft
        /// llama.cpp's adapter GGUF, as trained (prs serve and llama.cpp read it).
        case gguf
    }

    /// The server's OpenAI base URL, `http://HOST:PORT/v1`.
    public var baseURL: String
    public var apiKey: String?
    public var format: Format
    /// The base GGUF the adapters were trained on (its heads order q/k rows for PEFT).
    public var baseModel: String
    /// Put before `CHAIN-iter-K` in each adapter's name, so loops sharing a server do not collide.
    public var namePrefix: String
    public var timeout: Double = 600

    public init(baseURL: String, apiKey: String?, format: Format, baseModel: String, namePrefix: String) {
        var url = baseURL
        while url.hasSuffix("/") { url.removeLast() }
        self.baseURL = url
        self.apiKey = apiKey
        self.format = format
        self.baseModel = baseModel
        self.namePrefix = namePrefix
    }

    public func name(chain: String, iteration: Int) -> String { "\(namePrefix)\(chain)-iter-\(iteration)" }

    public func policy(name: String) -> PolicySpec { .openAI([.init(baseURL: baseURL, model: name)]) }

    /// The adapter name of a policy this server answers for, or nil.
    public func adapterName(of policy: PolicySpec) -> String? {
        guard case .openAI(let endpoints) = policy, endpoints.count == 1, endpoints[0].baseURL == baseURL,
            let name = endpoints[0].model, name.hasPrefix(namePrefix)
        else { return nil }
        return name
    }

    /// What is loaded for `adapter` (a GGUF file): the file itself, or its PEFT export beside it
    /// (`DIR/peft`, written once).
    func servedPath(_ adapter: String) throws -> String {
        guard format == .peft else { return URL(fileURLWithPath: adapter).standardizedFileURL.path }
        let dir = URL(fileURLWithPath: adapter).deletingLastPathComponent().appendingPathComponent("peft")
            .standardizedFileURL
        let config = dir.appendingPathComponent(PEFTAdapter.configFile).path
        if !FileManager.default.fileExists(atPath: config) {
            let model = try LlamaModel(path: baseModel)
            let loaded = try LoRAAdapter(path: adapter, model: model)
            // Written beside, then renamed: a crash leaves no half directory that looks complete.
            let part = dir.path + ".part"
            try? FileManager.default.removeItem(atPath: part)
            try PEFTAdapter.write(loaded, model: model, baseModelName: nil, to: part)
            try? FileManager.default.removeItem(at: dir)
            try FileManager.default.moveItem(atPath: part, toPath: dir.path)
        }
        return dir.path
    }

    /// Loads `adapter` under `name`. An adapter already loaded under that name (a resumed loop)
    /// counts as loaded: vLLM answers 400 "has already been loaded", prs serve `adapter_exists`.
    public func load(name: String, adapter: String) async throws {
        let path = try servedPath(adapter)
        let root = baseURL.hasSuffix("/v1") ? String(baseURL.dropLast(3)) : baseURL
        let body = try JSONSerialization.data(withJSONObject: ["lora_name": name, "lora_path": path])
        let r = await HTTPClient.prs.exchange(
            root + "/v1/load_lora_adapter", json: body, apiKey: apiKey, timeout: timeout,
            request: "load adapter \(name)")
        switch r {
        case .success: return
        case .failure(let f):
            if case .status(400, let text) = f.kind,
                text.contains("already been loaded") || text.contains("adapter_exists")
            {
                return
            }
            throw TrainingInputError(description: "\(root)/v1/load_lora_adapter (\(name) from \(path)): \(f)")
        }
    }
}

/// A trainer whose adapters are served by a running server: each iteration is trained by
/// `inner`, then its adapter is loaded there and the new policy is `openai:URL#NAME`.
public struct ServedAdapterTrainer: PolicyTrainer {
    public var inner: any PolicyTrainer
    public var server: RuntimeAdapterServer

    public init(inner: any PolicyTrainer, server: RuntimeAdapterServer) {
        self.inner = inner
        self.server = server
    }

    public var identity: String { inner.identity }

    public func train(
        _ job: TrainingJob, onProgress: @escaping @Sendable (TrainingProgress) -> Void
    ) async throws -> TrainedPolicy {
        var trained = try await inner.train(job, onProgress: onProgress)
        guard let adapter = trained.adapter else {
            throw TrainingInputError(
                description: "\(job.directory): the trainer made no adapter file to load into \(server.baseURL)")
        }
        let name = server.name(chain: job.chain, iteration: job.iteration)
        try await server.load(name: name, adapter: adapter)
        trained.policy = server.policy(name: name)
        return trained
    }
}

/// A policy served as a runtime adapter, loaded again before its first request (a server that
/// restarted since the loop trained it has forgotten it); loading what is loaded is harmless.
public final class ServedAdapterGenerator: TextGenerator, @unchecked Sendable {
    let inner: any TextGenerator
    let load: @Sendable () async throws -> Void
    private let lock = NSLock()
    private var loaded: Task<Void, any Error>?

    public init(inner: any TextGenerator, load: @escaping @Sendable () async throws -> Void) {
        self.inner = inner
        self.load = load
    }

    public var identity: String { inner.identity }

    public func generate(_ request: GenerationRequest) async throws -> [Generation] {
        let task: Task<Void, any Error> = lock.withLock {
            if let loaded { return loaded }
            let t = Task { try await load() }
            loaded = t
            return t
        }
        do { try await task.value } catch {
            lock.withLock { loaded = nil }
            throw error
        }
        return try await inner.generate(request)
    }
}
