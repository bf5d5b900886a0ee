import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests ptrace real processes and restore them with their original PIDs: keep files sequential
    // so two tests never fight over the same PID or trace the same process.
    fileParallelism: false,
  },
});
