/**
 * Host tensors ↔ device words: float32 → f32, int32 → i32, int64 → i32 (each value checked to
 * fit: shape math stays on the host, so device int64 tensors hold indices and small integers),
 * bool → u32 0/1. Shared by every kernel backend.
 */
import type { DType } from '../ir/dtype.js';
import { UserError } from '../ir/errors.js';
import { Tensor } from '../ir/tensor.js';
import { type DeviceArray, allocDeviceArray } from './cpu.js';
import { checkDeviceDtype } from './run-graph.js';

export function toDeviceArray(t: Tensor, name = ''): DeviceArray {
  const type = checkDeviceDtype(t.dtype, { tensor: name || undefined });
  const out = allocDeviceArray(type, Math.max(1, t.size));
  const src = t.data as ArrayLike<number>;
  if (t.dtype === 'int64') {
    for (let i = 0; i < t.size; i++) {
      const v = src[i]!;
      if (v < -(2 ** 31) || v >= 2 ** 31)
        throw new UserError(`int64 value ${v} does not fit the device's 32-bit integers (int64 is narrowed to i32 on the device)`, { tensor: name || undefined });
      out[i] = v;
    }
  } else for (let i = 0; i < t.size; i++) out[i] = src[i]!;
  return out;
}

export function fromDeviceArray(a: DeviceArray, dtype: DType, shape: readonly number[]): Tensor {
  const n = shape.reduce((x, y) => x * y, 1);
  return Tensor.from(dtype, shape, n === a.length ? a : a.subarray(0, n));
}
