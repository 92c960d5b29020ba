// The reference model's section of the bad-input catalogue (the safetensors reader), and the docs page.
import { CpuBackend } from '@attnkit/tensor-core';
import { runCatalogue } from '@attnkit/testkit';
import { REFERENCE_MODEL_CATALOGUE } from './errors.catalogue.js';

// Files are parsed on the host: one backend is enough to run the harness.
runCatalogue(REFERENCE_MODEL_CATALOGUE, [{ name: 'host', create: () => Promise.resolve(new CpuBackend()) }]);
