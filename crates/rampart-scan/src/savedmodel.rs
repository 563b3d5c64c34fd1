//! Rules for TensorFlow `saved_model.pb`.
//!
//! Verdict policy, per `NodeDef` in the graphs and in the function library:
//!
//! - **malicious** — ops that read or write arbitrary files or run Python: `ReadFile`,
//!   `WriteFile`, `MatchingFiles`, `PyFunc`, `PyFuncStateless`, `EagerPyFunc`, `ImmutableConst`
//!   (maps a file), reader/dataset ops over files, summary file writers, and the debug ops
//!   (`DebugIdentity`, …) when their `debug_urls` name a destination, `PrintV2` whose
//!   `output_stream` is a file;
//! - **expected** (no finding) — checkpoint save/restore (`SaveV2`, `RestoreV2`,
//!   `MergeV2Checkpoints`, `ShardedFilename`, …): every SavedModel contains them;
//! - **Keras metadata** — the layer configs TF 2 Keras stores in the object graph are judged by
//!   the Keras rules ([`crate::keras::judge`]: Lambda bytecode, dangerous modules, …);
//! - **review** — ops that are neither in the built-in allow-list below nor library functions
//!   (custom ops load native code);
//! - **error** — the protobuf could not be decoded, or a limit stopped the walk.

use rampart_formats::savedmodel::{Limits, Model, parse};
use rampart_formats::source::Source;

use crate::{Finding, Report, Severity, Verdict};

/// Ops that read or write files, or run Python code.
pub const DANGEROUS_OPS: &[&str] = &[
    "ReadFile",
    "WriteFile",
    "MatchingFiles",
    "PyFunc",
    "PyFuncStateless",
    "EagerPyFunc",
    "ImmutableConst",
    "WholeFileReader",
    "WholeFileReaderV2",
    "TextLineReader",
    "TextLineReaderV2",
    "FixedLengthRecordReader",
    "FixedLengthRecordReaderV2",
    "TFRecordReader",
    "TFRecordReaderV2",
    "LMDBReader",
    "TextLineDataset",
    "TFRecordDataset",
    "TFRecordDatasetV2",
    "FixedLengthRecordDataset",
    "FixedLengthRecordDatasetV2",
    "ExperimentalLMDBDataset",
    "LMDBDataset",
    "CSVDataset",
    "CSVDatasetV2",
    "ExperimentalCSVDataset",
    "DatasetToTFRecord",
    "ExperimentalDatasetToTFRecord",
    "SaveDataset",
    "SaveDatasetV2",
    "LoadDataset",
    "SnapshotDataset",
    "SnapshotDatasetV2",
    "CreateSummaryFileWriter",
    "CreateSummaryDbWriter",
    "WriteSummary",
    "WriteRawProtoSummary",
    "ImportEvent",
    "LoadAndRemapMatrix",
    "DecodeProtoV2",
    "EncodeProto",
];

/// Debug ops whose `debug_urls` attribute makes them write to files or sockets.
const DEBUG_OPS: &[&str] = &[
    "DebugIdentity",
    "DebugIdentityV2",
    "DebugIdentityV3",
    "DebugNanCount",
    "DebugNumericSummary",
    "DebugNumericSummaryV2",
    "Copy",
    "CopyHost",
];

/// Checkpoint ops present in every SavedModel (expected, not findings).
pub const CHECKPOINT_OPS: &[&str] = &[
    "SaveV2",
    "RestoreV2",
    "Save",
    "Restore",
    "SaveSlices",
    "RestoreSlice",
    "MergeV2Checkpoints",
    "ShardedFilename",
    "ShardedFilenames",
    "StringJoin",
    "StaticRegexFullMatch",
];

