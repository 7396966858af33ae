/**
 * Hardware files: a JSON description of the devices a plan runs on and the links between them. It
 * gives the cost model (src/passes/sharding/cost.ts) peak flops and memory bandwidth per device,
 * gives each mesh axis the bandwidth and latency of the link its groups use, and gives
 * `partition` its default per-device memory limit.
 *
 * Schema (every number in SI units: bytes, bytes per second, seconds, flop per second):
 *   {
 *     "name":    "8x H100 SXM5, NVLink 4",          (required) what this is
 *     "source":  "NVIDIA H100 datasheet ...",       (required) where the numbers come from
 *     "devices": 8,                                 (required) how many devices there are
 *     "device": {                                   (required) every device is the same kind
 *       "name": "H100 SXM5 80GB",
 *       "memoryBytes": 85899345920,                 memory per device
 *       "memoryBandwidth": 3.35e12,                 bytes/s between the device and its memory
 *       "peakFlops": { "float32": 6.7e13, "float16": 9.89e14, ... },  dense, per dtype; a dtype
 *                                                   not listed uses "float32"'s (which is required)
 *       "launchLatency": 5e-6                       (optional) seconds one more kernel launch adds
 *                                                   to a run (dispatch overhead)
 *     },
 *     "links": [                                    (required, innermost first) the interconnect:
 *       { "name": "nvlink", "kind": "nvlink", "bandwidth": 4.5e11, "latency": 3e-6, "groupSize": 8 },
 *       { "name": "ib", "kind": "network", "bandwidth": 5e10, "latency": 1e-5 }
 *     ],                                            bandwidth: bytes/s one device sends on the link
 *                                                   (one direction); latency: seconds per message;
 *                                                   groupSize: devices that share this link (an
 *                                                   island of consecutive device ids); the last
 *                                                   link may omit it (it joins every device).
 *     "axes": { "dp": "ib" },                       (optional) a mesh axis name → a link name
 *     "calibrated": {                               (optional) written by `shardc bench --calibrate`:
 *       "target": "wgsl", "adapter": "...",         what was measured, on what,
 *       "notes": ["..."],                           how each figure was obtained (which path),
 *       "samples": { "matmulFlops": [[x, seconds], ...], ... }   the medians the figures were
 *     }                                             fitted to (x: flops, bytes or launches; see
 *                                                   src/hardware/calibrate.ts)
 *   }
 * kind is one of nvlink, pcie, network, host (host-staged copies: WebGPU adapters), shared (logical
 * devices on one adapter). Mapping mesh axes onto links (mapMeshToHardware): devices are numbered
 * row-major, the last mesh axis fastest, so an axis's groups span `stride × size` consecutive
 * devices where stride is the product of the sizes of the axes after it. An axis takes the
 * innermost link whose groupSize holds that span (so `tp` placed last lands inside an NVLink island)
 * unless `axes` names its link. A mesh with more devices than the file describes is refused.
 * `hardwareDocument` / `hardwareJson` give the JSON document of a Hardware back (fixed key order:
 * the same file for the same figures), which `shardc bench --calibrate` writes.
 */
import { readFileSync } from 'node:fs';
import { UserError } from '../ir/errors.js';
import { DeviceMesh, type AxisLink } from '../passes/sharding/mesh.js';

export const LINK_KINDS = ['nvlink', 'pcie', 'network', 'host', 'shared'] as const;
export type LinkKind = (typeof LINK_KINDS)[number];

export interface DeviceSpec {
  name: string;
  memoryBytes: number;
  memoryBandwidth: number;
  /** Peak dense flop/s per dtype name; `float32` is always present. */
  peakFlops: Record<string, number>;
  /** Seconds one more kernel launch adds to a run (per-dispatch overhead), when known. */
  launchLatency?: number;
}

export interface LinkSpec {
  name: string;
  kind: LinkKind;
  bandwidth: number;
  latency: number;
  /** Devices per island that share this link; undefined = every device. */
  groupSize?: number;
}

/** Provenance of a measured hardware file (`shardc bench --calibrate`); no dates, so the file is a function of the measurements. */
export interface Calibration {
  /** The measured target: 'wgsl' (WebGPU) or 'cpu' (the CPU runtime). */
  target: string;
  /** The adapter or processor, in words. */
  adapter: string;
  /** How each figure was obtained, one line each (which path a link figure measured). */
  notes: string[];
  /** Per probe, the [x, median seconds] pairs the figures were fitted to (x: flops, bytes, launches). */
  samples: Record<string, [number, number][]>;
}

export interface Hardware {
  name: string;
  source: string;
  devices: number;
  device: DeviceSpec;
  links: LinkSpec[];
  axes: Record<string, string>;
  calibrated?: Calibration;
  /** The file it was read from (for messages), when read from a file. */
  file?: string;
}

