/** report.html: the op graph laid out with dagre, per-device tables, the schedule timeline (see page.ts). */
export { opGraphView, layoutClass, layerKey, DEFAULT_MAX_NODES, type OpGraphView, type ViewNode, type ViewEdge } from './graph-model.js';
export { layoutOpGraph, type LaidOutGraph } from './layout.js';
export { renderReportHtml, type ReportHtmlInput } from './page.js';
export { deviceTimeline, type DeviceTimeline } from './timeline.js';
export { esc } from './format.js';
