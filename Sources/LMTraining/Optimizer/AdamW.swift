import Foundation

/// AdamW as PyTorch defines it (decoupled weight decay `p -= lr·λ·p`, bias-corrected moments),
/// over a parameter store's whole buffer; moments kept in the parameters' own type.
public final class AdamW<T: TrainScalar>: @unchecked Sendable {
    public struct Settings: Sendable, Hashable, Codable {
        public var beta1 = 0.9
        public var beta2 = 0.999
        public var epsilon = 1e-8
        public var weightDecay = 0.0
        public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0) {
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
    }

    public let settings: Settings
    let m: Buffer<T>
    let v: Buffer<T>
    /// Steps taken (the bias correction's t).
    public var steps = 0

    public init(count: Int, settings: Settings = Settings()) {
        self.settings = settings
        m = Buffer(count)
        v = Buffer(count)
    }

    /// One step with learning rate `lr` on `params` from `grads` (already scaled and clipped).
    func step(_ params: UnsafeMutablePointer<T>, _ grads: UnsafePointer<T>, count: Int, lr: Double) {
        steps += 1
        let b1 = settings.beta1
        let b2 = settings.beta2
        let c1 = 1 - Foundation.pow(b1, Double(steps))
        let c2 = 1 - Foundation.pow(b2, Double(steps))
        let tb1 = T(b1)
        let tb2 = T(b2)
        let ob1 = T(1 - b1)
        let ob2 = T(1 - b2)
        let stepSize = T(lr / c1)
        let decay = T(1 - lr * settings.weightDecay)
        let invC2 = T(1 / c2)
        let eps = T(settings.epsilon)
        let mp = m.p
        let vp = v.p
        for i in 0..<count {
            let g = grads[i]
            let mi = tb1 * mp[i] + ob1 * g
            let vi = tb2 * vp[i] + ob2 * g * g
            mp[i] = mi
            vp[i] = vi
            params[i] = params[i] * decay - stepSize * mi / ((vi * invC2).squareRoot() + eps)
        }
    }

    /// The moments, for checkpoints.
    var state: (m: [T], v: [T]) {
        (Array(UnsafeBufferPointer(start: m.p, count: m.count)), Array(UnsafeBufferPointer(start: v.p, count: v.count)))
    }

    func restore(m newM: [T], v newV: [T], steps: Int) {
        precondition(newM.count == m.count && newV.count == v.count)
        newM.withUnsafeBufferPointer { m.p.update(from: $0.baseAddress!, count: m.count) }
        newV.withUnsafeBufferPointer { v.p.update(from: $0.baseAddress!, count: v.count) }
        self.steps = steps
    }
}

/// The learning rate by step: linear warmup, then cosine (to 0), linear (to 0) or constant,
/// as transformers' schedules with warmup.
public struct LearningRateSchedule: Sendable, Hashable, Codable {
    public enum Shape: String, Sendable, Hashable, Codable, CaseIterable { case cosine, linear, constant }
    public var peak: Double
    public var shape: Shape
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(peak: Double, shape: Shape, warmupSteps: Int, totalSteps: Int) {
        self.peak = peak
        self.shape = shape
        self.warmupSteps = warmupSteps
        self.totalSteps = max(1, totalSteps)
    }

    /// The rate for step `step` (0-based).
    public func rate(_ step: Int) -> Double {
        if step < warmupSteps { return peak * Double(step + 1) / Double(max(1, warmupSteps)) }
        let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
        switch shape {
        case .constant: return peak
        case .linear: return peak * max(0, 1 - progress)
        case .cosine: return peak * 0.5 * (1 + Foundation.cos(Double.pi * min(1, progress)))
        }
    }
}
