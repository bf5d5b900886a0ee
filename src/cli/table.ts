// Plain aligned text tables for terminal output.

export type Align = 'left' | 'right';

export interface Column {
  title: string;
  align?: Align;
}

export function renderTable(columns: Column[], rows: string[][], indent = ''): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    indent +
    cells
      .map((cell, i) => {
        const last = i === cells.length - 1;
        if (columns[i]!.align === 'right') return cell.padStart(widths[i]!);
        return last ? cell : cell.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...rows.map(line)].join('\n');
}