/** Reads and validates a hardware file. */
export function loadHardware(file: string): Hardware {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? 'hardware file not found' : `cannot read the hardware file (${code ?? 'error'})`, { file });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new UserError(`not valid JSON (${(e as Error).message})`, { file });
  }
  return { ...parseHardware(doc, file), file };
}

/** Validates a parsed hardware document; errors name `file` and the field. */
export function parseHardware(doc: unknown, file = '<hardware>'): Hardware {
  const fail = (field: string, why: string): never => {
    throw new UserError(`hardware field ${field}: ${why}`, { file });
  };
  const obj = (v: unknown, field: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(field, 'must be an object');
  const str = (v: unknown, field: string): string => (typeof v === 'string' && v.trim() !== '' ? v : fail(field, 'must be a non-empty string'));
  const pos = (v: unknown, field: string): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fail(field, `must be a positive number, got ${JSON.stringify(v)}`));
  const nonneg = (v: unknown, field: string): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fail(field, `must be a number ≥ 0, got ${JSON.stringify(v)}`));
  const int = (v: unknown, field: string): number => (Number.isInteger(v) && (v as number) >= 1 ? (v as number) : fail(field, `must be an integer ≥ 1, got ${JSON.stringify(v)}`));

  const top = obj(doc, '(top level)');
  const known = new Set(['name', 'source', 'devices', 'device', 'links', 'axes', 'calibrated']);
  for (const k of Object.keys(top).sort()) if (!known.has(k)) fail(k, `unknown field (expected ${[...known].join(', ')})`);
  const name = str(top.name, 'name');
  const source = str(top.source, 'source');
  const devices = int(top.devices, 'devices');
  const d = obj(top.device, 'device');
  const flopsDoc = obj(d.peakFlops, 'device.peakFlops');
  const peakFlops: Record<string, number> = {};
  for (const k of Object.keys(flopsDoc).sort()) peakFlops[k] = pos(flopsDoc[k], `device.peakFlops.${k}`);
  if (peakFlops.float32 === undefined) fail('device.peakFlops.float32', 'is required (the fallback for dtypes not listed)');
  const device: DeviceSpec = {
    name: str(d.name, 'device.name'),
    memoryBytes: pos(d.memoryBytes, 'device.memoryBytes'),
    memoryBandwidth: pos(d.memoryBandwidth, 'device.memoryBandwidth'),
    peakFlops,
  };
  if (d.launchLatency !== undefined) device.launchLatency = nonneg(d.launchLatency, 'device.launchLatency');
  if (!Array.isArray(top.links)) fail('links', 'must be an array (innermost link first)');
  const linksDoc = top.links as unknown[];
  if (linksDoc.length === 0 && devices > 1) fail('links', 'must list at least one link when there is more than one device');
  const links: LinkSpec[] = linksDoc.map((l, i) => {
    const f = `links[${i}]`;
    const o = obj(l, f);
    const kind = str(o.kind, `${f}.kind`);
    if (!(LINK_KINDS as readonly string[]).includes(kind)) fail(`${f}.kind`, `must be one of ${LINK_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
    const link: LinkSpec = { name: str(o.name, `${f}.name`), kind: kind as LinkKind, bandwidth: pos(o.bandwidth, `${f}.bandwidth`), latency: nonneg(o.latency, `${f}.latency`) };
    if (o.groupSize !== undefined) link.groupSize = int(o.groupSize, `${f}.groupSize`);
    else if (i < linksDoc.length - 1) fail(`${f}.groupSize`, 'is required on every link but the last (the outermost link joins every device)');
    return link;
  });
  links.forEach((l, i) => {
    if (links.findIndex((x) => x.name === l.name) !== i) fail(`links[${i}].name`, `${JSON.stringify(l.name)} is given twice`);
    const prev = links[i - 1];
    if (prev && l.groupSize !== undefined && l.groupSize % prev.groupSize! !== 0)
      fail(`links[${i}].groupSize`, `must be a multiple of the previous link's groupSize ${prev.groupSize} (links are nested islands, innermost first)`);
  });
  const axes: Record<string, string> = {};
  if (top.axes !== undefined) {
    const a = obj(top.axes, 'axes');
    for (const k of Object.keys(a).sort()) {
      const link = str(a[k], `axes.${k}`);
      if (!links.some((l) => l.name === link)) fail(`axes.${k}`, `names no link (links: ${links.map((l) => l.name).join(', ')})`);
      axes[k] = link;
    }
  }
  const hw: Hardware = { name, source, devices, device, links, axes };
  if (top.calibrated !== undefined) {
    const c = obj(top.calibrated, 'calibrated');
    const notes = Array.isArray(c.notes) ? c.notes.map((n, i) => str(n, `calibrated.notes[${i}]`)) : fail('calibrated.notes', 'must be an array of strings');
    const samplesDoc = obj(c.samples, 'calibrated.samples');
    const samples: Record<string, [number, number][]> = {};
    for (const k of Object.keys(samplesDoc).sort()) {
      const list = samplesDoc[k];
      if (!Array.isArray(list)) fail(`calibrated.samples.${k}`, 'must be an array of [x, seconds] pairs');
      samples[k] = (list as unknown[]).map((pair, i) => {
        const f = `calibrated.samples.${k}[${i}]`;
        if (!Array.isArray(pair) || pair.length !== 2) fail(f, 'must be an [x, seconds] pair');
        const [x, t] = pair as unknown[];
        return [nonneg(x, `${f}[0]`), nonneg(t, `${f}[1]`)];
      });
    }
    hw.calibrated = { target: str(c.target, 'calibrated.target'), adapter: str(c.adapter, 'calibrated.adapter'), notes, samples };
  }
  return hw;
}

