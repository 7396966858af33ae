/**
 * A hardware file: `npx tsx examples/api/hardware.ts [hardware.json] [out-dir]`.
 *
 * Partitions examples/gpt-tiny.onnx over all the devices of a hardware description (default
 * examples/hardware/h100-8x-nvlink.json: tp=8, megatron) with `hardware` set, so the mesh axis gets
 * the file's link bandwidth and latency, the memory limit is the device memory, and report.json
 * holds per-device time estimates. Prints, per device, the estimated compute / communication / total
 * milliseconds and the peak memory against the device's memory. Public API only.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, loadHardware, partitionModel } from '../../src/index.js';

const MODEL = join(process.cwd(), 'examples', 'gpt-tiny.onnx');
const hardwareFile = process.argv[2] ?? join(process.cwd(), 'examples', 'hardware', 'h100-8x-nvlink.json');
const out = process.argv[3] ?? join(mkdtempSync(join(tmpdir(), 'shardc-hw-')), 'gpt-tiny.hw');

/** The fields of report.json read here (the format: docs/bundle-format.md). */
interface ReportJson {
  mesh: string;
  devices: { device: number; peakMemoryBytes: number; computeMs?: number; communicationMs?: number; totalMs?: number; commBytes: number }[];
  hardware?: { name: string; device: string; memoryBytes: number; planMs: number };
}

const mib = (b: number): string => `${(b / 2 ** 20).toFixed(2)} MiB`;

try {
  const hw = loadHardware(hardwareFile);
  const r = partitionModel(MODEL, {
    mesh: `tp=${hw.devices}`,
    strategy: 'megatron',
    target: 'cpu',
    bindings: { batch: 4, sequence: 32 },
    out,
    force: true,
    hardware: hardwareFile,
    shardcVersion: 'example',
  });
  const report = JSON.parse(readFileSync(join(r.bundle, 'report.json'), 'utf8')) as ReportJson;
  if (!report.hardware) throw new Error('report.json has no hardware section');
  console.log(`${hw.name}`);
  console.log(`gpt-tiny on ${report.mesh} (${r.collectives} collectives); estimates per run on ${report.hardware.device}:`);
  console.log('device  compute ms  comm ms   total ms  peak memory (of device memory)');
  for (const d of report.devices) {
    if (d.totalMs === undefined || d.computeMs === undefined || d.communicationMs === undefined) throw new Error(`device ${d.device} has no time estimate`);
    const share = ((100 * d.peakMemoryBytes) / report.hardware.memoryBytes).toPrecision(2);
    console.log(
      `${String(d.device).padStart(6)}  ${d.computeMs.toFixed(4).padStart(10)}  ${d.communicationMs.toFixed(4).padStart(7)}  ${d.totalMs.toFixed(4).padStart(9)}  ${mib(d.peakMemoryBytes)} (${share}%)`,
    );
  }
  console.log(`plan: ${report.hardware.planMs.toFixed(4)} ms per run (the slowest device); bundle ${r.bundle}`);
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  process.exitCode = e instanceof UserError ? 1 : 2;
}
