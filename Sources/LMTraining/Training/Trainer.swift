import Foundation
import LMEngine

/// Trains a model's trainable parameters on tokenized examples: steps of about
/// `batchTokens` tokens (accumulated over packed forward passes of at most
/// `microBatchTokens`), AdamW with warmup and a decaying rate, global-norm clipping,
/// validation after each epoch, and checkpoints from which a killed run resumes to the same
/// result bit for bit (same data, settings and thread count).
public final class Trainer: @unchecked Sendable {
    public let model: TrainingModel<Float>
    public let settings: TrainSettings
    public let train: [TrainingExample]
    public let validation: [TrainingExample]
    let optimizer: AdamW<Float>
    /// Per step: the indices into `train` it covers.
    public let plan: [(epoch: Int, examples: [Int])]
    /// DPO: the starting policy's log-probabilities of chosen and rejected, per example (train, then validation).
    var reference: [Double] = []
    public private(set) var log: [StepReport] = []
    var step = 0

    public init(model: TrainingModel<Float>, examples: [TrainingExample], settings: TrainSettings) throws {
        self.model = model
        self.settings = settings
        for e in examples {
            switch (settings.objective, e.body) {
            case (.sft, .preference):
                throw TrainingError("\(e.source): a preference pair; train it with --objective dpo")
            case (.dpo, .sft):
                throw TrainingError(
                    "\(e.source): not a preference pair (prompt, chosen, rejected); --objective dpo needs them")
            default: break
            }
        }
        // Validation: a seeded sample of the examples.
        var order = Array(examples.indices)
        var rng = SplitMix64(seed: settings.seed ^ 0x5EED_0F0A_11DA_7E00)
        Self.shuffle(&order, &rng)
        let valCount =
            settings.valSplit > 0 && examples.count > 1
            ? min(examples.count - 1, max(1, Int((settings.valSplit * Double(examples.count)).rounded()))) : 0
        let valSet = Set(order.prefix(valCount))
        train = examples.indices.filter { !valSet.contains($0) }.map { examples[$0] }
        validation = examples.indices.filter(valSet.contains).map { examples[$0] }
        var steps: [(Int, [Int])] = []
        for epoch in 0..<max(1, settings.epochs) {
            var idx = Array(train.indices)
            var r = SplitMix64(seed: settings.seed &+ UInt64(epoch + 1) &* 0x9E37_79B9_7F4A_7C15)
            Self.shuffle(&idx, &r)
            var current: [Int] = []
            var tokens = 0
            for i in idx {
                current.append(i)
                tokens += train[i].tokenCount
                if tokens >= settings.batchTokens || current.count >= settings.batchExamples {
                    steps.append((epoch, current))
                    current = []
                    tokens = 0
                }
            }
            if !current.isEmpty { steps.append((epoch, current)) }
        }
        plan = steps
        optimizer = AdamW(count: model.trainable.count, settings: AdamW.Settings(weightDecay: settings.weightDecay))
    }

