// A progress bar on stderr for long operations: shown only when stderr is a terminal and --quiet was
// not given; redrawn at most ten times a second; erased when done.

export interface Progress {
  /** `done` of `total` units (bytes or pages). */
  update(done: number, total: number): void;
  finish(): void;
}

const silent: Progress = { update: () => undefined, finish: () => undefined };

export function progressBar(label: string, options: { quiet?: boolean } = {}): Progress {
  const stream = process.stderr;
  if (options.quiet || !stream.isTTY) return silent;
  const started = Date.now();
  let last = 0;
  let shown = false;
  return {
    update(done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - label.length - 30));
      const fraction = total > 0 ? Math.min(1, done / total) : 0;
      const filled = Math.round(fraction * width);
      const seconds = (now - started) / 1000;
      const eta = fraction > 0.02 && fraction < 1 ? ` ${Math.ceil(seconds / fraction - seconds)} s left` : '';
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%${eta}\x1b[K`);
      shown = true;
    },
    finish() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}
