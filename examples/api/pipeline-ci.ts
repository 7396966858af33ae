/**
 * A build step, as CI would run it: `npx tsx examples/api/pipeline-ci.ts [out-dir]`.
 *
 * Partitions examples/gpt-tiny.onnx for two meshes (tp=2 and dp=2,tp=2, megatron), writes one
 * bundle per mesh under out-dir (default: a fresh temporary folder), partitions the first mesh a
 * second time to check the build is reproducible (same manifest SHA-256), and prints one JSON
 * document { bundles: [{ mesh, bundle, manifestSha256, devices, collectives }], reproducible }.
 * Exit codes as the CLI's: 0 done, 1 bad input (one `error:` line), 2 a bug, 3 not reproducible.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError, partitionModel } from '../../src/index.js';

const MODEL = join(process.cwd(), 'examples', 'gpt-tiny.onnx');
const MESHES = ['tp=2', 'dp=2,tp=2'];

function main(): number {
  const out = process.argv[2] ?? mkdtempSync(join(tmpdir(), 'shardc-ci-'));
  const build = (mesh: string, dir: string) =>
    partitionModel(MODEL, { mesh, strategy: 'megatron', target: 'cpu', bindings: { batch: 2, sequence: 8 }, out: dir, force: true, shardcVersion: 'ci' });
  const bundles = MESHES.map((mesh) => ({ mesh, ...build(mesh, join(out, `gpt-tiny.${mesh.replace(/[=,]/g, '-')}`)) }));
  const again = build(MESHES[0]!, join(out, 'rebuild'));
  const reproducible = again.manifestSha256 === bundles[0]!.manifestSha256;
  console.log(JSON.stringify({ bundles, reproducible }, null, 2));
  return reproducible ? 0 : 3;
}

try {
  process.exitCode = main();
} catch (e) {
  console.error(`error: ${(e as Error).message}`);
  process.exitCode = e instanceof UserError ? 1 : 2;
}
