/**
 * Collective ops (domain `shardc.collective`, see src/passes/sharding/plan.ts for their meaning
 * and attributes). They change how a value is distributed over the mesh, never its global value:
 *
 * - In the GLOBAL sharded graph (global shapes) every collective returns its input's type.
 * - In a device's LOCAL graph (after SPMD lowering) a collective may change the local shape
 *   (AllGather grows the gathered dim, ReduceScatter/LocalShard shrink it, AllToAll does both).
 *   That shape depends on the device's group, so the lowering stores it on the node as the int
 *   list attribute `_local_shape`, and infer() returns it when present. The lowering also stores
 *   `_group` (the ranks along the mesh axis, in axis order).
 *
 * A single device cannot evaluate a collective: the reference evaluation is the multi-device
 * simulator (src/targets/cpu/spmd.ts + collectives.ts), so evaluate() here is a user error.
 */
import { dtypeFromOnnx } from '../dtype.js';
import { UserError } from '../errors.js';
import { COLLECTIVE_DOMAIN } from '../graph.js';
import type { InferContext, OpDef, TypeInfo } from '../registry.js';
import { input } from './util.js';

/** Attribute that holds a collective's local output shape in a device graph. */
export const LOCAL_SHAPE_ATTR = '_local_shape';
/** Attribute that holds the ranks of a collective's group (along its mesh axis, in axis order). */
export const GROUP_ATTR = '_group';

function passThrough(ctx: InferContext): TypeInfo[] {
  const x = input(ctx, 0);
  const local = ctx.attrs.maybeInts(LOCAL_SHAPE_ATTR);
  if (local && x.shape && local.length !== x.shape.length)
    throw new UserError(`${LOCAL_SHAPE_ATTR} [${local}] has rank ${local.length} but the input has rank ${x.shape.length}`, {
      node: ctx.node.label,
    });
  return [{ dtype: x.dtype, shape: local ? local.slice() : x.shape?.slice() }];
}

function recvType(ctx: InferContext): TypeInfo[] {
  const code = ctx.attrs.maybeInt('dtype');
  const dtype = code === undefined ? ctx.node.outputs[0]?.dtype : dtypeFromOnnx(code);
  if (!dtype) throw new UserError(`Recv needs an int attribute 'dtype' (ONNX data type code)`, { node: ctx.node.label });
  const shape = ctx.attrs.maybeInts(LOCAL_SHAPE_ATTR) ?? ctx.attrs.maybeInts('shape') ?? ctx.node.outputs[0]?.shape;
  return [{ dtype, shape: shape?.slice() }];
}

function needsRuntime(op: string): never {
  throw new UserError(`collective ${op} needs the multi-device runtime (run the per-device programs with runSpmd)`);
}

function collective(op: string, inputs: [number, number], infer: (ctx: InferContext) => TypeInfo[] = passThrough): OpDef {
  return {
    op,
    domain: COLLECTIVE_DOMAIN,
    family: 'collective',
    inputs,
    outputs: [1, 1],
    infer,
    evaluate: () => needsRuntime(op),
    flops: () => 0,
  };
}

export const collectiveOps: OpDef[] = [
  collective('AllReduce', [1, 1]),
  collective('AllGather', [1, 1]),
  collective('ReduceScatter', [1, 1]),
  collective('AllToAll', [1, 1]),
  collective('LocalShard', [1, 1]),
  collective('LocalPartial', [1, 1]),
  collective('Broadcast', [1, 1]),
  // Send passes its input through (a token later steps can depend on); Recv may take such a token.
  collective('Send', [1, 1]),
  collective('Recv', [0, 1], recvType),
];
