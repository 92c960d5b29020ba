// @attnkit/vitest-config is plain JavaScript (vitest loads it before TypeScript is set up).
declare module '@attnkit/vitest-config' {
  /** Exact-match aliases from every `@attnkit/*` entry point to its TypeScript source. */
  export function sourceAliases(): { find: RegExp; replacement: string }[];
}
