/// A metadata value of a GGUF file.
public enum MetadataValue: Sendable, Hashable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case uint64(UInt64)
    case int64(Int64)
    case float32(Float)
    case float64(Double)
    case bool(Bool)
    case string(String)
    /// An array of one element type (arrays of arrays are refused on reading).
    case array(MetadataArray)

    /// The GGUF value type ids.
    public enum ValueType: UInt32, Sendable {
        case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
        case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

        /// Bytes of one value; `nil` for strings and arrays, whose size varies.
        var fixedSize: Int? {
            switch self {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            case .uint64, .int64, .float64: 8
            case .string, .array: nil
            }
        }

        var name: String {
            switch self {
            case .uint8: "uint8"
            case .int8: "int8"
            case .uint16: "uint16"
            case .int16: "int16"
            case .uint32: "uint32"
            case .int32: "int32"
            case .float32: "float32"
            case .bool: "bool"
            case .string: "string"
            case .array: "array"
            case .uint64: "uint64"
            case .int64: "int64"
            case .float64: "float64"
            }
        }
    }

    public var type: ValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .uint64: .uint64
        case .int64: .int64
        case .float32: .float32
        case .float64: .float64
        case .bool: .bool
        case .string: .string
        case .array: .array
        }
    }

    /// The value as an integer, when it is one of the integer types (and fits).
    public var integer: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .int64(let v): Int(v)
        case .uint64(let v): v <= UInt64(Int.max) ? Int(v) : nil
        default: nil
        }
    }

    public var float: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: nil
        }
    }

    public var string: String? { if case .string(let s) = self { s } else { nil } }
    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var array: MetadataArray? { if case .array(let a) = self { a } else { nil } }

    /// A short description of the type, e.g. `array of int32`.
    public var typeDescription: String {
        if case .array(let a) = self { return "array of \(a.elementType.name)" }
        return type.name
    }
}

/// An array metadata value, stored by element type.
public enum MetadataArray: Sendable, Hashable {
    case strings([String])
    case floats([Float])
    case doubles([Double])
    case integers([Int64], MetadataValue.ValueType)
    case uint64s([UInt64])
    case bools([Bool])

    public var elementType: MetadataValue.ValueType {
        switch self {
        case .strings: .string
        case .floats: .float32
        case .doubles: .float64
        case .integers(_, let t): t
        case .uint64s: .uint64
        case .bools: .bool
        }
    }

    public var count: Int {
        switch self {
        case .strings(let a): a.count
        case .floats(let a): a.count
        case .doubles(let a): a.count
        case .integers(let a, _): a.count
        case .uint64s(let a): a.count
        case .bools(let a): a.count
        }
    }
}
