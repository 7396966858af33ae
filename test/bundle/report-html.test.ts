/**
 * report.html in headless Debian Chromium (playwright-core, /usr/bin/chromium, opened from
 * file://): the gpt-tiny tp=2 megatron bundle's page has the op graph as SVG (every op and every
 * collective drawn), the all-reduces with the plan's reasons in their hover text and in the side
 * table, per-device tables with the figures of report.json, one timeline per device with one bar
 * per schedule step; it makes no network request and logs no console error. A plan with hostile
 * names renders them as text (no injected element or script). Without Chromium the browser tests
 * fail naming the install command. The 12-layer case (collapsed by layer) and determinism are
 * checked on the HTML text.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { GPT_TINY as GPT_TINY_CONFIG, gptModel } from '../../examples/models/transformers.js';
import { partitionModel } from '../../src/bundle/partition.js';
import { buildReport, reportHtml, type BundleReport } from '../../src/bundle/report.js';
import type { Schedule } from '../../src/bundle/schedule.js';
import { COLLECTIVE_DOMAIN } from '../../src/ir/graph.js';
import { createCoreRegistry } from '../../src/ir/ops/index.js';
import { lowerPlan } from '../../src/passes/sharding/lower.js';
import { createCoreShardingRules } from '../../src/passes/sharding/rules/index.js';
import { deviceTimeline } from '../../src/bundle/report-html/index.js';
import type { ScheduleStep } from '../../src/bundle/schedule.js';
import { GPT_TINY } from './cli-helper.js';
import { mlpPlan } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';

interface PlanJson {
  nodes: { node: string }[];
  collectives: { node: string; kind: string; reason: string; tensor: string }[];
}

let tmp = '';
let bundle = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'shardc-report-html-'));
  bundle = join(tmp, 'gpt-tp2');
  partitionModel(GPT_TINY, { mesh: 'tp=2', strategy: 'megatron', target: 'cpu', bindings: { batch: 1, sequence: 8 }, out: bundle, shardcVersion: '0.0.0' });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const readJson = <T>(file: string): T => JSON.parse(readFileSync(join(bundle, file), 'utf8')) as T;

describe('report.html text', () => {
  it('is byte-identical for the same model and options', () => {
    const again = join(tmp, 'gpt-tp2-again');
    partitionModel(GPT_TINY, { mesh: 'tp=2', strategy: 'megatron', target: 'cpu', bindings: { batch: 1, sequence: 8 }, out: again, shardcVersion: '0.0.0' });
    const a = readFileSync(join(bundle, 'report.html'), 'utf8');
    expect(readFileSync(join(again, 'report.html'), 'utf8')).toBe(a);
    // Self-contained: nothing refers to another resource.
    expect(a).not.toMatch(/\b(?:src|href)="(?!data:)/);
    expect(a).not.toMatch(/@import|url\((?!#)/);
  });

  it('collapses a 12-layer GPT (above 400 nodes) by layer and keeps every collective drawn', () => {
    const model = join(tmp, 'gpt-12.onnx');
    writeFileSync(model, gptModel({ ...GPT_TINY_CONFIG, layers: 12 }).encode());
    const out = join(tmp, 'gpt12-tp2');
    partitionModel(model, { mesh: 'tp=2', strategy: 'megatron', target: 'cpu', bindings: { batch: 1, sequence: 8 }, out, shardcVersion: '0.0.0' });
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    const plan = JSON.parse(readFileSync(join(out, 'plan.json'), 'utf8')) as PlanJson;
    expect(plan.nodes.length + plan.collectives.length).toBeGreaterThan(400);
    expect(html).toContain('grouped by layer');
    const groups = [...html.matchAll(/<g class="node group[^"]*" id="g\d+" data-search="([^"]*)"/g)].map((m) => m[1]!.split(' ')[0]!);
    // Layer groups h0..h11 (each split into parts at its all-reduces).
    for (let l = 0; l < 12; l++) expect(groups).toContain(`h${l}`);
    expect(groups.length).toBeLessThan(100);
    expect(html.match(/<g class="node collective"/g)).toHaveLength(plan.collectives.length);
    for (const c of plan.collectives) expect(html).toContain(`<title>${c.node} (`);
  });
});

describe('schedule timeline', () => {
  const step = (id: number, kind: ScheduleStep['kind'], dependencies: number[]): ScheduleStep => ({ id, kind, node: `s${id}`, op: kind === 'kernel' ? 'MatMul' : 'AllReduce', domain: '', inputs: [], outputs: [], dependencies });
  const sched = (steps: ScheduleStep[]) => ({ device: 0, coords: [0], program: 'p', inputs: [], outputs: [], steps });

  it('overlaps a collective with the kernels that do not need its result', () => {
    // 0: kernel; 1: all-reduce of 0's output; 2: kernel independent of 1; 3: kernel that needs 1 and 2.
    const t = deviceTimeline(sched([step(0, 'kernel', []), step(1, 'collective', [0]), step(2, 'kernel', [0]), step(3, 'kernel', [1, 2])]), (_d, s) => (s.id === 1 ? 3 : 1));
    expect(t.steps.map((s) => [s.start, s.end])).toEqual([[0, 1], [1, 4], [1, 2], [4, 5]]);
    expect({ span: t.span, serial: t.serial, overlapped: t.overlapped, collectiveTime: t.collectiveTime }).toEqual({ span: 5, serial: 6, overlapped: 1, collectiveTime: 3 });
  });

  it('shows no overlap when the next kernel waits for the collective', () => {
    const t = deviceTimeline(sched([step(0, 'kernel', []), step(1, 'collective', [0]), step(2, 'kernel', [1])]));
    expect({ span: t.span, overlapped: t.overlapped }).toEqual({ span: 3, overlapped: 0 });
  });
});

describe('report.html in headless Chromium', () => {
  it('has Debian chromium to drive', () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (as root)`);
  });

  let browser: Browser | undefined;
  // The launch is kept so afterAll closes a browser that came up after the hook timed out (on a
  // loaded machine): a stray Chromium would keep jest from exiting.
  let launching: Promise<Browser> | undefined;
  beforeAll(async () => {
    launching = chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--disable-gpu'] });
    browser = await launching;
  }, 120_000);
  afterAll(async () => {
    await (await launching?.catch(() => undefined))?.close();
  });

  /** Opens a file and records every request and every console error or page error. */
  async function open(file: string): Promise<{ page: Page; requests: string[]; errors: string[] }> {
    const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
    const requests: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(file).href);
    return { page, requests, errors };
  }

  it('gpt-tiny tp=2: the SVG graph, the all-reduces with their reasons, the device tables and timelines; no network, no errors', async () => {
    const plan = readJson<PlanJson>('plan.json');
    const report = readJson<BundleReport>('report.json');
    const schedule = readJson<Schedule>('schedule.json');
    const { page, requests, errors } = await open(join(bundle, 'report.html'));

    // Every op and every collective is a node of the SVG; graph inputs and outputs besides.
    const counts = (await page.evaluate(`({
      op: document.querySelectorAll('svg#graph g.node.op').length,
      collective: document.querySelectorAll('svg#graph g.node.collective').length,
      edges: document.querySelectorAll('svg#graph path.edge').length,
      input: document.querySelectorAll('svg#graph g.node.input').length,
      output: document.querySelectorAll('svg#graph g.node.output').length,
      width: document.querySelector('svg#graph').getBoundingClientRect().width,
    })`)) as Record<string, number>;
    expect(plan.nodes.length).toBeGreaterThan(50);
    expect(counts).toMatchObject({ op: plan.nodes.length, collective: plan.collectives.length, input: 1, output: 1 });
    expect(counts.edges).toBeGreaterThanOrEqual(plan.nodes.length);
    expect(counts.width).toBeGreaterThan(100);

    // The all-reduces: each collective node's hover text and its table row give the plan's reason.
    expect(plan.collectives.length).toBeGreaterThan(0);
    // megatron at tp=2: an all-reduce after each row-parallel matmul (and the embedding), an all-gather of the logits.
    expect(plan.collectives.filter((c) => c.kind === 'AllReduce').length).toBeGreaterThanOrEqual(4);
    const drawn = (await page.evaluate(`Array.from(document.querySelectorAll('svg#graph g.node.collective')).map((g) => ({ id: g.id, title: g.querySelector('title').textContent }))`)) as {
      id: string;
      title: string;
    }[];
    const rows = (await page.evaluate(`Array.from(document.querySelectorAll('#collectives tbody tr')).map((r) => ({ target: r.getAttribute('data-target'), text: r.textContent }))`)) as {
      target: string;
      text: string;
    }[];
    expect(rows).toHaveLength(plan.collectives.length);
    plan.collectives.forEach((c, i) => {
      const node = drawn.find((d) => d.title.startsWith(`${c.node} (`));
      expect(node?.title).toContain(`why: ${c.reason}`);
      expect(node?.title).toContain(`${c.kind} over tp of ${c.tensor}`);
      expect(rows[i]!.text).toContain(c.node);
      expect(rows[i]!.text).toContain(c.reason);
      expect(rows[i]!.target).toBe(node!.id);
    });

    // Per-device tables: the same figures as report.json.
    const cells = (await page.evaluate(
      `Array.from(document.querySelectorAll('#devices tr[data-device]')).map((r) => ({ device: Number(r.getAttribute('data-device')), values: Object.fromEntries(Array.from(r.querySelectorAll('td[data-key]')).map((td) => [td.getAttribute('data-key'), Number(td.getAttribute('data-value'))])) }))`,
    )) as { device: number; values: Record<string, number> }[];
    expect(cells).toEqual(
      report.devices.map((d) => ({
        device: d.device,
        values: { peakMemoryBytes: d.peakMemoryBytes, activationPeakBytes: d.activationPeakBytes, paramBytes: d.paramBytes, flops: d.flops, commBytes: d.commBytes, collectives: d.collectives },
      })),
    );

    // One timeline per device, one bar per schedule step; collectives on their own lane.
    const bars = (await page.evaluate(`Array.from(document.querySelectorAll('figure.timeline')).map((f) => ({ device: Number(f.getAttribute('data-device')), kernels: f.querySelectorAll('rect.tk').length, collectives: f.querySelectorAll('rect.tc').length }))`)) as {
      device: number;
      kernels: number;
      collectives: number;
    }[];
    expect(bars).toEqual(
      schedule.devices.map((d) => ({ device: d.device, kernels: d.steps.filter((s) => s.kind === 'kernel').length, collectives: d.steps.filter((s) => s.kind === 'collective').length })),
    );

    // The inline script works: hovering a collective's row highlights its node; the filter dims the others.
    await page.hover('#collectives tbody tr:first-child');
    expect(await page.evaluate(`document.getElementById(${JSON.stringify(rows[0]!.target)}).classList.contains('hl')`)).toBe(true);
    await page.fill('#filter', 'softmax');
    const dimmed = (await page.evaluate(`({ dim: document.querySelectorAll('svg#graph g.node.dim').length, all: document.querySelectorAll('svg#graph g.node').length })`)) as { dim: number; all: number };
    expect(dimmed.dim).toBeGreaterThan(0);
    expect(dimmed.dim).toBeLessThan(dimmed.all);

    await page.close();
    expect(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
    expect(errors).toEqual([]);
  }, 60000);

  it('renders hostile node and value names as text: no injected element, script or request', async () => {
    const plan = mlpPlan(2);
    const hostile = {
      mm1: '<img src=x onerror="window.__pwned=1">',
      relu: '</script><script>window.__pwned=2</script>',
      mm2: '"><svg onload="window.__pwned=3"><title>',
      allreduce_y: `' onmouseover='window.__pwned=4' x='`,
    } as Record<string, string>;
    for (const n of plan.graph.nodes) n.name = hostile[n.name] ?? n.name;
    const values = plan.graph.valuesByName();
    values.get('x')!.name = '<iframe src="https://example.com/"></iframe>';
    values.get('y_partial')!.name = '<b>&amp;</b>';
    const ar = plan.graph.nodes.find((n) => n.domain === COLLECTIVE_DOMAIN)!;
    plan.collectives[0] = { ...plan.collectives[0]!, node: ar.name, tensor: '<b>&amp;</b>', reason: `${plan.collectives[0]!.reason} <script>window.__pwned=5</script>` };
    const registry = createCoreRegistry();
    const programs = lowerPlan(plan, { registry, rules: createCoreShardingRules() });
    const report = buildReport(plan, programs, registry, 'megatron');
    const file = join(tmp, 'hostile.html');
    writeFileSync(file, reportHtml(report, '<marquee>model.onnx</marquee>'));

    const { page, requests, errors } = await open(file);
    const found = (await page.evaluate(`({
      pwned: window.__pwned ?? null,
      injected: document.querySelectorAll('img, iframe, marquee, b, svg svg').length,
      scripts: document.querySelectorAll('script').length,
      h1: document.querySelector('h1').textContent,
      titles: Array.from(document.querySelectorAll('svg#graph g.node > title')).map((t) => t.textContent),
      collectiveRow: document.querySelector('#collectives tbody tr').textContent,
      nodes: document.querySelectorAll('svg#graph g.node').length,
    })`)) as { pwned: number | null; injected: number; scripts: number; h1: string; titles: string[]; collectiveRow: string; nodes: number };
    await page.hover('svg#graph g.node.collective');
    const pwnedAfterHover = await page.evaluate('window.__pwned ?? null');
    await page.close();

    expect(found).toMatchObject({ pwned: null, injected: 0, scripts: 1, h1: '<marquee>model.onnx</marquee> on tp=2 (megatron)' });
    expect(pwnedAfterHover).toBeNull();
    // The names survive as text: 3 ops + 1 collective + 1 input + 1 output.
    expect(found.nodes).toBe(6);
    for (const name of Object.values(hostile)) expect(found.titles.some((t) => t.startsWith(`${name} (`))).toBe(true);
    expect(found.titles.join('\n')).toContain('<iframe src="https://example.com/"></iframe>');
    expect(found.collectiveRow).toContain('<script>window.__pwned=5</script>');
    expect(requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
    expect(errors).toEqual([]);
  }, 60000);
});
