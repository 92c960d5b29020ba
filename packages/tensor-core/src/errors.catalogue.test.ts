// The tensor-core section of the bad-input catalogue: every row on every backend, and the docs page.
import { runCatalogue } from '@attnkit/testkit';
import { availableBackends } from './testing/index.js';
import { TENSOR_CORE_CATALOGUE } from './testing/fixtures/errors.catalogue.js';

runCatalogue(TENSOR_CORE_CATALOGUE, (await availableBackends()).available);