    static func shuffle(_ a: inout [Int], _ rng: inout SplitMix64) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            a.swapAt(i, j)
        }
    }

    public var schedule: LearningRateSchedule {
        LearningRateSchedule(
            peak: settings.effectiveLearningRate, shape: settings.schedule,
            warmupSteps: Int((settings.warmup * Double(plan.count)).rounded()), totalSteps: plan.count)
    }

    // MARK: running

    /// Trains to the end of the plan (from the checkpoint at `checkpoint` when there is one),
    /// calling `onStep` after each step; `fingerprint` names the data and base model, and a
    /// checkpoint of another fingerprint is refused. The JSONL log at `logPath` is rewritten
    /// from the checkpoint's on resume, so it holds each step once. When `shouldStop` turns
    /// true between steps, a checkpoint is written and `TrainingInterrupted` thrown.
    public func run(
        checkpoint: String?, fingerprint: String, logPath: String? = nil, shouldStop: () -> Bool = { false },
        onStep: (StepReport) -> Void = { _ in }
    ) throws {
        let fullPrint = settings.fingerprint + "|" + fingerprint
        if let checkpoint,
            let saved = try Checkpoint.load(checkpoint, fingerprint: fullPrint, parameters: model.trainable.count)
        {
            model.trainable.setAll(saved.parameters)
            optimizer.restore(m: saved.m, v: saved.v, steps: saved.step)
            reference = saved.reference
            log = saved.log
            step = saved.step
        }
        let logFile = try logPath.map { try TrainingLog(path: $0, entries: log) }
        if settings.objective == .dpo && reference.isEmpty { reference = try referenceLogprobs() }
        func save() throws {
            guard let checkpoint else { return }
            try Checkpoint(
                step: step, parameters: model.trainable.allValues, m: optimizer.state.m, v: optimizer.state.v,
                reference: reference, log: log
            ).write(checkpoint, fingerprint: fullPrint)
        }
        let start = Date()
        var tokensDone = 0
        while step < plan.count {
            if shouldStop() {
                try save()
                throw TrainingInterrupted(step: step, steps: plan.count)
            }
            var r = try runStep(step)
            tokensDone += r.tokens
            r.elapsedSeconds = Date().timeIntervalSince(start)
            r.tokensPerSecond = Double(tokensDone) / max(1e-9, r.elapsedSeconds)
            let lastOfEpoch = step + 1 == plan.count || plan[step + 1].epoch != plan[step].epoch
            if lastOfEpoch && !validation.isEmpty { r.valLoss = try validationLoss() }
            log.append(r)
            try logFile?.append(r)
            step += 1
            onStep(r)
            if settings.checkpointEvery > 0, step % settings.checkpointEvery == 0, step < plan.count { try save() }
        }
    }

    /// One optimizer step over the examples of `plan[k]`.
    func runStep(_ k: Int) throws -> StepReport {
        let examples = plan[k].examples
        model.trainable.zeroGradients()
        var loss = 0.0
        var tokens = 0
        var correct = 0.0
        var margins = 0.0
        var pairs = 0.0
        switch settings.objective {
        case .sft:
            let total = examples.reduce(0.0) { acc, i in
                guard case .sft(let s) = train[i].body else { return acc }
                return acc + train[i].weight * Double(s.scoredCount)
            }
            for (m, micro) in microBatches(examples.map { train[$0] }).enumerated() {
                let (batch, owners) = pack(micro)
                let logp = model.forward(batch, dropoutKey: dropoutKey(k, m))
                var g = [Float](repeating: 0, count: logp.count)
                for (r, lp) in logp.enumerated() {
                    let e = micro[owners[r]]
                    guard lp.isFinite else { throw nonFinite(k, e) }
                    let w = e.weight / max(1e-12, total)
                    loss -= w * Double(lp)
                    g[r] = Float(-w)
                }
                model.backward(g)
                tokens += batch.tokens.count
            }
        case .dpo:
            let total = examples.reduce(0.0) { $0 + train[$1].weight }
            var first = 0  // where this micro-batch starts among the step's examples
            for (m, micro) in microBatches(examples.map { train[$0] }).enumerated() {
                let ids = Array(examples[first..<(first + micro.count)])
                first += micro.count
                let (batch, owners) = pack(micro)
                let logp = model.forward(batch, dropoutKey: dropoutKey(k, m))
                let sums = sequenceSums(logp, batch, count: 2 * micro.count)
                var g = [Float](repeating: 0, count: logp.count)
                var coef = [Double](repeating: 0, count: 2 * micro.count)
                for (j, e) in micro.enumerated() {
                    let refC = reference[2 * ids[j]]
                    let refR = reference[2 * ids[j] + 1]
                    let margin = (sums[2 * j] - refC) - (sums[2 * j + 1] - refR)
                    let z = settings.beta * margin
                    let w = e.weight / max(1e-12, total)
                    let l = softplus(-z)
                    guard l.isFinite, sums[2 * j].isFinite, sums[2 * j + 1].isFinite else { throw nonFinite(k, e) }
                    loss += w * l
                    let s = sigmoid(-z)
                    coef[2 * j] = -w * s * settings.beta
                    coef[2 * j + 1] = w * s * settings.beta
                    if settings.sftWeight > 0, case .preference(let c, _) = e.body {
                        let n = Double(c.scoredCount)
                        loss -= settings.sftWeight * w * sums[2 * j] / n
                        coef[2 * j] -= settings.sftWeight * w / n
                    }
                    correct += w * (margin > 0 ? 1 : margin == 0 ? 0.5 : 0)
                    margins += w * settings.beta * margin
                    pairs += w
                }
                for r in logp.indices { g[r] = Float(coef[batch.lossSegment[r]]) }
                _ = owners
                model.backward(g)
                tokens += batch.tokens.count
            }
        }
        guard loss.isFinite else { throw TrainingError("step \(k + 1): the loss is \(loss)") }
        let norm = gradientNorm()
        guard norm.isFinite else {
            throw TrainingError(
                "step \(k + 1): the gradient norm is \(norm) (examples "
                    + "\(examples.map { train[$0].source }.joined(separator: ", ")))"
            )
        }
        if settings.maxGradNorm > 0, norm > settings.maxGradNorm {
            let scale = Float(settings.maxGradNorm / (norm + 1e-6))
            let g = model.trainable.grads!
            for i in 0..<g.count { g.p[i] *= scale }
        }
        let lr = schedule.rate(k)
        optimizer.step(model.trainable.values.p, model.trainable.grads!.p, count: model.trainable.count, lr: lr)
        return StepReport(
            step: k + 1, steps: plan.count, epoch: plan[k].epoch + 1, loss: loss, lr: lr, gradNorm: norm,
            tokens: tokens,
            tokensPerSecond: 0, elapsedSeconds: 0,
            rewardAccuracy: pairs > 0 ? correct / pairs : nil, rewardMargin: pairs > 0 ? margins / pairs : nil)
    }

    func dropoutKey(_ step: Int, _ micro: Int) -> UInt64 {
        SplitMix64.mix(settings.seed ^ SplitMix64.mix(UInt64(step) << 16 | UInt64(micro)))
    }

    func nonFinite(_ k: Int, _ e: TrainingExample) -> TrainingError {
        TrainingError("step \(k + 1): the loss is not finite at \(e.source); lower --lr or check the example")
    }

    /// Consecutive examples packed up to `microBatchTokens` (an example longer than that alone).
    func microBatches(_ examples: [TrainingExample]) -> [[TrainingExample]] {
        var out: [[TrainingExample]] = []
        var current: [TrainingExample] = []
        var tokens = 0
        for e in examples {
            if !current.isEmpty && tokens + e.tokenCount > settings.microBatchTokens {
                out.append(current)
                current = []
                tokens = 0
            }
            current.append(e)
            tokens += e.tokenCount
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// A packed batch of examples (a pair as two sequences, chosen first) and, per loss row, its example.
    func pack(_ examples: [TrainingExample]) -> (PackedBatch, [Int]) {
        var b = PackedBatch()
        var owners: [Int] = []
        for (i, e) in examples.enumerated() {
            let before = b.lossRows.count
            switch e.body {
            case .sft(let s): b.append(s.tokens, scored: s.scored)
            case .preference(let c, let r):
                b.append(c.tokens, scored: c.scored)
                b.append(r.tokens, scored: r.scored)
            }
            owners += Array(repeating: i, count: b.lossRows.count - before)
        }
        return (b, owners)
    }

    /// Σ log p of each sequence of a batch.
    func sequenceSums(_ logp: [Float], _ batch: PackedBatch, count: Int) -> [Double] {
        var sums = [Double](repeating: 0, count: count)
        for (r, lp) in logp.enumerated() { sums[batch.lossSegment[r]] += Double(lp) }
        return sums
    }

    func gradientNorm() -> Double {
        let g = model.trainable.grads!
        var s = 0.0
        for i in 0..<g.count { s += Double(g.p[i]) * Double(g.p[i]) }
        return s.squareRoot()
    }

    /// The starting policy's Σ log p of each pair's chosen and rejected answers (train, then validation).
    func referenceLogprobs() throws -> [Double] {
        var out: [Double] = []
        for micro in microBatches(train + validation) {
            let (batch, _) = pack(micro)
            out += sequenceSums(model.forward(batch), batch, count: 2 * micro.count)
        }
        return out
    }

    /// SFT: the weighted mean NLL per answer token; DPO: the mean loss, on the validation examples.
    func validationLoss() throws -> Double {
        var num = 0.0
        var den = 0.0
        var index = 0
        for micro in microBatches(validation) {
            let (batch, owners) = pack(micro)
            let logp = model.forward(batch)
            switch settings.objective {
            case .sft:
                for (r, lp) in logp.enumerated() {
                    num -= micro[owners[r]].weight * Double(lp)
                    den += micro[owners[r]].weight
                }
            case .dpo:
                let sums = sequenceSums(logp, batch, count: 2 * micro.count)
                for (j, e) in micro.enumerated() {
                    let k = 2 * (train.count + index + j)
                    let z = settings.beta * ((sums[2 * j] - reference[k]) - (sums[2 * j + 1] - reference[k + 1]))
                    num += e.weight * softplus(-z)
                    den += e.weight
                }
            }
            index += micro.count
        }
        return num / max(1e-12, den)
    }
}

/// Training stopped between steps on request; the checkpoint holds every finished step.
public struct TrainingInterrupted: Error, Sendable, CustomStringConvertible {
    public var step: Int
    public var steps: Int
    public var description: String {
        "stopped after step \(step) of \(steps); the checkpoint is saved: run the same command to resume"
    }
}

/// The JSONL loss log: one line a step.
final class TrainingLog {
    let handle: FileHandle
    init(path: String, entries: [StepReport]) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var data = Data()
        for e in entries {
            data.append(try enc.encode(e))
            data.append(0x0A)
        }
        guard FileManager.default.createFile(atPath: path, contents: data), let h = FileHandle(forWritingAtPath: path)
        else {
            throw TrainingError("\(path): cannot write the training log")
        }
        h.seekToEndOfFile()
        handle = h
    }
    deinit { try? handle.close() }
    func append(_ e: StepReport) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var line = try enc.encode(e)
        line.append(0x0A)
        handle.write(line)
    }
}

func softplus(_ x: Double) -> Double { x > 30 ? x : Foundation.log1p(Foundation.exp(x)) }
func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