/// Ordinary built-in ops (math, arrays, control flow, variables, neural-network kernels).
const KNOWN_OPS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "AddN",
    "AddV2",
    "All",
    "Any",
    "ApproximateEqual",
    "ArgMax",
    "ArgMin",
    "AsString",
    "Asin",
    "Asinh",
    "Assert",
    "Assign",
    "AssignAdd",
    "AssignAddVariableOp",
    "AssignSub",
    "AssignSubVariableOp",
    "AssignVariableOp",
    "Atan",
    "Atan2",
    "Atanh",
    "AvgPool",
    "AvgPool3D",
    "AvgPoolGrad",
    "BatchMatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "BatchNormWithGlobalNormalization",
    "BatchToSpaceND",
    "BiasAdd",
    "BiasAddGrad",
    "BiasAddV1",
    "Bincount",
    "Bitcast",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "BroadcastArgs",
    "BroadcastGradientArgs",
    "BroadcastTo",
    "Bucketize",
    "Case",
    "Cast",
    "Ceil",
    "CheckNumerics",
    "CheckNumericsV2",
    "Cholesky",
    "ClipByValue",
    "Complex",
    "ComplexAbs",
    "Concat",
    "ConcatOffset",
    "ConcatV2",
    "Const",
    "ConsumeMutexLock",
    "ControlTrigger",
    "Conv",
    "Conv2D",
    "Conv2DBackpropFilter",
    "Conv2DBackpropInput",
    "Conv3D",
    "Conv3DBackpropInputV2",
    "Cos",
    "Cosh",
    "CropAndResize",
    "Cross",
    "Cumprod",
    "Cumsum",
    "DecodeBase64",
    "DecodeJpeg",
    "DecodePng",
    "DecodeImage",
    "DecodeRaw",
    "DeleteSessionTensor",
    "DepthToSpace",
    "DepthwiseConv2dNative",
    "DepthwiseConv2dNativeBackpropFilter",
    "DepthwiseConv2dNativeBackpropInput",
    "Dequantize",
    "DestroyResourceOp",
    "DestroyTemporaryVariable",
    "Diag",
    "DiagPart",
    "Digamma",
    "Dilation2D",
    "DisableCopyOnRead",
    "Div",
    "DivNoNan",
    "DynamicPartition",
    "DynamicStitch",
    "Einsum",
    "Elu",
    "EluGrad",
    "EmptyTensorList",
    "EncodeBase64",
    "EncodeJpeg",
    "EncodePng",
    "EnsureShape",
    "Enter",
    "Equal",
    "Erf",
    "Erfc",
    "Exit",
    "Exp",
    "ExpandDims",
    "Expm1",
    "ExtractImagePatches",
    "FFT",
    "FFT2D",
    "FakeQuantWithMinMaxArgs",
    "FakeQuantWithMinMaxVars",
    "FakeQuantWithMinMaxVarsPerChannel",
    "Fill",
    "Fingerprint",
    "Floor",
    "FloorDiv",
    "FloorMod",
    "FusedBatchNorm",
    "FusedBatchNormGrad",
    "FusedBatchNormGradV3",
    "FusedBatchNormV2",
    "FusedBatchNormV3",
    "FusedPadConv2D",
    "FusedResizeAndPadConv2D",
    "Gather",
    "GatherNd",
    "GatherV2",
    "Greater",
    "GreaterEqual",
    "HashTable",
    "HashTableV2",
    "HistogramFixedWidth",
    "IFFT",
    "IRFFT",
    "Identity",
    "IdentityN",
    "If",
    "Imag",
    "InTopK",
    "InTopKV2",
    "InitializeTable",
    "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2",
    "InitializeTableV2",
    "InvertPermutation",
    "IsFinite",
    "IsInf",
    "IsNan",
    "IsVariableInitialized",
    "L2Loss",
    "LRN",
    "LeakyRelu",
    "LeakyReluGrad",
    "LeftShift",
    "Less",
    "LessEqual",
    "Lgamma",
    "LinSpace",
    "ListDiff",
    "Log",
    "Log1p",
    "LogSoftmax",
    "LogicalAnd",
    "LogicalNot",
    "LogicalOr",
    "LookupTableExport",
    "LookupTableExportV2",
    "LookupTableFind",
    "LookupTableFindV2",
    "LookupTableImport",
    "LookupTableImportV2",
    "LookupTableInsert",
    "LookupTableInsertV2",
    "LookupTableSize",
    "LookupTableSizeV2",
    "LoopCond",
    "LowerBound",
    "MatMul",
    "MatrixBandPart",
    "MatrixDeterminant",
    "MatrixDiag",
    "MatrixDiagPart",
    "MatrixDiagPartV3",
    "MatrixDiagV3",
    "MatrixInverse",
    "MatrixSetDiag",
    "MatrixSetDiagV3",
    "MatrixSolve",
    "MatrixTriangularSolve",
    "Max",
    "MaxPool",
    "MaxPool3D",
    "MaxPoolGrad",
    "MaxPoolV2",
    "MaxPoolWithArgmax",
    "Maximum",
    "Mean",
    "Merge",
    "MergeSummary",
    "Min",
    "Minimum",
    "MirrorPad",
    "Mod",
    "Mul",
    "MulNoNan",
    "MutableDenseHashTable",
    "MutableDenseHashTableV2",
    "MutableHashTable",
    "MutableHashTableOfTensors",
    "MutableHashTableOfTensorsV2",
    "MutableHashTableV2",
    "MutexLock",
    "MutexV2",
    "Ndtri",
    "Neg",
    "NextIteration",
    "NoOp",
    "NonMaxSuppression",
    "NonMaxSuppressionV2",
    "NonMaxSuppressionV3",
    "NonMaxSuppressionV4",
    "NonMaxSuppressionV5",
    "NotEqual",
    "OneHot",
    "OnesLike",
    "OptionalFromValue",
    "OptionalGetValue",
    "OptionalHasValue",
    "OptionalNone",
    "Pack",
    "Pad",
    "PadV2",
    "PartitionedCall",
    "Placeholder",
    "PlaceholderWithDefault",
    "Pow",
    "PreventGradient",
    "Print",
    "Prod",
    "Qr",
    "QuantizeAndDequantizeV2",
    "QuantizeAndDequantizeV3",
    "QuantizeAndDequantizeV4",
    "QuantizeV2",
    "QueueDequeueV2",
    "RFFT",
    "RaggedGather",
    "RaggedRange",
    "RaggedTensorFromVariant",
    "RaggedTensorToSparse",
    "RaggedTensorToTensor",
    "RaggedTensorToVariant",
    "RandomShuffle",
    "RandomStandardNormal",
    "RandomUniform",
    "RandomUniformInt",
    "Range",
    "Rank",
    "ReadVariableOp",
    "Real",
    "RealDiv",
    "Reciprocal",
    "ReciprocalGrad",
    "RefIdentity",
    "RegexFullMatch",
    "RegexReplace",
    "Relu",
    "Relu6",
    "Relu6Grad",
    "ReluGrad",
    "Reshape",
    "ResizeArea",
    "ResizeBicubic",
    "ResizeBilinear",
    "ResizeNearestNeighbor",
    "ResourceGather",
    "ResourceGatherNd",
    "ResourceScatterAdd",
    "ResourceScatterUpdate",
    "ResourceStridedSliceAssign",
    "Reverse",
    "ReverseSequence",
    "ReverseV2",
    "RightShift",
    "Rint",
    "Roll",
    "Round",
    "Rsqrt",
    "RsqrtGrad",
    "SampleDistortedBoundingBoxV2",
    "ScatterNd",
    "ScatterNdUpdate",
    "SegmentMax",
    "SegmentMean",
    "SegmentMin",
    "SegmentProd",
    "SegmentSum",
    "Select",
    "SelectV2",
    "Selu",
    "SeluGrad",
    "Shape",
    "ShapeN",
    "Sigmoid",
    "SigmoidGrad",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Snapshot",
    "Softmax",
    "SoftmaxCrossEntropyWithLogits",
    "Softplus",
    "SoftplusGrad",
    "Softsign",
    "SpaceToBatchND",
    "SpaceToDepth",
    "SparseFillEmptyRows",
    "SparseReshape",
    "SparseSegmentMean",
    "SparseSegmentSqrtN",
    "SparseSegmentSum",
    "SparseSoftmaxCrossEntropyWithLogits",
    "SparseTensorDenseMatMul",
    "SparseToDense",
    "Split",
    "SplitV",
    "Sqrt",
    "SqrtGrad",
    "Square",
    "SquaredDifference",
    "Squeeze",
    "Stack",
    "StackPopV2",
    "StackPushV2",
    "StackV2",
    "StatefulPartitionedCall",
    "StatefulStandardNormalV2",
    "StatefulUniform",
    "StatelessCase",
    "StatelessIf",
    "StatelessMultinomial",
    "StatelessRandomGetKeyCounter",
    "StatelessRandomNormal",
    "StatelessRandomNormalV2",
    "StatelessRandomUniform",
    "StatelessRandomUniformInt",
    "StatelessRandomUniformV2",
    "StatelessTruncatedNormal",
    "StatelessTruncatedNormalV2",
    "StatelessWhile",
    "StopGradient",
    "StridedSlice",
    "StridedSliceGrad",
    "StringFormat",
    "StringLength",
    "StringLower",
    "StringSplit",
    "StringSplitV2",
    "StringStrip",
    "StringToHashBucket",
    "StringToHashBucketFast",
    "StringToHashBucketStrong",
    "StringToNumber",
    "StringUpper",
    "Sub",
    "Substr",
    "Sum",
    "Svd",
    "Switch",
    "SymbolicGradient",
    "Tan",
    "Tanh",
    "TanhGrad",
    "TemporaryVariable",
    "TensorArrayGatherV3",
    "TensorArrayReadV3",
    "TensorArrayScatterV3",
    "TensorArraySizeV3",
    "TensorArrayV3",
    "TensorArrayWriteV3",
    "TensorListConcatV2",
    "TensorListElementShape",
    "TensorListFromTensor",
    "TensorListGetItem",
    "TensorListLength",
    "TensorListPopBack",
    "TensorListPushBack",
    "TensorListReserve",
    "TensorListSetItem",
    "TensorListStack",
    "TensorScatterAdd",
    "TensorScatterUpdate",
    "Tile",
    "TopK",
    "TopKV2",
    "Transpose",
    "TruncateDiv",
    "TruncateMod",
    "TruncatedNormal",
    "Unique",
    "UniqueV2",
    "UniqueWithCounts",
    "Unpack",
    "UnsortedSegmentMax",
    "UnsortedSegmentMin",
    "UnsortedSegmentProd",
    "UnsortedSegmentSum",
    "UpperBound",
    "VarHandleOp",
    "VarIsInitializedOp",
    "Variable",
    "VariableShape",
    "VariableV2",
    "Where",
    "While",
    "Xdivy",
    "Xlog1py",
    "Xlogy",
    "ZerosLike",
    "Zeta",
    "_Arg",
    "_Retval",
    "_Recv",
    "_Send",
    "_HostRecv",
    "_HostSend",
    "_DeviceArg",
    "_DeviceRetval",
    "_FusedBatchNormEx",
    "_FusedConv2D",
    "_FusedMatMul",
    "_MklMatMul",
    "NoOpV2",
    "AnonymousIteratorV2",
    "AnonymousIteratorV3",
    "DeleteIterator",
    "IteratorGetNext",
    "MakeIterator",
    "OptimizeDatasetV2",
    "BatchDatasetV2",
    "MapDataset",
    "TensorSliceDataset",
    "TensorDataset",
    "RangeDataset",
    "PrefetchDataset",
    "ShuffleDatasetV3",
    "RepeatDataset",
    "FilterDataset",
    "CacheDatasetV2",
    "ModelDataset",
    "ParallelMapDatasetV2",
    "FlatMapDataset",
    "Relu6V2",
    "ResourceApplyAdam",
    "ResourceApplyGradientDescent",
    "ResourceApplyMomentum",
    "ResourceApplyRMSProp",
    "ResourceApplyAdagradV2",
    "ResourceApplyKerasMomentum",
    "HashTableV3",
    "LookupTableRemoveV2",
    "Empty",
    "Polygamma",
    "Igamma",
    "Igammac",
    "Betainc",
    "Multinomial",
    "ParameterizedTruncatedNormal",
    "RandomGamma",
    "RandomPoisson",
    "RandomPoissonV2",
    "TensorListSplit",
    "TensorListConcat",
    "TensorListResize",
    "TensorListScatterIntoExistingList",
    "TensorListGather",
    "TensorListScatter",
    "TensorListScatterV2",
    "CollectiveReduceV2",
    "CollectiveGatherV2",
    "Sort",
    "UnravelIndex",
    "Conj",
    "Angle",
    "Erfinv",
    "Sinc",
    "Round2",
    "BesselI0e",
    "BesselI1e",
    "EuclideanNorm",
    "LogMatrixDeterminant",
    "MatrixExponential",
    "MatrixLogarithm",
    "SelfAdjointEigV2",
    "Lu",
    "BandedTriangularSolve",
    "TridiagonalSolve",
    "ClipByNorm",
    "ResourceScatterNdUpdate",
    "ResourceScatterNdAdd",
    "SparseSegmentMeanWithNumSegments",
    "SparseSegmentSumWithNumSegments",
    "DenseBincount",
    "SparseBincount",
    "RaggedBincount",
    "RaggedTensorToVariantGradient",
    "RaggedTensorFromVariantGradient",
    "ReadVariableXlaSplitND",
    "XlaSharding",
    "XlaCallModule",
    "UnicodeDecodeWithOffsets",
    "UnicodeEncode",
    "UnicodeScript",
    "UnicodeTranscode",
    "StringNGrams",
    "RaggedCountSparseOutput",
    "AudioSpectrogram",
    "Mfcc",
];

