import CKernels
import Foundation

/// The kernel table the engine's products run on (DESIGN.md, "Instruction sets"): picked once
/// from what the processor and the OS allow, or forced with `PRS_ISA`. Every table gives the
/// same bits as the AVX2 one.
public enum InstructionSet: String, Sendable, CaseIterable, Codable {
    /// AVX2, FMA and F16C: the baseline (on other architectures the portable C, named "portable").
    case avx2
    /// AVX-512 F/DQ/BW/VL with VNNI: the AVX2 tile with VPDPBUSD products.
    case avx512
    /// AMX tiles, granted by Linux: the quantized products of 8 tokens or more run on INT8
    /// tiles (16 weight rows × 16 tokens a multiply), smaller ones on the AVX-512 tile; with
    /// PRS_ISA=amx the bfloat16 products (training's frozen weights) run on BF16 tiles too.
    case amx

    /// What each table needs, for error messages.
    var requirement: String {
        switch self {
        case .avx2: "AVX2, FMA and F16C"
        case .avx512:
            "AVX-512 F, DQ, BW and VL with VNNI (/proc/cpuinfo: avx512f avx512dq avx512bw avx512vl avx512_vnni) and "
                + "the OS's ZMM state"
        case .amx:
            "AMX-TILE, AMX-INT8 and AMX-BF16 with AVX-512 (/proc/cpuinfo: amx_tile amx_int8 amx_bf16), and Linux's "
                + "permission for the tile data (arch_prctl ARCH_REQ_XCOMP_PERM)"
        }
    }

    /// The table's number in CKernels (lm_q8_set_isa).
    public var index: Int32 { self == .avx2 ? 0 : self == .avx512 ? 1 : 2 }

    /// Whether this machine and OS allow the table.
    public var isAvailable: Bool {
        #if arch(x86_64)
            lm_isa_available(index) != 0
        #else
            false
        #endif
    }

    /// The tables this machine has, best last.
    public static var available: [InstructionSet] { allCases.filter(\.isAvailable) }

    /// The table `PRS_ISA` asks for (nil: unset, the best the machine has). A value that names no
    /// table, or a table this machine lacks, is an error naming the variable and what is missing.
    public static func requested(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> InstructionSet? {
        guard let raw = environment["PRS_ISA"], !raw.isEmpty else { return nil }
        guard let isa = InstructionSet(rawValue: raw.lowercased()) else {
            throw ModelError("PRS_ISA=\(raw) names no kernel table; expected avx2, avx512 or amx")
        }
        guard isa.isAvailable else {
            throw ModelError(
                "PRS_ISA=\(raw) asks for the \(isa.rawValue) kernels, but this machine does not allow them: they "
                    + "need \(isa.requirement)"
            )
        }
        return isa
    }

    /// The name of the table the quantized products use now: "avx2", "avx512", "amx", or
    /// "portable" off x86.
    public static var active: String {
        #if arch(x86_64)
            switch lm_q8_isa() {
            case 2: return "amx"
            case 1: return "avx512"
            default: return "avx2"
            }
        #else
            return "portable"
        #endif
    }

    /// The machine's memory read bandwidth in GB/s with `threads` threads (a 1 GiB buffer summed
    /// with vector loads, best of three passes): what a bandwidth-bound decode can reach.
    public static func readBandwidth(threads: Int) -> Double {
        lm_read_bandwidth(Int32(threads), 1 << 30, 3)
    }
}
