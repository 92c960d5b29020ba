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
