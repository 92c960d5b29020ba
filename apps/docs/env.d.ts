// @attnkit/vitest-config is plain JavaScript (vitest loads it before TypeScript is set up).
declare module '@attnkit/vitest-config' {
  /** Exact-match aliases from every `@attnkit/*` entry point to its TypeScript source. */
  export function sourceAliases(): { find: RegExp; replacement: string }[];
}

// The reference model's checkpoints published with the site (.vitepress/checkpoints.ts).
// Its shape is CheckpointListing (src/model-demo/checkpoint.ts), spelled out: an ambient module
// cannot import a relative one.
declare module 'virtual:attnkit-checkpoints' {
  const listing: {
    readonly defaultName: string;
    readonly checkpoints: readonly { readonly name: string; readonly modelType: string; readonly files: Readonly<Record<string, number>> }[];
  };
  export default listing;
}

// The golden vectors test/e2e/browser-suite/bundle.ts embeds into a browser bundle (path → base64).
declare module 'attnkit:golden-files' {
  export const GOLDEN_FILES: Readonly<Record<string, string>>;
}