/** The JSON document of `hw` (what parseHardware reads back to the same value), keys in schema order. */
export function hardwareDocument(hw: Hardware): Record<string, unknown> {
  const d = hw.device;
  const device = { name: d.name, memoryBytes: d.memoryBytes, memoryBandwidth: d.memoryBandwidth, peakFlops: d.peakFlops, ...(d.launchLatency !== undefined ? { launchLatency: d.launchLatency } : {}) };
  const links = hw.links.map((l) => ({ name: l.name, kind: l.kind, bandwidth: l.bandwidth, latency: l.latency, ...(l.groupSize !== undefined ? { groupSize: l.groupSize } : {}) }));
  const c = hw.calibrated;
  return {
    name: hw.name,
    source: hw.source,
    devices: hw.devices,
    device,
    links,
    ...(Object.keys(hw.axes).length ? { axes: hw.axes } : {}),
    ...(c ? { calibrated: { target: c.target, adapter: c.adapter, notes: c.notes, samples: Object.fromEntries(Object.keys(c.samples).sort().map((k) => [k, c.samples[k]])) } } : {}),
  };
}

/** The hardware file's text: hardwareDocument, two-space indented, each [x, seconds] sample pair on one line. */
export function hardwareJson(hw: Hardware): string {
  const text = JSON.stringify(hardwareDocument(hw), null, 2);
  // Only what stringify itself broke over lines (a string holds no raw newline).
  return text.replace(/\[\n\s*(-?[\d.e+-]+),\n\s*(-?[\d.e+-]+)\n\s*\]/g, '[$1, $2]') + '\n';
}

/** Peak flop/s of the device for a dtype (float32's where the dtype is not listed). */
export function peakFlops(hw: Hardware, dtype: string | undefined): number {
  return (dtype && hw.device.peakFlops[dtype]) || hw.device.peakFlops.float32!;
}

/** The link each axis of `mesh` uses (see the file comment), by axis name. */
export function axisLinks(mesh: DeviceMesh, hw: Hardware): Map<string, LinkSpec> {
  const where = hw.file ? { file: hw.file } : {};
  if (mesh.deviceCount > hw.devices)
    throw new UserError(`the mesh ${mesh} needs ${mesh.deviceCount} devices but the hardware file describes ${hw.devices}`, where);
  const out = new Map<string, LinkSpec>();
  let stride = 1;
  for (let i = mesh.axes.length - 1; i >= 0; i--) {
    const a = mesh.axes[i]!;
    const span = stride * a.size;
    stride = span;
    const named = hw.axes[a.name];
    const link = named
      ? hw.links.find((l) => l.name === named)!
      : (hw.links.find((l) => l.groupSize === undefined || l.groupSize >= span) ?? hw.links[hw.links.length - 1]);
    if (!link) {
      if (a.size > 1) throw new UserError(`mesh axis ${a.name}=${a.size} has no link to use (the hardware file lists none)`, where);
      continue;
    }
    out.set(a.name, link);
  }
  return out;
}

/** The mesh with every axis's link bandwidth and latency taken from the hardware file. */
export function meshWithHardware(mesh: DeviceMesh, hw: Hardware): DeviceMesh {
  const links = axisLinks(mesh, hw);
  return new DeviceMesh(
    mesh.axes.map((a) => {
      const l = links.get(a.name);
      const link: AxisLink | undefined = l ? { bandwidth: l.bandwidth, latency: l.latency } : undefined;
      return { name: a.name, size: a.size, link: link ?? a.link };
    }),
  );
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** Parses a byte count: `85899345920`, `80GiB`, `80 GB`, `512MiB` (UserError otherwise). */
export function parseBytes(s: string, what = '--memory-limit'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(s);
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new UserError(`${what}: ${JSON.stringify(s)} is not a byte count (e.g. 85899345920, 80GiB, 40GB)`);
  const n = Math.floor(Number(m[1]) * unit);
  if (!(n > 0)) throw new UserError(`${what}: must be more than 0 bytes, got ${JSON.stringify(s)}`);
  return n;
}

/** `80 GiB`-style text for messages (binary units, 2 decimals at most). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (Math.abs(x) >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? x : Number(x.toFixed(2))} ${units[i]}`;
}
