/** Jest runs the TypeScript sources directly through SWC (fast, no type check: `npm run typecheck` does that). */
module.exports = {
  testEnvironment: '<rootDir>/test/jest-environment.cjs',
  roots: ['<rootDir>/test', '<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 120000,
};
