// Demo: fetch examples/gpt-tiny.onnx, run it on navigator.gpu with shardc, print the logits.
import { BrowserSession, fetchModel } from '/shardc.js';

const log = document.getElementById('log');
// `?manual`: load nothing (a test drives the bundle itself).
if (new URLSearchParams(location.search).has('manual')) log.textContent = 'manual';
else try {
  const model = await fetchModel('/gpt-tiny.onnx');
  const session = await BrowserSession.create(model);
  const [batch, sequence] = [1, 8];
  const ids = Array.from({ length: batch * sequence }, (_, i) => (i * 7 + 3) % 96);
  const t0 = performance.now();
  const out = await session.run({ input_ids: { dtype: 'int64', shape: [batch, sequence], data: ids } });
  const ms = performance.now() - t0;
  const logits = out.logits;
  const first = Array.from(logits.data.slice(0, 5), (v) => v.toFixed(5));
  log.textContent = `adapter: ${session.gpu.description}\nlogits: ${logits.dtype} [${logits.shape.join(', ')}]\nfirst values: ${first.join(' ')}\ntime: ${ms.toFixed(1)} ms`;
  session.destroy();
  document.body.dataset.done = 'ok';
} catch (e) {
  log.textContent = `error: ${e && e.message ? e.message : e}`;
  document.body.dataset.done = 'error';
}
