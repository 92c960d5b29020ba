export { compareArrays, type Comparison, type Tolerance } from './compare.js';
export {
  GoldenCase,
  defaultGoldenDir,
  loadGoldenCases,
  type GoldenArray,
  type GoldenManifest,
  type GoldenTensorSpec,
  type GoldenTolerance,
  type GoldenVariant,
} from './golden.js';
export { SeededRandom } from './random.js';
export {
  CATALOGUE_PAGE,
  SceneInputs,
  pageBlock,
  readAndDispose,
  renderSection,
  replaceBlock,
  runCatalogue,
  takeValues,
  type CatalogueBackend,
  type CatalogueBackendFactory,
  type CatalogueErrorName,
  type CatalogueKind,
  type CatalogueRow,
  type CatalogueScene,
  type CatalogueSection,
  type PropagationRow,
  type ReadableTensor,
  type RefusalRow,
} from './catalogue.js';
export { F32_UNIT, assertProperty, firstOutside, gamma, layerTolerance, propertyRun, type PropertyRun } from './property.js';
export { attention64, type Attention64Problem, type Attention64Result } from './attention64.js';
export { describeEachBackend, describeOnBackend, type BackendFactory, type BackendGetter, type DisposableBackend, type EachBackendOptions } from './backends.js';
export { abortAtRead, abortEverywhere, type CountingAbort } from './abort.js';
