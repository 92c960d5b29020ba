// The attention-nsa section of the bad-input catalogue: every row on every backend, and the docs page.
import { availableBackends } from '@attnkit/tensor-core/testing';
import { runCatalogue } from '@attnkit/testkit';
import { ATTENTION_NSA_CATALOGUE } from './testing/fixtures/errors.catalogue.js';

runCatalogue(ATTENTION_NSA_CATALOGUE, (await availableBackends()).available);
