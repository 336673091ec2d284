import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['./protocol/polyfill.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests start real node processes; two cores do not want more than two files at once.
    maxWorkers: 2,
    pool: 'forks'
  }
})
