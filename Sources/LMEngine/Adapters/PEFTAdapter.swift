import Foundation
import GGUF

/// LoRA adapters as PEFT directories (`adapter_model.safetensors` + `adapter_config.json`), the
/// form vLLM, SGLang, TRL and PEFT load, converted to and from llama.cpp's GGUF layout:
///
/// - names: GGUF `blk.N.attn_q.weight` is Hugging Face's `model.layers.N.self_attn.q_proj`
///   (saved by PEFT as `base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`);
/// - shapes: `lora_A.weight` is [r, n_in] and `lora_B.weight` [n_out, r], row-major, the same
///   values as GGUF's `lora_a` (ne [n_in, r]) and `lora_b` (ne [r, n_out]);
/// - q/k rows: GGUF files of the llama family store q and k projections with each head's rotary
///   pairs adjacent (llama.cpp's converter permutes Hugging Face's rows), so `lora_B` of q and k
///   is permuted on the way in and un-permuted on the way out. Architectures whose rotary pairs
///   are split halves (Gemma) are stored unpermuted and cross as they are;
/// - scale: PEFT applies `lora_alpha / r` (`/ sqrt(r)` with `use_rslora`, per module with
///   `rank_pattern` / `alpha_pattern`); GGUF one `adapter.lora.alpha` over each tensor's rank.
public enum PEFTAdapter {
    /// GGUF projection names and their Hugging Face modules.
    public static let modules: [(gguf: String, hf: String)] = [
        ("attn_q", "self_attn.q_proj"), ("attn_k", "self_attn.k_proj"), ("attn_v", "self_attn.v_proj"),
        ("attn_output", "self_attn.o_proj"), ("ffn_gate", "mlp.gate_proj"), ("ffn_up", "mlp.up_proj"),
        ("ffn_down", "mlp.down_proj"),
    ]

    public static let weightsFile = "adapter_model.safetensors"
    public static let configFile = "adapter_config.json"

