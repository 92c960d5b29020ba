// The gpu.js backend family. Filled in by the gpu.js backend work (issue 3).
import type { Backend } from '../backend.js';
import type { BackendName } from '../create-backend.js';
import { BackendError } from '../errors.js';

export function createGpujsBackend(name: Exclude<BackendName, 'cpu'>): Promise<Backend> {
  return Promise.reject(new BackendError({ fn: 'createGpujsBackend', expected: `the ${name} backend`, got: 'a build without gpu.js backends yet' }));
}
