import { sourceAliases, workspaceProjects } from '@attnkit/vitest-config';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { alias: sourceAliases() },
  test: {
    projects: workspaceProjects(import.meta.dirname),
    // GPU-backend and golden tests compile kernels on first use; give them room on 2 cores.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
