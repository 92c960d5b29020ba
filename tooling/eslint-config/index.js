// Shared flat config for every attnkit workspace. Type-checked rules run through the TypeScript
// project service, so each package's own tsconfig.json decides what a file sees.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/** @param {{ tsconfigRootDir: string }} options */
export function attnkitConfig({ tsconfigRootDir }) {
  return tseslint.config(
    {
      ignores: [
        '**/dist/**',
        '**/node_modules/**',
        '**/.turbo/**',
        '**/coverage/**',
        'apps/docs/.vitepress/cache/**',
        'apps/docs/.vitepress/dist/**',
        'apps/docs/api/**',
        '.device-node/**',
      ],
    },
    js.configs.recommended,
    ...tseslint.configs.recommendedTypeChecked,
    {
      languageOptions: {
        globals: { ...globals.node },
        parserOptions: { projectService: true, tsconfigRootDir },
      },
      linterOptions: { reportUnusedDisableDirectives: 'error' },
      rules: {
        '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
        '@typescript-eslint/consistent-type-exports': 'error',
        '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
        '@typescript-eslint/no-non-null-assertion': 'error',
        '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
        // `as` casts hide contract mismatches; the kernel contracts are typed so none is needed.
        '@typescript-eslint/consistent-type-assertions': ['error', { assertionStyle: 'as', objectLiteralTypeAssertions: 'never' }],
        'no-console': ['error', { allow: ['warn', 'error'] }],
        eqeqeq: ['error', 'always'],
        // A promise returned from a scope with `using` (or try/finally) must be awaited there, or
        // the scope disposes its inputs before an asynchronous GPU kernel has read them.
        '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      },
    },
    {
      // gpu.js kernels are plain functions parsed from their source text: `this` is gpu.js's
      // kernel context and numbers are f32, so the usual style rules do not apply inside them.
      files: ['**/gpujs/kernels/**/*.ts', '**/*.gpujs.ts'],
      rules: {
        '@typescript-eslint/no-unsafe-member-access': 'off',
        '@typescript-eslint/no-unsafe-assignment': 'off',
        '@typescript-eslint/no-unsafe-return': 'off',
        '@typescript-eslint/no-unsafe-argument': 'off',
        '@typescript-eslint/prefer-for-of': 'off',
      },
    },
    {
      // Command-line programs, benchmarks and tests talk to the terminal.
      files: ['**/cli.ts', '**/cli/**/*.ts', '**/*.bench.ts', '**/bench/**/*.ts', 'tooling/**/*.ts', '**/scripts/**/*.ts', '**/*.test.ts'],
      rules: { 'no-console': 'off' },
    },
    {
      files: ['**/*.js', '**/*.mjs'],
      extends: [tseslint.configs.disableTypeChecked],
    },
  );
}
