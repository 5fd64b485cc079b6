import LMEngine

/// How `prs serve` is set up.
public struct ServerOptions: Sendable {
    /// An adapter served under its own model name: `NAME=A.gguf[@SCALE]`.
    public struct Adapter: Sendable, Hashable {
        public var name: String
        public var spec: String
        public init(name: String, spec: String) {
            self.name = name
            self.spec = spec
        }

        /// Reads `NAME=A.gguf[@SCALE]`.
        public static func parse(_ s: String) -> Adapter? {
            guard let eq = s.firstIndex(of: "="), eq != s.startIndex, s.index(after: eq) != s.endIndex else {
                return nil
            }
            return Adapter(name: String(s[..<eq]), spec: String(s[s.index(after: eq)...]))
        }
    }

    public var modelPath: String
    /// The base model's name in `/v1/models` and requests; default: the file's name without `.gguf`.
    public var modelName: String?
    public var adapters: [Adapter] = []
    /// A chat template by name; default: recognised from the model file.
    public var template: String?
    public var host = "127.0.0.1"
    /// 0 picks a free port (announced through `onListening`).
    public var port = 8080
    /// When set, every endpoint but `/health`, `/v1/models` and `/metrics` wants `Authorization: Bearer KEY`.
    public var apiKey: String?
    public var engine = EngineSettings()
    /// Generation requests held beyond the engine's batch before new ones get 429.
    public var maxQueue = 256
    /// Largest request body accepted, in bytes.
    public var maxBodyBytes = 8 << 20
    /// On SIGTERM or SIGINT: seconds to finish requests in flight before they are cancelled.
    public var drainSeconds = 30.0
    /// Whether `/v1/load_lora_adapter` and `/v1/unload_lora_adapter` may change the adapters served.
    public var allowRuntimeLoRA = false

    public init(modelPath: String) { self.modelPath = modelPath }
}
