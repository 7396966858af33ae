/**
 * report.html: one self-contained page (inline CSS, inline SVG, a few lines of inline script for
 * hover and filters; a Content-Security-Policy forbids every network fetch). Sections: the
 * devices table, the op graph (laid out at partition time) beside the collectives and their
 * reasons, the per-device schedule timeline, and the profile when report.json has one.
 * Deterministic: no dates, program order everywhere, fixed number formatting.
 */
import type { BundleReport } from '../report.js';
import type { DeviceSchedule } from '../schedule.js';
import { esc, int, bytes, si } from './format.js';
import { layoutColours, renderGraphSvg, renderLegend } from './graph-svg.js';
import type { LaidOutGraph } from './layout.js';
import { collectiveTable, deviceTable, profileTable } from './tables.js';
import { deviceTimelines, type DurationOf, renderTimelines } from './timeline.js';

export interface ReportHtmlInput {
  /** Model file name. */
  model: string;
  report: BundleReport;
  /** The laid-out op graph (absent: the page says so and shows the tables). */
  graph?: LaidOutGraph;
  /** schedule.json's devices (absent: no timeline). */
  schedules?: readonly DeviceSchedule[];
}

const CSS = `
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px 20px;color:#212529;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:18px 0 6px}
p.sub{margin:0 0 8px;color:#495057}
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #dee2e6;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f1f3f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.num small{color:#868e96;margin-left:6px}tr.unsharded td{color:#495057;background:#f8f9fa}
td.name{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;word-break:break-word}
.row{display:flex;gap:16px;align-items:flex-start}
.graph{flex:1 1 auto;min-width:300px;max-height:82vh;overflow:auto;border:1px solid #dee2e6;border-radius:4px}
.side{flex:0 0 660px;max-height:82vh;overflow:auto}\n#collectives td{font-size:12px}#collectives td:nth-child(2){color:#c2410c;font-weight:600}#collectives{table-layout:fixed;width:100%}#collectives th:nth-child(1){width:21%}#collectives th:nth-child(2){width:11%}#collectives th:nth-child(3){width:6%}#collectives th:nth-child(4){width:13%}#collectives th:nth-child(5){width:15%}#collectives td{overflow-wrap:anywhere}
.legend{list-style:none;padding:0;margin:4px 0 8px}.legend li{margin:2px 0}
.swatch{display:inline-block;width:22px;height:4px;margin:0 6px 3px 4px;vertical-align:middle;border-radius:2px}
.swatch.hex{height:12px;width:16px;background:#ffd8a8;border:2px solid #e8590c;margin-bottom:0}
.note{background:#fff9db;border:1px solid #ffe066;padding:4px 8px;border-radius:4px}
#filter{width:240px}
#graph text{font-size:11px;text-anchor:middle;pointer-events:none}#graph text.l{font-weight:600;font-size:12px}
#graph .node rect,#graph .node polygon{fill:#f8f9fa;stroke:#495057;stroke-width:1}
#graph .node.collective polygon{fill:#ffd8a8;stroke:#e8590c;stroke-width:2}
#graph .node.input rect,#graph .node.output rect{fill:#e7f5ff;stroke:#1c7ed6}
#graph .node.group rect{fill:#f1f3f5;stroke:#343a40}#graph .node.group rect.inner{fill:none;stroke:#adb5bd}
#graph .node.group.folded rect{stroke:#e8590c}
#graph .edge{fill:none;stroke-width:1.6;opacity:.85}#graph .edge.hl{stroke-width:3.5;opacity:1}#graph .edge.hidden{display:none}
#graph .node.hl rect,#graph .node.hl polygon{stroke:#f03e3e;stroke-width:3}#graph .node.dim{opacity:.18}
tr[data-target]{cursor:pointer}tr[data-target]:hover{background:#fff4e6}
figure.timeline{margin:6px 0 10px}figure.timeline figcaption{color:#495057}
.scroll{overflow-x:auto;border:1px solid #dee2e6}
.timeline rect.tk{fill:#4dabf7}.timeline rect.tc{fill:#ff922b}.timeline text.lane{font-size:11px;fill:#495057}
`;

const SCRIPT = `
(function () {
  var all = function (s) { return Array.prototype.slice.call(document.querySelectorAll(s)); };
  var filter = document.getElementById('filter');
  if (filter) filter.addEventListener('input', function () {
    var t = filter.value.trim().toLowerCase();
    all('#graph .node').forEach(function (n) { n.classList.toggle('dim', t !== '' && n.getAttribute('data-search').indexOf(t) < 0); });
  });
  all('[data-layout-toggle]').forEach(function (box) {
    box.addEventListener('change', function () {
      all('#graph .edge.' + box.getAttribute('data-layout-toggle')).forEach(function (e) { e.classList.toggle('hidden', !box.checked); });
    });
  });
  var edgesOf = function (id) { return all('#graph .edge').filter(function (e) { return e.getAttribute('data-from') === id || e.getAttribute('data-to') === id; }); };
  all('#graph .node').forEach(function (n) {
    n.addEventListener('mouseenter', function () { edgesOf(n.id).forEach(function (e) { e.classList.add('hl'); }); });
    n.addEventListener('mouseleave', function () { edgesOf(n.id).forEach(function (e) { e.classList.remove('hl'); }); });
  });
  all('tr[data-target]').forEach(function (row) {
    var n = document.getElementById(row.getAttribute('data-target'));
    if (!n) return;
    row.addEventListener('mouseenter', function () { n.classList.add('hl'); });
    row.addEventListener('mouseleave', function () { n.classList.remove('hl'); });
    row.addEventListener('click', function () { n.scrollIntoView({ block: 'center', inline: 'center' }); });
  });
})();
`;

const CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:";

export function renderReportHtml(input: ReportHtmlInput): string {
  const r = input.report;
  const title = `${input.model} on ${r.mesh} (${r.strategy})`;
  const totalComm = r.devices.reduce((a, d) => a + d.commBytes, 0);
  const parts: string[] = [];
  parts.push(`<h1>${esc(title)}</h1>`);
  parts.push(
    `<p class="sub">${r.devices.length} devices, ${r.collectives.length} collectives, ${int(totalComm)} bytes sent in all (${esc(bytes(totalComm))}). ` +
      `Unsharded estimate: peak ${int(r.unsharded.peakMemoryBytes)} bytes (${esc(bytes(r.unsharded.peakMemoryBytes))}), weights ${int(r.unsharded.paramBytes)} bytes, ${esc(si(r.unsharded.flops))} flops.</p>`,
  );
  parts.push('<h2>Devices</h2>', deviceTable(r));

  parts.push('<h2>Graph</h2>');
  if (input.graph) {
    const g = input.graph;
    const colours = layoutColours(g.view.edges.map((e) => e.layoutClass).concat('R'));
    const counts = `${g.view.opCount} ops (collectives included) drawn as ${g.view.nodes.length} nodes and ${g.view.edges.length} edges; edges are values, coloured by their layout.`;
    parts.push(`<p class="sub">${esc(counts)}</p>`);
    if (g.view.collapsed) parts.push(`<p class="note">${esc(g.view.collapsed)}</p>`);
    parts.push(
      '<div class="row">',
      `<div class="graph">${renderGraphSvg(g, colours)}</div>`,
      `<div class="side"><h3>Layouts</h3>${renderLegend(colours)}<p><label>Filter ops: <input id="filter" type="search" placeholder="name or op type"></label></p>`,
      `<h3>Collectives (${r.collectives.length})</h3>${collectiveTable(r, g.view.collectiveIds)}</div>`,
      '</div>',
    );
  } else {
    parts.push('<p class="note">This report was rendered without the plan\'s graph; the collectives follow.</p>', `<h3>Collectives (${r.collectives.length})</h3>`, collectiveTable(r, {}));
  }

  if (input.schedules?.length) {
    const durations = profileDurations(r);
    const estimated = input.schedules.some((s) => s.steps.some((st) => st.end !== undefined));
    const unit = durations || estimated ? 'ms' : 'step';
    const timelines = deviceTimelines(input.schedules, durations);
    const widths = durations
      ? 'Widths are the profiled times (ms).'
      : estimated
        ? `Widths are the estimated times (ms) on ${r.hardware ? esc(r.hardware.name) : 'the hardware file'} (cost model).`
        : 'No profile or hardware file: every step is one unit wide.';
    parts.push(
      '<h2>Schedule</h2>',
      `<p class="sub">Per device, the compute and communication streams of schedule.json: a step starts when its stream is free and its dependencies are done, so a collective overlaps the kernels that do not wait for it. The critical path (the chain of steps that sets the time) is outlined in red. ${widths}</p>`,
    );
    if (r.pipeline)
      parts.push(
        `<p class="sub">Pipeline over ${esc(r.pipeline.axis)}: ${r.pipeline.stages} stages, ${r.pipeline.microBatches} micro-batches, ${r.pipeline.clocks} clocks (${r.pipeline.schedule}: GPipe; without a backward pass 1F1B is the same). Bubble: ${(100 * r.pipeline.bubble).toFixed(1)}% of a run each stage idles.</p>`,
      );
    parts.push(renderTimelines(timelines, unit));
  }
  if (r.profile) parts.push('<h2>Profile</h2>', profileTable(r.profile));

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>shardc report: ${esc(title)}</title>
<style>${CSS}</style>
</head><body>
${parts.join('\n')}
<script>${SCRIPT}</script>
</body></html>
`;
}

/** Per (device, node) profiled milliseconds, when report.json has profile entries. */
function profileDurations(r: BundleReport): DurationOf | undefined {
  const entries = r.profile?.entries;
  if (!entries?.length) return undefined;
  const by = new Map<string, number>();
  for (const e of entries) by.set(`${e.device}\u0000${e.node}`, (by.get(`${e.device}\u0000${e.node}`) ?? 0) + e.ms);
  return (device, step) => by.get(`${device}\u0000${step.node}`) ?? 0;
}
