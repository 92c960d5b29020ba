import type { VariantEntry } from '../adapter.js';
import { attentionAdapter } from './attention.js';
import { dsaAdapter } from './dsa.js';
import { mlaAdapter } from './mla.js';
import { nsaAdapter } from './nsa.js';
import { ropeAdapter } from './rope.js';

/**
 * Every golden variant and who runs it. A package plugs its variant in here when it lands;
 * until then the variant's cases are reported as skipped with the reason below.
 */
export const VARIANTS: Readonly<Record<string, VariantEntry>> = {
  rope: ropeAdapter,
  mha: attentionAdapter,
  gqa: attentionAdapter,
  mqa: attentionAdapter,
  mla: mlaAdapter,
  dsa: dsaAdapter,
  nsa: nsaAdapter,
};
