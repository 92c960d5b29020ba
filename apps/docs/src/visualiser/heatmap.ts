// Drawing a head's [S, T] matrix: one cell per (query, key), a perceptual colour scale for the
// visible cells, a flat grey for masked ones; under a sparse variant's picks, the cells it leaves
// out are faded, so the picture shows which part of the dense attention the selection keeps.

/** Viridis, sampled at 9 stops (matplotlib's colour map, public domain). */
const VIRIDIS: readonly (readonly [number, number, number])[] = [
  [68, 1, 84],
  [71, 44, 122],
  [59, 81, 139],
  [44, 113, 142],
  [33, 144, 141],
  [39, 173, 129],
  [92, 200, 99],
  [170, 220, 50],
  [253, 231, 37],
];
const MASKED: readonly [number, number, number] = [226, 226, 230];
/** Visible cells a sparse selection leaves out: their colour, faded this far toward white. */
const FADE = 0.82;

/** The colour of `x` in [0, 1] (clamped). */
export function viridis(x: number): [number, number, number] {
  const t = Math.min(1, Math.max(0, Number.isFinite(x) ? x : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(t));
  const f = t - i;
  const a = VIRIDIS[i] as readonly [number, number, number];
  const b = VIRIDIS[i + 1] as readonly [number, number, number];
  return [Math.round(a[0] + (b[0] - a[0]) * f), Math.round(a[1] + (b[1] - a[1]) * f), Math.round(a[2] + (b[2] - a[2]) * f)];
}

export interface HeatmapRange {
  readonly min: number;
  readonly max: number;
}

/** Min and max over the visible cells. */
export function visibleRange(values: Float32Array, visible: Uint8Array): HeatmapRange {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < values.length; j++) {
    if (visible[j] !== 1) continue;
    const x = values[j] as number;
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return Number.isFinite(min) ? { min, max: max > min ? max : min + 1 } : { min: 0, max: 1 };
}

/**
 * Each row divided by its largest visible value. Attention rows of early queries (few keys,
 * large probabilities) would otherwise set the colour scale and leave later rows dark.
 */
export function rowNormalised(values: Float32Array, visible: Uint8Array, S: number, T: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < S; i++) {
    let max = 0;
    for (let t = 0; t < T; t++) if (visible[i * T + t] === 1) max = Math.max(max, values[i * T + t] as number);
    for (let t = 0; t < T; t++) out[i * T + t] = max > 0 ? (values[i * T + t] as number) / max : 0;
  }
  return out;
}

/**
 * RGBA pixels of an S×T image, one pixel per cell. With `kept` (a sparse selection, [S, T]),
 * visible cells outside it are faded toward white.
 */
export function heatmapPixels(values: Float32Array, visible: Uint8Array, range: HeatmapRange, kept: Uint8Array | null = null): Uint8ClampedArray<ArrayBuffer> {
  const pixels = new Uint8ClampedArray(new ArrayBuffer(values.length * 4));
  for (let j = 0; j < values.length; j++) {
    let [r, g, b] = visible[j] === 1 ? viridis(((values[j] as number) - range.min) / (range.max - range.min)) : MASKED;
    if (kept && visible[j] === 1 && kept[j] !== 1) [r, g, b] = [r + (255 - r) * FADE, g + (255 - g) * FADE, b + (255 - b) * FADE];
    pixels.set([r, g, b, 255], j * 4);
  }
  return pixels;
}

export interface DrawOptions {
  readonly S: number;
  readonly T: number;
  readonly range: HeatmapRange;
  /** A sparse selection [S, T]: the cells outside it are faded. */
  readonly kept?: Uint8Array | null;
}

/** Draws the matrix over the whole canvas, cells scaled without smoothing. */
export function drawHeatmap(canvas: HTMLCanvasElement, values: Float32Array, visible: Uint8Array, options: DrawOptions): void {
  const { S, T } = options;
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('drawHeatmap: this browser has no 2D canvas context');
  const image = new ImageData(heatmapPixels(values, visible, options.range, options.kept ?? null), T, S);
  const cells = document.createElement('canvas');
  cells.width = T;
  cells.height = S;
  const cellsCtx = cells.getContext('2d');
  if (!cellsCtx) throw new Error('drawHeatmap: this browser has no 2D canvas context');
  cellsCtx.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(cells, 0, 0, canvas.width, canvas.height);
}
