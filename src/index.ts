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
