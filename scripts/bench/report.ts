/** Statistics and table output shared by the benchmarks. */

/** Prints an aligned table: the first `leftColumns` columns left-aligned, the rest right. */
export function printTable(header: string[], body: string[][], leftColumns: number): void {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}

/** The `q` quantile (0..1) of ascending `sorted`, nearest-rank; NaN when empty. */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Starts `send(i)` for i = 0..count-1 at `ratePerSecond`, on schedule from `start` (a
 * `performance.now()` value) whatever each call takes, and waits for all of them.
 */
export async function paced(
  count: number,
  ratePerSecond: number,
  start: number,
  send: (i: number) => Promise<void>,
): Promise<void> {
  const interval = 1_000 / ratePerSecond;
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < count; i += 1) {
    const wait = start + i * interval - performance.now();
    if (wait > 0.5) await new Promise((resolve) => setTimeout(resolve, wait));
    inFlight.push(send(i));
  }
  await Promise.all(inFlight);
}
