// Demo: fetch examples/gpt-tiny.onnx, run it on navigator.gpu with shardc, print the logits.
// `?bundle=/bundle/`: run a wgsl bundle instead (serve.ts's second argument, any mesh: every
// logical device on this page's one GPU), fed batch × sequence ids of the bundle's --dim values.
import { BrowserSession, fetchBundle, fetchModel } from '/shardc.js';

const log = document.getElementById('log');
const params = new URLSearchParams(location.search);
const idsOf = (n) => Array.from({ length: n }, (_, i) => (i * 7 + 3) % 96);
const first = (t) => Array.from(t.data.slice(0, 5), (v) => v.toFixed(5)).join(' ');
// `?manual`: load nothing (a test drives the bundle itself).
if (params.has('manual')) log.textContent = 'manual';
else try {
  if (params.has('bundle')) {
    const bundle = await fetchBundle(params.get('bundle'));
    const [input] = bundle.inputs;
    const t0 = performance.now();
    const out = await bundle.run({ [input.name]: { dtype: input.dtype, shape: input.shape, data: idsOf(input.shape.reduce((a, b) => a * b, 1)) } });
    const ms = performance.now() - t0;
    const [name] = bundle.outputs;
    const t = out[name];
    log.textContent = `bundle: mesh ${bundle.mesh} on ${bundle.adapter}\n${name}: ${t.dtype} [${t.shape.join(', ')}]\nfirst values: ${first(t)}\ntime: ${ms.toFixed(1)} ms`;
    bundle.dispose();
  } else {
    const model = await fetchModel('/gpt-tiny.onnx');
    const session = await BrowserSession.create(model);
    const [batch, sequence] = [1, 8];
    const t0 = performance.now();
    const out = await session.run({ input_ids: { dtype: 'int64', shape: [batch, sequence], data: idsOf(batch * sequence) } });
    const ms = performance.now() - t0;
    const logits = out.logits;
    log.textContent = `adapter: ${session.gpu.description}\nlogits: ${logits.dtype} [${logits.shape.join(', ')}]\nfirst values: ${first(logits)}\ntime: ${ms.toFixed(1)} ms`;
    session.destroy();
  }
  document.body.dataset.done = 'ok';
} catch (e) {
  log.textContent = `error: ${e && e.message ? e.message : e}`;
  document.body.dataset.done = 'error';
}
