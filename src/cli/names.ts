// Names for numbers the kernel hands out: open flags, protections, signals, fd types.

const O_FLAG_NAMES: [number, string][] = [
  [0o2000, 'O_APPEND'],
  [0o4000, 'O_NONBLOCK'],
  [0o10000, 'O_DSYNC'],
  [0o20000, 'O_ASYNC'],
  [0o40000, 'O_DIRECT'],
  [0o100000, 'O_LARGEFILE'],
  [0o200000, 'O_DIRECTORY'],
  [0o400000, 'O_NOFOLLOW'],
  [0o1000000, 'O_NOATIME'],
  [0o2000000, 'O_CLOEXEC'],
  [0o4010000, 'O_SYNC'],
  [0o10000000, 'O_PATH'],
];

/** 0o102001 → "O_WRONLY|O_APPEND|O_LARGEFILE". */
export function openFlagNames(flags: number): string {
  const access = ['O_RDONLY', 'O_WRONLY', 'O_RDWR', 'O_ACCMODE'][flags & 3]!;
  const names = [access];
  let rest = flags & ~3;
  for (const [bit, name] of O_FLAG_NAMES) {
    if ((rest & bit) === bit) {
      names.push(name);
      rest &= ~bit;
    }
  }
  if (rest) names.push(`0o${rest.toString(8)}`);
  return names.join('|');
}

/** Short access mode for tables: r, w, rw. */
export function accessMode(flags: number): string {
  return ['r', 'w', 'rw', '?'][flags & 3]!;
}

/** prot bits + shared → "rw-p" as /proc/PID/maps prints it. */
export function protString(prot: number, shared: boolean): string {
  return (prot & 1 ? 'r' : '-') + (prot & 2 ? 'w' : '-') + (prot & 4 ? 'x' : '-') + (shared ? 's' : 'p');
}

const STATE_NAMES: Record<string, string> = {
  R: 'running',
  S: 'sleeping',
  D: 'disk sleep',
  T: 'stopped',
  t: 'tracing stop',
  Z: 'zombie',
  X: 'dead',
  I: 'idle',
};

export function stateName(state: string | null): string {
  if (!state) return '?';
  return STATE_NAMES[state] ? `${state} (${STATE_NAMES[state]})` : state;
}
