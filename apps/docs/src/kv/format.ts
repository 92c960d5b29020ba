// Number formatting for the calculator and the tables: exact counts with thin-space digit groups
// (as the spec writes them), byte sizes with binary units to three significant digits.

const GROUP = '\u202f'; // narrow no-break space: "40 960"

/** An exact count with digit groups; fractions (NSA's amortised blocks) keep up to 3 decimals. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const rounded = Math.round(n * 1000) / 1000;
  const [int, frac] = Math.abs(rounded).toString().split('.') as [string, string | undefined];
  const grouped = int.length > 3 ? int.replace(/\B(?=(\d{3})+(?!\d))/g, GROUP) : int;
  return `${rounded < 0 ? '-' : ''}${grouped}${frac ? `.${frac}` : ''}`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** Bytes in binary units, three significant digits: 70 272 → "68.6 KiB", 4 997 120 → "4.77 MiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${formatCount(Math.round(value * 10) / 10)} B`;
  // four integer digits do not fit three significant ones (1023.9 KiB): use the next unit
  if (value >= 999.5 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${Number(value.toPrecision(3)).toString()} ${UNITS[unit]}`;
}
