import { ropeInvFreq, rope, tensor, type YarnConfig } from '@attnkit/tensor-core';
import type { GoldenCase } from '@attnkit/testkit';
import type { VariantAdapter } from '../adapter.js';

/** rope_*: inv_freq from the config (YaRN included), then both pair layouts on x [S, H, D]. */
export const ropeAdapter: VariantAdapter = {
  implementedBy: '@attnkit/tensor-core',
  async run(c: GoldenCase, backend) {
    const dim = c.number('dim');
    const yarnConfig = c.manifest.config.yarn as Record<string, number> | null;
    const yarn: YarnConfig | null = yarnConfig
      ? {
          factor: req(yarnConfig, 'factor'),
          originalSeqLen: req(yarnConfig, 'original_seq_len'),
          betaFast: req(yarnConfig, 'beta_fast'),
          betaSlow: req(yarnConfig, 'beta_slow'),
        }
      : null;
    const invFreqValues = ropeInvFreq({ dim, theta: c.number('rope_theta'), yarn });
    const positions = c.manifest.config.positions as number[];
    const x = c.tensor('x');
    using xt = tensor(backend, x.data, x.shape);
    using pos = tensor(backend, Int32Array.from(positions), [positions.length], { dtype: 'i32' });
    using inv = tensor(backend, invFreqValues, [dim / 2]);
    using yi = await rope(xt, pos, inv, { layout: 'interleaved' });
    using yh = await rope(xt, pos, inv, { layout: 'halfsplit' });
    return { inv_freq: invFreqValues, y_interleaved: await yi.data(), y_halfsplit: await yh.data() };
  },
};

function req(o: Record<string, number>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number') throw new Error(`yarn.${key} missing from the manifest`);
  return v;
}
