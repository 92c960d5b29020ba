#!/usr/bin/env -S npx tsx
// The attnkit reference-model CLI: `demo`, `generate`, `compare` (`--help` on each).
// The commands live in cli/; this file only runs them on the process's arguments.

import { runCli } from './cli/main.js';

process.exitCode = await runCli(process.argv.slice(2));
