import { UserError } from '../../src/ir/errors.js';
import { parseDims, parseNonNegative, requireCpuTarget } from '../../src/cli/context.js';
import { reportError } from '../../src/cli/main.js';
import type { CliContext } from '../../src/cli/context.js';

function captureCtx(): { ctx: CliContext; err: () => string } {
  let err = '';
  return {
    ctx: { packageRoot: '.', stdout: { write: () => undefined }, stderr: { write: (s) => void (err += s) } },
    err: () => err,
  };
}

describe('option parsing', () => {
  it('parses --dim bindings and accumulates repeated flags', () => {
    expect(parseDims('batch=1,sequence=128')).toEqual({ batch: 1, sequence: 128 });
    expect(parseDims('sequence=4', { batch: 2, sequence: 1 })).toEqual({ batch: 2, sequence: 4 });
    expect(() => parseDims('batch=0')).toThrow(UserError);
    expect(() => parseDims('batch=x')).toThrow(/name=value/);
    expect(() => parseDims('1x=3')).toThrow(/name=value/);
  });

  it('parses tolerances and targets', () => {
    expect(parseNonNegative('--atol')('1e-4')).toBe(1e-4);
    expect(() => parseNonNegative('--atol')('-1')).toThrow(/--atol expects/);
    expect(requireCpuTarget(undefined)).toBe('cpu');
    expect(() => requireCpuTarget('cuda')).toThrow(/not implemented yet/);
  });
});

describe('reportError', () => {
  it('maps errors to exit codes: user 1, verification 3, bug 2 (stack only with --debug)', () => {
    const a = captureCtx();
    expect(reportError(new UserError('bad shape', { file: 'm.onnx', node: 'n1' }), a.ctx, false)).toBe(1);
    expect(a.err()).toBe('shardc: m.onnx: node "n1": bad shape\n');

    const b = captureCtx();
    const bug = new TypeError('x is undefined');
    expect(reportError(bug, b.ctx, false)).toBe(2);
    expect(b.err().trimEnd().split('\n')).toHaveLength(1);
    expect(b.err()).toMatch(/^shardc: internal error: TypeError: x is undefined .*--debug/);

    const c = captureCtx();
    expect(reportError(bug, c.ctx, true)).toBe(2);
    expect(c.err()).toContain(bug.stack!.split('\n')[1]!);
  });
});
