/**
 * The tables of report.html: per device (peak memory, activations, weights, flops, bytes sent,
 * collectives; estimated times from a hardware file and profiled kernel/collective times when
 * report.json has them), the unsharded
 * reference, every collective with the reason it exists, and the profile by op type. Each figure
 * cell carries its exact value in `data-value` (what the browser test compares with report.json).
 */
import type { BundleReport, ReportProfile } from '../report.js';
import { bytes, esc, int, ms, si } from './format.js';

const num = (key: string, v: number, human: string): string => `<td class="num" data-key="${key}" data-value="${v}">${int(v)}<small>${esc(human)}</small></td>`;
const msCell = (key: string, v: number): string => `<td class="num" data-key="${key}" data-value="${ms(v)}">${ms(v)}</td>`;

/** Per device: profiled milliseconds in kernels and in collectives (from the profile's entries). */
export function profileByDevice(p: ReportProfile | undefined): Map<number, { kernel: number; collective: number }> | undefined {
  if (!p?.entries?.length) return undefined;
  const out = new Map<number, { kernel: number; collective: number }>();
  for (const e of p.entries) {
    const d = out.get(e.device) ?? { kernel: 0, collective: 0 };
    d[e.kind === 'collective' ? 'collective' : 'kernel'] += e.ms;
    out.set(e.device, d);
  }
  return out;
}

export function deviceTable(r: BundleReport): string {
  const prof = profileByDevice(r.profile);
  const head = ['device', 'coords', 'peak memory (bytes)', 'activation peak (bytes)', 'weights (bytes)', 'flops', 'sent (bytes)', 'collectives'];
  // Estimated times from a hardware file (report.json computeMs/communicationMs/totalMs), when present.
  const est = r.devices.some((d) => d.totalMs !== undefined);
  if (est) head.push('est. compute (ms)', 'est. comm (ms)', 'est. total (ms)');
  if (prof) head.push('profiled kernels (ms)', 'profiled collectives (ms)', 'profiled total (ms)');
  const rows = r.devices.map((d) => {
    const cells = [
      `<td>${d.device}</td>`,
      `<td>${esc(d.coords.join(','))}</td>`,
      num('peakMemoryBytes', d.peakMemoryBytes, bytes(d.peakMemoryBytes)),
      num('activationPeakBytes', d.activationPeakBytes, bytes(d.activationPeakBytes)),
      num('paramBytes', d.paramBytes, bytes(d.paramBytes)),
      num('flops', d.flops, si(d.flops)),
      num('commBytes', d.commBytes, bytes(d.commBytes)),
      `<td class="num" data-key="collectives" data-value="${d.collectives}">${d.collectives}</td>`,
    ];
    if (est) cells.push(msCell('computeMs', d.computeMs ?? 0), msCell('communicationMs', d.communicationMs ?? 0), msCell('totalMs', d.totalMs ?? 0));
    if (prof) {
      const p = prof.get(d.device) ?? { kernel: 0, collective: 0 };
      cells.push(msCell('kernelMs', p.kernel), msCell('collectiveMs', p.collective), msCell('profiledMs', p.kernel + p.collective));
    }
    return `<tr data-device="${d.device}">${cells.join('')}</tr>`;
  });
  const u = r.unsharded;
  const blanks = '<td></td><td></td><td></td>'.repeat((est ? 1 : 0) + (prof ? 1 : 0));
  rows.push(
    `<tr class="unsharded"><td colspan="2">unsharded</td>${num('peakMemoryBytes', u.peakMemoryBytes, bytes(u.peakMemoryBytes))}<td></td>${num('paramBytes', u.paramBytes, bytes(u.paramBytes))}${num('flops', u.flops, si(u.flops))}<td></td><td></td>${blanks}</tr>`,
  );
  return `<table id="devices"><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`;
}

/** Every collective with its reason; a row links to the graph node (`targets`: node label → svg id). */
export function collectiveTable(r: BundleReport, targets: Readonly<Record<string, string>>): string {
  if (!r.collectives.length) return '<p>The plan has no collectives.</p>';
  const rows = r.collectives.map((c, i) => {
    const target = Object.prototype.hasOwnProperty.call(targets, c.node) ? targets[c.node] : undefined;
    return (
      `<tr${target ? ` data-target="${esc(target)}"` : ''}><td class="name">${i + 1}. ${esc(c.node)}</td><td>${esc(c.kind)}</td><td>${esc(c.meshAxes.join(','))}</td>` +
      `<td class="name">${esc(c.tensor)}<br><span class="num" data-value="${c.bytes}">${int(c.bytes)} B</span></td><td class="layouts">${esc(c.from)} → ${esc(c.to)}</td><td class="reason">${esc(c.reason)}</td></tr>`
    );
  });
  return (
    '<table id="collectives"><thead><tr><th>collective</th><th>kind</th><th>axes</th><th>tensor, bytes / device</th><th>layouts</th><th>why</th></tr></thead><tbody>\n' +
    rows.join('\n') +
    '\n</tbody></table>'
  );
}

export function profileTable(p: ReportProfile): string {
  const rows = (p.byOp ?? []).map(
    (o) => `<tr><td>${esc(o.op)}</td><td>${esc(o.kind)}</td><td class="num">${o.count}</td><td class="num">${ms(o.totalMs)}</td><td class="num">${(o.share * 100).toFixed(1)}%</td></tr>`,
  );
  return (
    `<p>${esc(p.timing)} timing, ${ms(p.totalMs)} ms in kernels and collectives.</p>` +
    (rows.length ? `<table id="profile"><thead><tr><th>op</th><th>kind</th><th>count</th><th>total (ms)</th><th>share</th></tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>` : '')
  );
}
