/**
 * Jest runs the TypeScript sources directly through Sucrase (a fast pure-JS transform: no type
 * check — `npm run typecheck` does that — and no native binaries, so `npm ci` works from the lock
 * file on every platform and registry mirror).
 */
module.exports = {
  testEnvironment: '<rootDir>/test/jest-environment.cjs',
  roots: ['<rootDir>/test', '<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  transform: { '\\.ts$': '@sucrase/jest-plugin' },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 120000,
};
