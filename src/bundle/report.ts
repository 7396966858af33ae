/**
 * report.json (and a small self-contained report.html): per device the estimated peak memory,
 * flops, parameter bytes and bytes communicated; every collective with its kind, mesh axes, bytes,
 * tensor and the reason it exists; the same estimates for the unsharded program for comparison.
 */
import { COLLECTIVE_DOMAIN } from '../ir/graph.js';
import type { OpRegistry } from '../ir/registry.js';
import type { DeviceProgram } from '../passes/sharding/lower.js';
import type { CollectiveRecord, ShardPlan } from '../passes/sharding/plan.js';
import { estimateGraph } from './estimate.js';

export interface DeviceReport {
  device: number;
  coords: number[];
  peakMemoryBytes: number;
  activationPeakBytes: number;
  paramBytes: number;
  flops: number;
  /** Sum of the bytes this device sends for its collectives. */
  commBytes: number;
  collectives: number;
}

export interface BundleReport {
  mesh: string;
  strategy: string;
  devices: DeviceReport[];
  collectives: CollectiveRecord[];
  unsharded: { peakMemoryBytes: number; paramBytes: number; flops: number };
}

export function buildReport(plan: ShardPlan, programs: readonly DeviceProgram[], registry: OpRegistry, strategy: string): BundleReport {
  for (const c of plan.collectives)
    if (!c.reason || c.reason.trim() === '') throw new Error(`collective ${c.node} (${c.kind} of ${c.tensor}) has no reason: a bug in the sharding pass`);
  const byNode = new Map(plan.collectives.map((c) => [c.node, c]));
  const devices = programs.map((p): DeviceReport => {
    const e = estimateGraph(p.graph, registry);
    let commBytes = 0;
    let collectives = 0;
    for (const n of p.graph.nodes) {
      if (n.domain !== COLLECTIVE_DOMAIN) continue;
      collectives++;
      commBytes += byNode.get(n.name)?.bytes ?? 0;
    }
    return { device: p.device, coords: p.coords.slice(), ...e, commBytes, collectives };
  });
  const u = estimateGraph(plan.graph, registry, { skipCollectives: true });
  return {
    mesh: plan.mesh.toString(),
    strategy,
    devices,
    collectives: plan.collectives.map((c) => ({ ...c, meshAxes: c.meshAxes.slice() })),
    unsharded: { peakMemoryBytes: u.peakMemoryBytes, paramBytes: u.paramBytes, flops: u.flops },
  };
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A minimal self-contained HTML page (no scripts, no external resources) of the report. */
export function reportHtml(r: BundleReport, model: string): string {
  const rows = r.devices
    .map((d) => `<tr><td>${d.device}</td><td>${esc(d.coords.join(','))}</td><td>${d.peakMemoryBytes}</td><td>${d.paramBytes}</td><td>${d.flops}</td><td>${d.commBytes}</td></tr>`)
    .join('\n');
  const coll = r.collectives
    .map((c) => `<tr><td>${esc(c.node)}</td><td>${esc(c.kind)}</td><td>${esc(c.meshAxes.join(','))}</td><td>${esc(c.tensor)}</td><td>${c.bytes}</td><td>${esc(c.from)} → ${esc(c.to)}</td><td>${esc(c.reason)}</td></tr>`)
    .join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>shardc report: ${esc(model)}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}</style>
</head><body>
<h1>${esc(model)} on ${esc(r.mesh)} (${esc(r.strategy)})</h1>
<p>Unsharded estimate: peak ${r.unsharded.peakMemoryBytes} bytes, parameters ${r.unsharded.paramBytes} bytes, ${r.unsharded.flops} flops.</p>
<h2>Devices</h2>
<table><tr><th>device</th><th>coords</th><th>peak memory (bytes)</th><th>parameters (bytes)</th><th>flops</th><th>sent (bytes)</th></tr>
${rows}
</table>
<h2>Collectives (${r.collectives.length})</h2>
<table><tr><th>node</th><th>kind</th><th>mesh axes</th><th>tensor</th><th>bytes</th><th>layouts</th><th>reason</th></tr>
${coll}
</table>
</body></html>
`;
}
