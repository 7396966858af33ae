/**
 * The public API of shardc. Every stage of the pipeline (DESIGN.md) is a function with typed input
 * and output; the command line is a thin layer over these.
 *
 *   const model = loadModel('model.onnx');
 *   const registry = createCoreRegistry();
 *   defaultPipeline({ registry, bindings: { batch: 1 } }).run(model.graph);
 *   const outputs = runGraph(model.graph, feeds, { registry });
 */
// IR
export * from './ir/dtype.js';
export * from './ir/shape.js';
export { Tensor, LazyTensor, type ConstantLocation } from './ir/tensor.js';
export { Attrs, type Attr, type AttrKind } from './ir/attrs.js';
export { Graph, Node, Value, DEFAULT_DOMAIN, COLLECTIVE_DOMAIN, subgraphCaptures } from './ir/graph.js';
export * from './ir/layout.js';
export { OpRegistry, type OpDef, type OpFamily, type TypeInfo, type InferContext, type EvalContext } from './ir/registry.js';
export { UserError, VerificationError, type ErrorLocation } from './ir/errors.js';
export { createCoreRegistry } from './ir/ops/index.js';
export { printGraph, parseGraph, type PrintOptions, type ParseOptions } from './ir/text.js';
export { verifyGraph, graphProblems } from './ir/verify.js';
// ONNX
export { loadModel, importModel, unsupportedOps, type Model, type ImportOptions } from './onnx/import.js';
export { readTensorFile, writeTensorFile, decodeTensorProto, encodeTensorProto } from './onnx/tensor-file.js';
export { readNpy, writeNpy } from './onnx/npy.js';
export { ModelBuilder, prng } from './onnx/builder.js';
// Passes
export * from './passes/index.js';
// CPU runtime
export { runGraph, evaluateGraph, type RunOptions } from './targets/cpu/interpreter.js';
// Verification
export { verifyModel, type VerifyOptions, type VerifyReport } from './verify/verify.js';
export { runConformance, runNodeTest, type ConformanceReport, type TestResult } from './verify/conformance.js';
export { compareTensors, type Tolerance } from './verify/compare.js';
export { randomInputs } from './verify/random-inputs.js';
export { summarizeModel, type ModelSummary } from './verify/model-summary.js';
// Sharding
export { DeviceMesh, DEFAULT_LINK, type MeshAxis, type AxisLink } from './passes/sharding/mesh.js';
export { splitDim, localShape, localRanges, shardTensor, assembleTensor } from './passes/sharding/shards.js';
export { ShardingRuleRegistry, type ShardingRule, type Candidate, type RuleContext, type LocalizeContext } from './passes/sharding/rule.js';
export { createCoreShardingRules } from './passes/sharding/rules/index.js';
export { shardGraph, printPlan, type ShardOptions } from './passes/sharding/index.js';
export type { ShardPlan, CollectiveRecord, CollectiveKind } from './passes/sharding/plan.js';
export { PRESETS, type Preset, type StrategyContext } from './passes/sharding/strategies/index.js';
export { lowerPlan, type DeviceProgram } from './passes/sharding/lower.js';
export { runSpmd, type SpmdOptions, type SpmdResult } from './targets/cpu/spmd.js';
export { exportModel } from './onnx/export.js';
// Bundles
export { partitionModel, type PartitionOptions, type PartitionResult } from './bundle/partition.js';
export { readBundle, loadBundlePrograms } from './bundle/read.js';
export { explainBundle, formatExplanation } from './bundle/explain.js';
export { verifySharded, type ShardedVerifyOptions, type ShardedVerifyReport } from './verify/sharded.js';
// Kernel IR and host programs (ahead-of-time device programs; the generated host.ts calls a HostRuntime)
export type { Kernel, KernelBody, Launch } from './codegen/kernel.js';
export type { HostProgram, HostRuntime, HostStep, DispatchStep, CollectiveStep, HostBuffer, HostSlot, HostTensorRef } from './codegen/host/program.js';
export { generateHostModule, generateHostModules, type HostModuleInfo, type HostModuleText } from './codegen/host/generate.js';
export { readHostProgram, decodeHostProgram, checkHostInputs } from './bundle/host-program.js';
export { checkManifest, checkPlan, manifestMesh, shardPlanFromRecord } from './bundle/read.js';
export { renderKernel as renderWgslKernel } from './codegen/wgsl/kernel.js';
export { identifier, IdentifierTable, commentSafe, stringLiteral } from './codegen/names.js';
export { recordHostProgram } from './codegen/host/record.js';
export { planMemory, memoryStats } from './codegen/host/memory.js';
export { fuseHostProgram, fuseLaunches, dispatchCount } from './codegen/fuse.js';
export { runHostProgramCpu, runHostProgramsCpu } from './codegen/host/cpu-run.js';
// WebGPU runtime
export { WebGPUSession, guardRun, deviceLoss, workgroupStorageBytes } from './targets/webgpu/session.js';
export { WebGPUMeshSession } from './targets/webgpu/mesh-session.js';
export * from './api/index.js';
export { renderReportHtml, opGraphView, layoutOpGraph } from './bundle/report-html/index.js';
export { buildReportView, type ReportView, type ReportProfile } from './bundle/report.js';
// Hardware descriptions and the cost model
export { loadHardware, parseHardware, meshWithHardware, axisLinks, hardwareJson, type Hardware } from './hardware/hardware.js';
export { calibratedHardware, fitFigures, type CalibrationSamples, type CalibrationFigures } from './hardware/calibrate.js';
export { calibrate, type CalibrateOptions, type CalibrationResult } from './bench/calibrate.js';
export { collectiveSeconds, opSeconds, deviceCost, planDeviceCosts } from './passes/sharding/cost.js';
export * from './passes/schedule/index.js';