    /// Whether `path` names a PEFT adapter: a directory holding `adapter_config.json`, or an
    /// `adapter_model.safetensors` file (its config beside it).
    public static func isPEFT(_ path: String) -> Bool {
        var dir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &dir), dir.boolValue { return true }
        return path.hasSuffix(".safetensors")
    }

    static func directory(_ path: String) -> URL {
        let url = URL(fileURLWithPath: path)
        return path.hasSuffix(".safetensors") ? url.deletingLastPathComponent() : url
    }

    /// The GGUF tensor name of a PEFT key's module, or nil for a key that is not a LoRA matrix.
    /// Throws for a LoRA matrix on a module GGUF adapters cannot hold (embeddings, the head).
    static func ggufName(ofKey key: String, file: String) throws -> (name: String, isA: Bool)? {
        let isA: Bool
        if key.hasSuffix(".lora_A.weight") || key.hasSuffix(".lora_A.default.weight") {
            isA = true
        } else if key.hasSuffix(".lora_B.weight") || key.hasSuffix(".lora_B.default.weight") {
            isA = false
        } else {
            if key.contains("lora_embedding") || key.contains("lora_magnitude") {
                throw ModelError(
                    "\(file): tensor \(key): only LoRA A/B matrices of linear layers are supported (no embedding "
                        + "LoRA or DoRA)"
                )
            }
            return nil
        }
        let module = String(key[..<key.range(of: isA ? ".lora_A" : ".lora_B", options: .backwards)!.lowerBound])
        guard let layersAt = module.range(of: "layers.") else {
            throw ModelError(
                "\(file): tensor \(key): \(module) is not a layer's projection (supported: "
                    + "\(modules.map(\.hf).joined(separator: ", ")))"
            )
        }
        let rest = module[layersAt.upperBound...]
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]) else {
            throw ModelError("\(file): tensor \(key): no layer number after layers.")
        }
        let proj = String(rest[rest.index(after: dot)...])
        guard let m = modules.first(where: { $0.hf == proj }) else {
            throw ModelError(
                "\(file): tensor \(key): module \(proj) is not supported (supported: "
                    + "\(modules.map(\.hf).joined(separator: ", ")))"
            )
        }
        return ("blk.\(layer).\(m.gguf).weight", isA)
    }

    /// Row permutation of a q or k projection from Hugging Face's order to GGUF's: within each head
    /// of `headDim` rows, row `2j + k` of GGUF is row `k·headDim/2 + j` of Hugging Face.
    static func permute(_ rows: [Float], heads: Int, width: Int, toGGUF: Bool) -> [Float] {
        let headDim = rows.count / width / heads
        let half = headDim / 2
        var out = rows
        for h in 0..<heads {
            for j in 0..<half {
                for k in 0..<2 {
                    let g = h * headDim + 2 * j + k
                    let f = h * headDim + k * half + j
                    let (dst, src) = toGGUF ? (g, f) : (f, g)
                    for c in 0..<width { out[dst * width + c] = rows[src * width + c] }
                }
            }
        }
        return out
    }

    /// Whether `config`'s q/k rows are permuted in GGUF (rotary pairs adjacent).
    static func permuted(_ config: LlamaConfig) -> Bool { config.ropePairs == .adjacent }

    /// What a PEFT directory holds, in GGUF's layout (see `LoRAAdapter`).
    struct Read {
        var pairs: [String: LoRAAdapter.Pair]
        var alpha: Float
        var rank: Int
        var identity: String
    }

    static func read(_ path: String, model: LlamaModel) throws -> Read {
        let dir = directory(path)
        let configURL = dir.appendingPathComponent(configFile)
        let weightsURL = dir.appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: configURL.path) else {
            throw ModelError("\(path): not a PEFT adapter: no \(configFile) in \(dir.path)")
        }
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            throw ModelError(
                "\(path): no \(weightsFile) in \(dir.path) (adapter_model.bin, PyTorch's pickle, is not read: save "
                    + "with safe_serialization)"
            )
        }
        let configData = try Data(contentsOf: configURL)
        guard let config = (try? JSONSerialization.jsonObject(with: configData)) as? [String: Any] else {
            throw ModelError("\(configURL.path): not a JSON object")
        }
        func field<T>(_ name: String, _ type: T.Type) throws -> T? {
            guard let v = config[name], !(v is NSNull) else { return nil }
            guard let t = v as? T else { throw ModelError("\(configURL.path): \(name) has the wrong type (\(v))") }
            return t
        }
        if let kind = try field("peft_type", String.self), kind.uppercased() != "LORA" {
            throw ModelError("\(configURL.path): peft_type is \(kind); only LORA adapters are supported")
        }
        guard let r = try field("r", NSNumber.self)?.intValue, r > 0 else {
            throw ModelError("\(configURL.path): r (the rank) is missing or not positive")
        }
        let loraAlpha = try field("lora_alpha", NSNumber.self)?.floatValue ?? Float(r)
        if try field("fan_in_fan_out", Bool.self) == true {
            throw ModelError(
                "\(configURL.path): fan_in_fan_out is true (Conv1D layers); only linear layers are supported")
        }
        if try field("use_dora", Bool.self) == true {
            throw ModelError("\(configURL.path): use_dora is true; DoRA adapters are not supported")
        }
        let rslora = try field("use_rslora", Bool.self) ?? false
        let rankPattern = try field("rank_pattern", [String: Any].self) ?? [:]
        let alphaPattern = try field("alpha_pattern", [String: Any].self) ?? [:]

        let file = try SafetensorsFile(path: weightsURL.path)
        var a: [String: (SafetensorsFile.Tensor, String)] = [:]
        var b: [String: (SafetensorsFile.Tensor, String)] = [:]
        for (key, t) in file.tensors {
            guard let (name, isA) = try ggufName(ofKey: key, file: weightsURL.path) else { continue }
            if isA { a[name] = (t, key) } else { b[name] = (t, key) }
        }
        guard !a.isEmpty else { throw ModelError("\(weightsURL.path): no lora_A/lora_B tensors") }
        let c = model.config
        var pairs: [String: LoRAAdapter.Pair] = [:]
        // PEFT's factor of each module; where it differs from GGUF's (alpha over the tensor's rank) it is folded into B.
        for (name, (ta, keyA)) in a {
            guard let (tb, keyB) = b[name] else {
                throw ModelError("\(weightsURL.path): tensor \(keyA) has no lora_B beside it")
            }
            guard ta.shape.count == 2, tb.shape.count == 2, ta.shape[0] == tb.shape[1] else {
                throw ModelError(
                    "\(weightsURL.path): tensor \(keyA) \(ta.shape) and \(keyB) \(tb.shape) are not [r, n_in] and "
                        + "[n_out, r] of one rank"
                )
            }
            let rank = ta.shape[0]
            let inDim = ta.shape[1]
            let outDim = tb.shape[0]
            guard let w = model.file.tensor(name) else {
                throw ModelError(
                    "\(weightsURL.path): tensor \(keyA) adapts \(name), which \(model.file.path) does not have")
            }
            guard w.dimensions == [inDim, outDim] else {
                throw ModelError(
                    "\(weightsURL.path): tensor \(keyA) is \(inDim)→\(outDim) but \(name) in \(model.file.path) is "
                        + "\(w.dimensions[0])→\(w.dimensions[1])"
                )
            }
            let module = String(keyA[..<keyA.range(of: ".lora_A", options: .backwards)!.lowerBound])
            func pattern(_ p: [String: Any]) -> Float? {
                for (k, v) in p where module == k || module.hasSuffix("." + k) { return (v as? NSNumber)?.floatValue }
                return nil
            }
            let moduleAlpha = pattern(alphaPattern) ?? loraAlpha
            if let pr = pattern(rankPattern), Int(pr) != rank {
                throw ModelError("\(weightsURL.path): tensor \(keyA) has rank \(rank) but rank_pattern says \(Int(pr))")
            }
            let factor = rslora ? moduleAlpha / Float(rank).squareRoot() : moduleAlpha / Float(rank)
            var bValues = file.floats(tb)
            // GGUF applies alpha / (this tensor's rank): keep B as stored when that equals PEFT's factor.
            let ggufFactor = loraAlpha / Float(rank)
            if factor != ggufFactor { bValues = bValues.map { $0 * (factor / ggufFactor) } }
            if permuted(c) {
                if name.contains(".attn_q.") { bValues = permute(bValues, heads: c.heads, width: rank, toGGUF: true) }
                if name.contains(".attn_k.") { bValues = permute(bValues, heads: c.kvHeads, width: rank, toGGUF: true) }
            }
            pairs[name] = LoRAAdapter.Pair(a: file.floats(ta), b: bValues, rank: rank, inDim: inDim, outDim: outDim)
        }
        if let extra = b.keys.first(where: { a[$0] == nil }) {
            throw ModelError("\(weightsURL.path): tensor \(b[extra]!.1) has no lora_A beside it")
        }
        var h = SHA256()
        h.update(Array(configData))
        let identity = try SHA256.file(weightsURL.path) + "+" + h.hexDigest()
        return Read(pairs: pairs, alpha: loraAlpha, rank: r, identity: identity)
    }

    /// Writes `adapter` (for `model`) as a PEFT directory at `dir`: F32 tensors, keys as PEFT saves
    /// them, and a config with `r`, `lora_alpha`, `target_modules` and `base_model_name_or_path`.
    public static func write(
        _ adapter: LoRAAdapter, model: LlamaModel, baseModelName: String?, to dir: String,
        dtype: SafetensorsFile.DType = .f32
    ) throws {
        let c = model.config
        var entries: [SafetensorsWriter.Entry] = []
        var targets = Set<String>()
        var ranks: [String: Int] = [:]
        func order(_ name: String) -> (Int, Int) {
            let parts = name.split(separator: ".")
            let layer = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            let m = modules.firstIndex { $0.gguf == (parts.count > 2 ? String(parts[2]) : "") } ?? modules.count
            return (layer, m)
        }
        for name in adapter.tensors.keys.sorted(by: { order($0) < order($1) }) {
            let p = adapter.tensors[name]!
            let parts = name.split(separator: ".")
            guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), parts[3] == "weight",
                let m = modules.first(where: { $0.gguf == parts[2] })
            else {
                throw ModelError(
                    "\(adapter.path): tensor \(name) has no Hugging Face module (supported: "
                        + "\(modules.map(\.gguf).joined(separator: ", ")))"
                )
            }
            var b = p.b
            if permuted(c) {
                if m.gguf == "attn_q" { b = permute(b, heads: c.heads, width: p.rank, toGGUF: false) }
                if m.gguf == "attn_k" { b = permute(b, heads: c.kvHeads, width: p.rank, toGGUF: false) }
            }
            let key = "base_model.model.model.layers.\(layer).\(m.hf)"
            entries.append(.init(name: key + ".lora_A.weight", shape: [p.rank, p.inDim], values: p.a, dtype: dtype))
            entries.append(.init(name: key + ".lora_B.weight", shape: [p.outDim, p.rank], values: b, dtype: dtype))
            targets.insert(String(m.hf.split(separator: ".").last!))
            ranks["model.layers.\(layer).\(m.hf)"] = p.rank
        }
        let rank = adapter.rank
        let rankPattern = ranks.filter { $0.value != rank }
        let config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": Double(adapter.alpha),
            "target_modules": targets.sorted(), "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": false,
            "use_rslora": false, "use_dora": false, "inference_mode": true, "init_lora_weights": true,
            "rank_pattern": rankPattern, "alpha_pattern": [String: Any](), "modules_to_save": NSNull(),
            "base_model_name_or_path": baseModelName.map { $0 as Any } ?? NSNull(),
            "revision": NSNull(), "layers_to_transform": NSNull(), "layers_pattern": NSNull(),
        ]
        let url = URL(fileURLWithPath: dir)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        try SafetensorsWriter.write(
            entries, metadata: ["format": "pt"], to: url.appendingPathComponent(weightsFile).path)
        let json = try JSONSerialization.data(
            withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try json.write(to: url.appendingPathComponent(configFile), options: .atomic)
    }
}
