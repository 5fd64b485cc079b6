import LMTraining

/// A frozen matrix's two products against float64 sums of the values it is meant to multiply.
enum FrozenProducts {
    /// y = x · Wᵀ and dx = start + dy · W through `m` (n rows of x and dy), each output against
    /// the float64 sum over `input(x)` and `weight(index into W)`; the worst absolute difference,
    /// and y followed by dx.
    static func worstError(
        _ m: any FrozenMatrix, x: [Float], dy: [Float], n: Int, start: Float,
        input: (Float) -> Double, weight: (Int) -> Double
    ) -> (worst: Double, outputs: [Float]) {
        let rows = m.rows
        let cols = m.cols
        var y = [Float](repeating: 0, count: n * rows)
        var dx = [Float](repeating: start, count: n * cols)
        m.multiply(x, n, &y, accumulate: false)
        m.multiplyTransposed(dy, n, &dx, accumulate: true)
        var worst = 0.0
        for i in 0..<n {
            for o in 0..<rows {
                var s = 0.0
                for k in 0..<cols { s += input(x[i * cols + k]) * weight(o * cols + k) }
                worst = max(worst, abs(Double(y[i * rows + o]) - s))
            }
            for c in 0..<cols {
                var s = Double(start)
                for k in 0..<rows { s += input(dy[i * rows + k]) * weight(k * cols + c) }
                worst = max(worst, abs(Double(dx[i * cols + c]) - s))
            }
        }
        return (worst, y + dx)
    }
}
