/**
 * Strategy names → which preset annotates which mesh axis.
 *
 * Each preset owns one axis by name (`megatron` → tp, `data` → dp) and takes a mesh's only axis
 * whatever its name. `--strategy` names one preset or several joined by `+` (`data+megatron`);
 * every named preset must find its axis (else a UserError naming the axis), and the mesh's other
 * axes are taken by the presets that own them by name, so `--mesh dp=2,tp=2 --strategy megatron`
 * runs data on dp and megatron on tp. An axis that no preset takes is a UserError naming it.
 * `sequence` owns tp as well: it replaces megatron there (naming both is the "both want" error).
 * `pipeline` owns pp (strategies/pipeline.ts; MPMD, see pipeline/index.ts). `expert` owns ep (strategies/expert.ts).
 * `summa2d` is two presets of one name (tpr and tpc halves, strategies/summa2d.ts): the named one
 * takes tpr and the tpc half takes tpc as the preset that owns it.
 * (`auto` and spec files are handled by shardGraph.)
 */
import { UserError } from '../../../ir/errors.js';
import type { DeviceMesh } from '../mesh.js';
import { dataPreset } from './data.js';
import { expertPreset } from './expert.js';
import { megatronPreset } from './megatron.js';
import { pipelinePreset } from './pipeline.js';
import { sequencePreset } from './sequence.js';
import { summa2dColsPreset, summa2dRowsPreset } from './summa2d.js';
import type { Preset } from './types.js';

export type { AxisSeeds, Preset, StrategyContext } from './types.js';
export { dataPreset, megatronPreset, sequencePreset };

export const PRESETS: readonly Preset[] = [megatronPreset, dataPreset, summa2dRowsPreset, summa2dColsPreset, sequencePreset, expertPreset, pipelinePreset];
export const NOT_IMPLEMENTED: string[] = [];

export interface AxisPreset {
  axis: string;
  preset: Preset;
}

export function presetNamed(name: string): Preset {
  if (NOT_IMPLEMENTED.includes(name)) throw new UserError(`strategy ${name} is not implemented yet`);
  const p = PRESETS.find((x) => x.name === name);
  if (!p)
    throw new UserError(
      `unknown strategy ${JSON.stringify(name)} (available: ${[...new Set(PRESETS.map((x) => x.name)), 'auto', '<spec.json>'].join(', ')})`,
    );
  return p;
}

/** Which preset annotates each mesh axis (mesh order). */
export function assignPresets(strategy: string, mesh: DeviceMesh): AxisPreset[] {
  const names = strategy.split('+').map((s) => s.trim()).filter(Boolean);
  if (!names.length) throw new UserError('--strategy is empty');
  const byAxis = new Map<string, Preset>();
  for (const name of names) {
    const p = presetNamed(name);
    const axis = mesh.hasAxis(p.axis) ? p.axis : mesh.axes.length === 1 ? mesh.axes[0]!.name : undefined;
    if (!axis)
      throw new UserError(`strategy ${name} needs a mesh axis named ${p.axis} (the mesh ${mesh} has ${mesh.axisNames().join(', ')})`);
    const prev = byAxis.get(axis);
    if (prev && prev !== p) throw new UserError(`strategies ${prev.name} and ${p.name} both want mesh axis ${axis}`);
    byAxis.set(axis, p);
  }
  for (const a of mesh.axes) {
    if (byAxis.has(a.name)) continue;
    const owner = PRESETS.find((p) => p.axis === a.name);
    if (!owner)
      throw new UserError(
        `mesh axis ${a.name} has no strategy: ${PRESETS.map((p) => `${p.name} uses ${p.axis}`).join(', ')} (name the axis accordingly, or use a spec file)`,
      );
    byAxis.set(a.name, owner);
  }
  return mesh.axes.map((a) => ({ axis: a.name, preset: byAxis.get(a.name)! }));
}
