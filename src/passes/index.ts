/** The pass infrastructure and the graph-level passes. */
export * from './manager.js';
export * from './rewrite.js';
export * from './canonicalize.js';
export * from './shape-inference.js';
export * from './constant-folding.js';
export * from './dead-code.js';
export * from './patterns.js';
export * from './util.js';
