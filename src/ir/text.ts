/**
 * A readable, MLIR-like text form of graphs, for golden tests and debugging. It round-trips:
 * `printGraph(parseGraph(printGraph(g))) === printGraph(g)`, and printing is deterministic
 * (attributes and meta sorted by key, nodes in graph order).
 *
 *   graph main(%x: float32[batch,128,768], %mask: bool[batch,128]) -> (%y) {
 *     opsets {"": 17, "com.microsoft": 1}                (only when not the default {"": 17})
 *     meta {producer="pytorch"}
 *     %w = const float32[768,768] <external "weights.bin"@0+2359296>
 *     %b = const float32[3] [0.5, 1, -2]
 *     %y = MatMul(%x, %w) {transB=0} @matmul_0 meta {pattern="Attention#0"} : float32[batch,128,768] layout {tp: S(2)}
 *   }
 *
 * - Types: `float32[batch,128]` (dims are numbers or symbol products), `float32[]` a scalar,
 *   `float32[*]` unknown rank, `?[2,3]` unknown dtype, `?` nothing known.
 * - Names that are not plain (`[A-Za-z0-9_./-]+`) are JSON-quoted: `%"onnx::MatMul_12"`.
 *   An absent optional input prints as `none`; a node with no outputs omits `... =`.
 * - Constants: inline values when small (`[1, 2.5, nan, -inf]`), else `<elided fnv1a:…>` (a hash
 *   of the data, so a golden file still notices a change), or `<external "file"@offset+length>`
 *   (never loaded for printing). Parsed elided/external constants cannot be loaded unless
 *   `loadExternal` is given.
 * - Attributes keep their kind: `axis=1`, `alpha=0.2` (floats always print with a `.`, an
 *   exponent or as nan/inf), `perm=[0, 2, 1]`, `scales=[1.0, 2.0]`, `mode="constant"`, empty
 *   lists as `ints[]`/`floats[]`/`strings[]`/`tensors[]`/`graphs[]`, tensors as
 *   `tensor(float32[2] [1, 2])`, subgraphs nested as `graph body(...) -> (...) { ... }`.
 *   Float attributes are float32 (as in ONNX): the parser rounds them with Math.fround.
 * - A graph input with a default initializer prints as `%x: float32[3] = [1, 2, 3]` (it is
 *   also in graph.initializers, as the importer keeps it, but printed once).
 * - `//` starts a comment (to the end of the line) in parsed text.
 */
export type { ParseOptions, PrintOptions } from './text-common.js';
export { formatType, printGraph } from './text-print.js';
export { parseGraph } from './text-parse.js';
