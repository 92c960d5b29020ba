import type { VariantEntry } from '../adapter.js';
import { ropeAdapter } from './rope.js';

/**
 * Every golden variant and who runs it. A package plugs its variant in here when it lands;
 * until then the variant's cases are reported as skipped with the reason below.
 */
export const VARIANTS: Readonly<Record<string, VariantEntry>> = {
  rope: ropeAdapter,
  mha: { pending: 'attention-mha is not implemented yet (issue 5)' },
  gqa: { pending: 'attention-mha is not implemented yet (issue 5)' },
  mqa: { pending: 'attention-mha is not implemented yet (issue 5)' },
  mla: { pending: 'attention-mla is not implemented yet (issue 6)' },
  dsa: { pending: 'indexer-dsa is not implemented yet (issue 7)' },
  nsa: { pending: 'attention-nsa is not implemented yet (issue 8)' },
};
