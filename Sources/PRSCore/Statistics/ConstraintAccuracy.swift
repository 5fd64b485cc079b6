/// IFEval's accuracies over scored responses: prompt-level (every constraint of a response
/// followed) and instruction-level (constraints followed among all constraints).
public struct ConstraintAccuracy: Sendable, Hashable, Codable {
    public var prompts: Int
    public var promptsFollowed: Int
    public var instructions: Int
    public var instructionsFollowed: Int
    /// Instruction-level accuracy per constraint id: (followed, total).
    public var byInstruction: [String: [Int]]

    public init(_ outcomes: [[ConstraintOutcome]]) {
        let withConstraints = outcomes.filter { !$0.isEmpty }
        prompts = withConstraints.count
        promptsFollowed = withConstraints.filter { $0.allSatisfy(\.follow) }.count
        let all = withConstraints.flatMap { $0 }
        instructions = all.count
        instructionsFollowed = all.filter(\.follow).count
        byInstruction = all.reduce(into: [:]) { acc, o in
            var v = acc[o.id] ?? [0, 0]
            v[0] += o.follow ? 1 : 0
            v[1] += 1
            acc[o.id] = v
        }
    }

    public var promptLevel: Double { prompts == 0 ? 0 : Double(promptsFollowed) / Double(prompts) }
    public var instructionLevel: Double { instructions == 0 ? 0 : Double(instructionsFollowed) / Double(instructions) }
}
