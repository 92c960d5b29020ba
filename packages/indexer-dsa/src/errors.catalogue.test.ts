// The indexer-dsa section of the bad-input catalogue: every row on every backend, and the docs page.
import { availableBackends } from '@attnkit/tensor-core/testing';
import { runCatalogue } from '@attnkit/testkit';
import { INDEXER_DSA_CATALOGUE } from './testing/fixtures/errors.catalogue.js';

runCatalogue(INDEXER_DSA_CATALOGUE, (await availableBackends()).available);
