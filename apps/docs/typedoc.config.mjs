// API reference: TypeDoc over the packages' TypeScript sources, written as Markdown into api/
// (gitignored) before every `vitepress build` / `dev`, so the reference cannot drift from the code.
import { apiEntryPoints } from './typedoc/entry-points.mjs';

/** @type {Partial<import('typedoc').TypeDocOptions & import('typedoc-plugin-markdown').PluginOptions & { docsRoot: string, sidebar: object }>} */
export default {
  entryPoints: apiEntryPoints().map((e) => e.file),
  entryPointStrategy: 'resolve',
  tsconfig: './tsconfig.typedoc.json',
  plugin: ['typedoc-plugin-markdown', 'typedoc-vitepress-theme', './typedoc/name-modules.mjs'],
  out: './api',
  docsRoot: './',
  name: 'API reference',
  readme: 'none',
  excludePrivate: true,
  excludeInternal: true,
  excludeExternals: true,
  hideGenerator: true,
  sort: ['kind', 'alphabetical'],
  // Broken {@link}s and unexported types are reported in the build log. They do not fail the
  // build: a doc comment in a package under development must not stop everyone's `pnpm test`
  // (the links VitePress renders are checked: a dead one fails `vitepress build`).
  validation: { notExported: true, invalidLink: true, notDocumented: false },
  treatWarningsAsErrors: false,
  sidebar: { autoConfiguration: true, pretty: true, collapsed: true },
  // typedoc-plugin-markdown
  outputFileStrategy: 'members',
  entryFileName: 'index',
  useCodeBlocks: true,
  parametersFormat: 'table',
  interfacePropertiesFormat: 'table',
  typeDeclarationFormat: 'table',
  hidePageHeader: true,
};
