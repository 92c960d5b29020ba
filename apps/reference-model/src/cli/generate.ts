// `generate` (and `demo`, which is `generate` on the embedded default with a default prompt):
// streams the sampled text to stdout, progress to stderr.

import { parseArgs } from 'node:util';
import { generate } from '../generation/generate.js';
import { loadModelFromFolder } from '../node.js';
import { BACKEND_HELP, openBackend } from './backend.js';
import { type CliIO, formatBytes } from './io.js';
import { resolveModel } from './models.js';
import { ProgressLine } from './progress.js';

export const GENERATE_HELP = `Usage: attnkit-demo generate [options]

Generates text from a checkpoint, streaming it token by token, with a live progress line
(tokens/s, KV cache bytes held) on a terminal and a summary otherwise.

Options:
  --model DIR|NAME   checkpoint folder (config.json + .safetensors) or an embedded name
                     (fortunes-mha, fortunes-gqa, fortunes-mla, fortunes-dsa, fortunes-nsa);
                     default: the embedded default (checkpoints/DEFAULT)
  --prompt TEXT      prompt (bytes of its UTF-8 text); default "%\\n" (a fortune separator)
  --max-tokens N     tokens to generate (default 200)
  --temperature T    0 is greedy (default 0.8)
  --top-k K          keep the K most likely tokens, 0 = all (default 40)
  --top-p P          nucleus sampling, 1 = off (default 1)
  --seed S           sampling seed (default 1)
  ${BACKEND_HELP}
  -h, --help         this text
`;

export const DEMO_HELP = `Usage: attnkit-demo demo [options]

Generates a few fortunes from the embedded default checkpoint (a 1.1 M-parameter byte-level
model trained on Debian's fortune databases; see apps/reference-model/README.md). Takes the
options of \`generate\` (--prompt, --max-tokens, --temperature, --top-k, --top-p, --seed, --backend).
`;

const OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  seed: { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A numeric option, or its default; NaN and garbage are usage errors. */
export function numberOption(values: Readonly<Record<string, unknown>>, name: string, fallback: number): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
  if (!Number.isFinite(value)) throw new UsageError(`--${name} expects a number, got ${JSON.stringify(raw)}`);
  return value;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export async function generateCommand(argv: readonly string[], io: CliIO, mode: 'generate' | 'demo' = 'generate'): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help) {
    io.out(mode === 'demo' ? DEMO_HELP : GENERATE_HELP);
    return 0;
  }
  if (mode === 'demo' && values.model !== undefined) throw new UsageError('demo runs the embedded default; use `generate --model` for another checkpoint');
  const ref = await resolveModel(values.model);
  const { backend, note } = await openBackend(values.backend ?? 'cpu');
  try {
    using model = await loadModelFromFolder(backend, ref.dir);
    const prompt = values.prompt ?? '%\n';
    const options = {
      maxTokens: numberOption(values, 'max-tokens', 200),
      temperature: numberOption(values, 'temperature', 0.8),
      topK: numberOption(values, 'top-k', 40),
      topP: numberOption(values, 'top-p', 1),
      seed: numberOption(values, 'seed', 1),
    };
    const c = model.config;
    io.err(`${ref.name}: ${c.modelType} / ${c.attention}, ${c.nLayers} layers × ${c.dim}, vocabulary ${c.vocabSize} · backend ${note}\n`);
    if (mode === 'demo') io.err(`prompt ${JSON.stringify(prompt)}, ${options.maxTokens} tokens, temperature ${options.temperature}, top-k ${options.topK}, seed ${options.seed}\n\n`);
    const progress = new ProgressLine(io);
    progress.text(prompt);
    const result = await generate(model, prompt, {
      ...options,
      onToken: (t) => {
        progress.text(t.text);
        progress.status(`[${t.index + 1} tokens · ${t.decodeTokensPerSecond.toFixed(1)} tok/s · KV ${formatBytes(t.kvBytes)}]`);
      },
    });
    progress.finish();
    io.err(
      `\n${result.tokens.length} tokens · prefill ${result.promptTokens} tokens in ${result.prefillMs.toFixed(1)} ms · decode ${result.decodeTokensPerSecond.toFixed(1)} tok/s · ` +
        `KV cache ${formatBytes(result.kvBytes)} held (${result.kvBytesPerToken} B per token)\n`,
    );
    return 0;
  } finally {
    await backend.dispose();
  }
}
