import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT_TINY, cli, expectUserError } from '../bundle/cli-helper.js';

let tmp: string;
let bundle: string;
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-explain-'));
  bundle = join(tmp, 'gpt');
  const r = await cli('partition', GPT_TINY, '--mesh', 'tp=2', '--strategy', 'megatron', '--dim', 'batch=1,sequence=8', '--out', bundle);
  if (r.code !== 0) throw new Error(r.stderr);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('shardc explain', () => {
  it('prints every collective with kind, axis, tensor, bytes and its reason, and every value with its layout and why', async () => {
    const r = await cli('explain', bundle);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('gpt-tiny.onnx on tp=2, strategy megatron');
    const n = Number(/^collectives \((\d+)\):$/.exec(lines[1]!)![1]);
    expect(n).toBeGreaterThan(0);
    const collectiveLines = lines.slice(2, 2 + 2 * n);
    for (let i = 0; i < n; i++) {
      expect(collectiveLines[2 * i]).toMatch(/^ {2}\S+: (AllReduce|AllGather|ReduceScatter|AllToAll|LocalShard|LocalPartial|Broadcast|Send|Recv) over tp of "[^"]+", \d+ bytes per device, \{.*\} -> \{.*\}$/);
      expect(collectiveLines[2 * i + 1]).toMatch(/^ {4}why: \S/);
    }
    expect(r.stdout).toMatch(/AllReduce/);
    expect(lines[2 + 2 * n]).toMatch(/^values \(\d+\):$/);
    expect(r.stdout).toMatch(/\n {2}input_ids \{tp: R\}: /);
  });

  it('--json and --tensor: one value and the collectives that move it', async () => {
    const all = JSON.parse((await cli('explain', bundle, '--json')).stdout);
    expect(Object.keys(all).sort()).toEqual(['collectives', 'mesh', 'model', 'strategy', 'values']);
    const c = all.collectives[0];
    expect(Object.keys(c).sort()).toEqual(['bytes', 'from', 'kind', 'meshAxes', 'node', 'reason', 'tensor', 'to']);
    const r = await cli('explain', bundle, '--tensor', c.tensor, '--json');
    expect(r.code).toBe(0);
    const one = JSON.parse(r.stdout);
    expect(one.values.map((v: { name: string }) => v.name)).toEqual([c.tensor]);
    expect(one.collectives.map((x: { node: string }) => x.node)).toContain(c.node);
    expect(one.values[0].why).not.toBe('');
    const byNode = JSON.parse((await cli('explain', bundle, '--collective', c.node, '--json')).stdout);
    expect(byNode.collectives).toEqual([c]);
  });

  it('unknown names and non-bundles are user errors', async () => {
    expectUserError(await cli('explain', bundle, '--tensor', 'no_such_value'), /no value named "no_such_value"/);
    expectUserError(await cli('explain', bundle, '--collective', 'nope'), /no collective named "nope"/);
    expectUserError(await cli('explain', tmp), /not a shardc bundle/);
    expectUserError(await cli('explain', join(tmp, 'missing')), /bundle directory does not exist/);
  });
});
