/**
 * Configurations of the models the WebGPU benches build (bench/webgpu-vs-ort-web.ts,
 * bench/webgpu-tp.ts) with examples/models/transformers.ts gptModel: a GPT-like decoder larger
 * than gpt-tiny, still quick on SwiftShader.
 */
export const GPT_BENCH = { vocab: 512, hidden: 256, heads: 4, layers: 4, ffn: 1024, maxSeq: 128, opset: 17, seed: 7 } as const;

/** Its label in bench output. */
export const GPT_BENCH_LABEL = 'gpt (4 layers, hidden 256, 4 heads, FFN 1024, vocab 512)';
