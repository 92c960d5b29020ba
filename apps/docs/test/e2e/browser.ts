// Debian's Chromium, headless, driven by playwright-core: no browser is downloaded. The profile
// is a fresh temporary directory per run; networking beyond 127.0.0.1 is neither needed nor used.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** The browser binary: $ATTNKIT_CHROMIUM, else Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.ATTNKIT_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Chromium's WebGL on the CPU: ANGLE over SwiftShader. CI machines have no GPU, and Chromium no
 * longer falls back to SwiftShader for WebGL on its own. WebGPU stays unavailable (no adapter),
 * so pages see what a browser without WebGPU offers: WebGL2, WebGL, WebAssembly.
 */
export const SOFTWARE_WEBGL: readonly string[] = ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'];

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** Flags added to the defaults (e.g. a software WebGL for the GL conformance run). */
  readonly args?: readonly string[];
}

export async function launchChromium(options: LaunchOptions = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: run \`bash tooling/scripts/setup-browser.sh\` (Debian, as root) or set ATTNKIT_CHROMIUM`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'attnkit-docs-chromium-'));
  // launchPersistentContext passes the profile as --user-data-dir (playwright refuses it in args)
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, ...(options.args ?? [])],
    viewport: { width: 1280, height: 900 },
    deviceScaleFactor: 1,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
