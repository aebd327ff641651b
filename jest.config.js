/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  moduleNameMapper: {
    '^@botshard/runtime$': '<rootDir>/runtime/src',
    '^@botshard/runtime/(.*)$': '<rootDir>/runtime/src/$1',
  },
  testTimeout: 60000,
};