/// Does `op` (or its `debug_urls`/`output_stream`) read or write files or run code?
fn danger(op: &str, attrs: &[(String, String)]) -> Option<String> {
    if DANGEROUS_OPS.contains(&op) {
        return Some(format!("op {op} reads or writes files or runs Python"));
    }
    if DEBUG_OPS.contains(&op)
        && let Some((_, url)) = attrs
            .iter()
            .find(|(k, v)| k == "debug_urls" && !v.is_empty())
    {
        return Some(format!("debug op {op} sends tensors to {url:?}"));
    }
    if op == "PrintV2"
        && let Some((_, s)) = attrs.iter().find(|(k, v)| {
            k == "output_stream"
                && !matches!(
                    v.as_str(),
                    "stderr" | "stdout" | "log(info)" | "log(warning)" | "log(error)"
                )
        })
    {
        return Some(format!("PrintV2 writes to {s:?}"));
    }
    None
}

fn finding(
    rule: &str,
    severity: Severity,
    message: String,
    offset: u64,
    evidence: String,
) -> Finding {
    Finding {
        rule: rule.to_owned(),
        severity,
        message,
        member: None,
        offset: Some(offset),
        evidence: Some(evidence),
    }
}

/// Judges an already decoded SavedModel.
#[must_use]
pub fn judge(model: &Model) -> Report {
    let mut report = Report::new();
    let json_limits = rampart_formats::json::JsonLimits {
        max_depth: 256,
        max_values: 10_000_000,
    };
    for (at, identifier, metadata) in &model.user_objects {
        if !metadata.trim_start().starts_with('{') {
            continue;
        }
        match rampart_formats::json::parse(metadata.as_bytes(), &json_limits) {
            Ok(v) => {
                let mut r = crate::keras::judge(&v);
                for f in &mut r.findings {
                    f.offset = f.offset.or(Some(*at));
                    f.message = format!("{} (Keras object {identifier:?})", f.message);
                }
                report.merge(r);
            }
            Err(e) => report.add(
                Verdict::Error,
                finding(
                    "savedmodel/bad-keras-metadata",
                    Severity::Medium,
                    format!("Keras metadata of {identifier:?} is not valid JSON: {e}"),
                    *at,
                    identifier.clone(),
                ),
            ),
        }
    }
    if model.metadata_truncated {
        report.add(
            Verdict::Error,
            finding(
                "savedmodel/limit",
                Severity::Medium,
                "Keras object metadata exceeds max_keras_metadata; not all of it was judged"
                    .to_owned(),
                0,
                String::new(),
            ),
        );
    }
    let mut custom_seen = std::collections::HashSet::new();
    for n in &model.nodes {
        let op = n.op.as_str();
        let place = n
            .function
            .as_deref()
            .map_or_else(|| "the graph".to_owned(), |f| format!("function {f:?}"));
        if let Some(why) = danger(op, &n.string_attrs) {
            report.add(
                Verdict::Malicious,
                finding(
                    "savedmodel/file-or-exec-op",
                    Severity::Critical,
                    format!("{why} (node {:?} in {place})", n.name),
                    n.offset,
                    op.to_owned(),
                ),
            );
        } else if !(KNOWN_OPS.contains(&op)
            || CHECKPOINT_OPS.contains(&op)
            || DEBUG_OPS.contains(&op)
            || op == "PrintV2"
            || model.functions.iter().any(|f| f == op))
            && custom_seen.insert(op.to_owned())
        {
            report.add(
                Verdict::Review,
                finding(
                    "savedmodel/unknown-op",
                    Severity::Medium,
                    format!(
                        "op {op:?} (node {:?} in {place}) is not a known built-in op: custom ops load native code",
                        n.name
                    ),
                    n.offset,
                    op.to_owned(),
                ),
            );
        }
    }
    report
}

