import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Two cores shared by two workers, redis-servers and child processes: give polled conditions time.
    expect: { poll: { timeout: 5000, interval: 20 } },
    // Two cores: integration files start their own redis-server and peers.
    maxWorkers: 2,
  },
});
