// TypeDoc plugin: names each entry-point module after its package export (`@attnkit/tensor-core/gpu`)
// instead of its path (`tensor-core/src/gpujs`).
import { Converter, ReflectionKind } from 'typedoc';
import { apiEntryPoints } from './entry-points.mjs';

/** @param {import('typedoc').Application} app */
export function load(app) {
  const names = new Map(apiEntryPoints().map((e) => [e.file.replaceAll('\\', '/'), e.name]));
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => {
    if (!reflection.kindOf(ReflectionKind.Module)) return;
    const symbol = context.getSymbolFromReflection(reflection);
    const file = symbol?.declarations?.[0]?.getSourceFile().fileName;
    const name = file ? names.get(file.replaceAll('\\', '/')) : undefined;
    if (name) reflection.name = name;
  });
}
