import { describe, expect, it } from 'vitest';
import { lineChartSvg, niceTicks } from './chart.js';

describe('the SVG line chart', () => {
  it('picks round ticks that reach the data', () => {
    expect(niceTicks(0, 480)).toEqual([0, 100, 200, 300, 400, 500]);
    expect(niceTicks(0, 56.8)).toEqual([0, 20, 40, 60]);
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });

  it('draws one polyline per series inside the plot, and escapes names', () => {
    const svg = lineChartSvg(
      [
        { name: 'a<b', points: [[0, 1], [10, 2]] },
        { name: 'c', points: [[5, 4]] },
      ],
      { title: 'T & U', xLabel: 'x', yLabel: 'y', width: 400, height: 300 },
    );
    expect(svg).toContain('<title>T &amp; U</title>');
    const lines = [...svg.matchAll(/<polyline data-series="([^"]*)" points="([^"]*)"/g)];
    expect(lines.map((m) => m[1])).toEqual(['a&lt;b', 'c']);
    for (const [, , points] of lines) {
      for (const [x, y] of (points ?? '').split(' ').map((p) => p.split(',').map(Number))) {
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(400);
        expect(y).toBeGreaterThanOrEqual(0);
        expect(y).toBeLessThanOrEqual(300);
      }
    }
  });
});
