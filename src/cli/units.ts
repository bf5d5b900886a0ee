// Human units for sizes and addresses in CLI output.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 4096 → "4.0 KiB", 1536 → "1.5 KiB", 100 → "100 B". */
export function humanBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

export function hex(value: number | bigint, width = 0): string {
  return value.toString(16).padStart(width, '0');
}

/** Parses "0x7ff0...", "7ff0..." (hex when it has a-f or a 0x prefix) or a decimal string. */
export function parseAddress(text: string): number {
  const trimmed = text.trim().toLowerCase();
  const isHex = trimmed.startsWith('0x') || /[a-f]/.test(trimmed);
  const value = isHex ? Number.parseInt(trimmed.replace(/^0x/, ''), 16) : Number.parseInt(trimmed, 10);
  if (!Number.isSafeInteger(value) || value < 0 || !/^(0x)?[0-9a-f]+$/.test(trimmed)) {
    throw new Error(`not an address: '${text}'`);
  }
  return value;
}
