// swift-tools-version:6.1
import PackageDescription

// Layers (see DESIGN.md): prs → PRSRunner → PRSStore → PRSCore; prs → PRSBackends → PRSCore.
// PRSCore performs no I/O; PRSRunner never names a concrete backend.
#if arch(x86_64)
// The kernels need AVX2, FMA and F16C (x86-64-v3); other architectures use the portable C.
let kernelFlags: [CSetting] = [.unsafeFlags(["-mavx2", "-mfma", "-mf16c", "-O3"])]
#else
let kernelFlags: [CSetting] = [.unsafeFlags(["-O3"])]
#endif

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "prs",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "prs", targets: ["prs"]),
        .library(name: "GGUF", targets: ["GGUF"]),
        .library(name: "LMEngine", targets: ["LMEngine"]),
        .library(name: "LMTraining", targets: ["LMTraining"]),
        .library(name: "PRSCore", targets: ["PRSCore"]),
        .library(name: "PRSBackends", targets: ["PRSBackends"]),
        .library(name: "PRSStore", targets: ["PRSStore"]),
        .library(name: "PRSRunner", targets: ["PRSRunner"]),
        .library(name: "PRSServer", targets: ["PRSServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.30.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        .target(name: "GGUF", swiftSettings: strict),
        .target(name: "CKernels", cSettings: kernelFlags),
        .target(name: "LMEngine", dependencies: ["GGUF", "CKernels"], swiftSettings: strict),
        // OpenBLAS (Debian's libopenblas-dev) for training's float32/float64 products.
        .systemLibrary(name: "COpenBLAS", pkgConfig: nil, providers: [.apt(["libopenblas-dev"])]),
        .target(name: "LMTraining", dependencies: ["LMEngine", "GGUF", "CKernels", "COpenBLAS"], swiftSettings: strict),
        .target(name: "PRSCore", swiftSettings: strict),
        .target(
            name: "PRSBackends",
            dependencies: [
                "PRSCore", "LMEngine", "LMTraining",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "PRSStore",
            dependencies: ["PRSCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .target(
            name: "PRSRunner",
            dependencies: ["PRSCore", "PRSStore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "PRSServer",
            dependencies: [
                "PRSCore", "LMEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "prs",
            dependencies: [
                "PRSCore", "PRSBackends", "PRSStore", "PRSRunner", "PRSServer", "GGUF", "LMEngine", "LMTraining",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "PRSTestSupport",
            dependencies: ["PRSCore"],
            path: "Tests/PRSTestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF"], exclude: ["Corpus"], swiftSettings: strict),
        .testTarget(name: "LMEngineTests", dependencies: ["LMEngine", "GGUF", "CKernels"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "LMTrainingTests", dependencies: ["LMTraining", "LMEngine", "GGUF"], swiftSettings: strict),
        .testTarget(name: "PRSCoreTests", dependencies: ["PRSCore", "PRSTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "PRSBackendsTests",
            dependencies: [
                "PRSCore", "PRSBackends", "PRSTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "PRSStoreTests", dependencies: ["PRSCore", "PRSStore"], swiftSettings: strict),
        .testTarget(
            name: "PRSRunnerTests",
            dependencies: ["PRSCore", "PRSStore", "PRSRunner", "PRSTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(name: "PRSIntegrationTests", dependencies: ["PRSCore"], swiftSettings: strict),
    ]
)