/// True when `head` looks like a `SavedModel` protobuf: optional `saved_model_schema_version`
/// (field 1 = 1) then a `meta_graphs` entry (field 2) whose length fits in the file and whose
/// first field is `meta_info_def` (1) or `graph_def` (2).
#[must_use]
pub fn sniff(head: &[u8], len: u64) -> bool {
    let rest = match head {
        [0x08, 0x01, rest @ ..] => rest,
        _ => head,
    };
    let [0x12, rest @ ..] = rest else {
        return false;
    };
    let mut n = 0u64;
    let mut used = 0usize;
    for (i, b) in rest.iter().take(10).enumerate() {
        n |= u64::from(b & 0x7f) << (7 * i);
        used = i + 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    let consumed = (head.len() - rest.len() + used) as u64;
    n > 0 && consumed.saturating_add(n) <= len && matches!(rest.get(used), Some(0x0a | 0x12))
}

/// Decodes `src` (size checked before reading) and judges it.
#[must_use]
pub fn scan(src: &dyn Source, limits: &Limits) -> Report {
    match parse(src, limits) {
        Ok(model) => judge(&model),
        Err(e) => {
            let mut report = Report::new();
            report.add(
                Verdict::Error,
                Finding {
                    rule: if e.is_limit() {
                        "savedmodel/limit"
                    } else {
                        "savedmodel/malformed"
                    }
                    .to_owned(),
                    severity: Severity::Medium,
                    message: format!("could not decode saved_model.pb: {e}"),
                    member: None,
                    offset: Some(e.offset()),
                    evidence: None,
                },
            );
            report
        }
    }
}

/// Fuzz entry point: parse and judge `data` with default limits.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let report = scan(&data.to_vec(), &Limits::default());
    // INVARIANT: a safe verdict carries no finding.
    assert!(report.verdict != Verdict::Safe || report.findings.is_empty());
    let _ = sniff(data, data.len() as u64);
}
