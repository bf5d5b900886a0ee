// Canonical hexdump (address, 16 bytes in hex, printable ASCII), as `hexdump -C` prints it.

export function hexdump(bytes: Uint8Array, baseAddress: number): string {
  const lines: string[] = [];
  for (let offset = 0; offset < bytes.length; offset += 16) {
    const row = bytes.subarray(offset, offset + 16);
    const hexPart = Array.from(row, (b) => b.toString(16).padStart(2, '0'));
    const left = hexPart.slice(0, 8).join(' ');
    const right = hexPart.slice(8).join(' ');
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    const address = (baseAddress + offset).toString(16).padStart(12, '0');
    lines.push(`${address}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`);
  }
  return lines.join('\n');
}
