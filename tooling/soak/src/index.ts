export { runSoak, type SoakCheckpoint, type SoakOptions, type SoakReport } from './soak.js';
export { type SoakVariant, dsaVariant, gqaVariant, mhaVariant, mlaVariant, mqaVariant, nsaVariant } from './variants.js';
