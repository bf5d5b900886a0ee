// Path relocation rules for `rewrite --relocate OLD=NEW`: the longest matching prefix wins, prefixes
// match whole path components only ("/srv/app" matches "/srv/app" and "/srv/app/x", never
// "/srv/apple"), and a path is rewritten at most once (no chained rewrites).

export class RewriteOptionError extends Error {
  override name = 'RewriteOptionError';
}

export interface Relocation {
  from: string;
  to: string;
}

/** Parses "OLD=NEW"; both must be absolute. A trailing slash is dropped ("/a/" means "/a"). */
export function parseRelocation(text: string): Relocation {
  const eq = text.indexOf('=');
  if (eq <= 0 || eq === text.length - 1) {
    throw new RewriteOptionError(`--relocate '${text}': expected OLD_PREFIX=NEW_PREFIX`);
  }
  const from = normalisePrefix(text.slice(0, eq), text);
  const to = normalisePrefix(text.slice(eq + 1), text);
  return { from, to };
}

function normalisePrefix(prefix: string, whole: string): string {
  if (!prefix.startsWith('/')) throw new RewriteOptionError(`--relocate '${whole}': '${prefix}' is not an absolute path`);
  if (prefix.split('/').some((part) => part === '.' || part === '..')) {
    throw new RewriteOptionError(`--relocate '${whole}': '${prefix}' must not contain '.' or '..' components`);
  }
  if (prefix.includes('\0')) throw new RewriteOptionError(`--relocate '${whole}': NUL byte in path`);
  const collapsed = prefix.replace(/\/{2,}/g, '/');
  return collapsed.length > 1 ? collapsed.replace(/\/$/, '') : collapsed;
}

/** A set of relocations, checked for duplicates, applied by longest prefix. */
export class Relocator {
  private readonly rules: Relocation[];

  constructor(rules: Relocation[]) {
    const seen = new Set<string>();
    for (const rule of rules) {
      if (seen.has(rule.from)) throw new RewriteOptionError(`--relocate: '${rule.from}' is given twice`);
      seen.add(rule.from);
    }
    // Longest first, so the first match is the longest match.
    this.rules = [...rules].sort((a, b) => b.from.length - a.from.length);
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** The relocated path, or null when no rule matches. */
  apply(path: string): string | null {
    for (const { from, to } of this.rules) {
      if (from === '/') return to === '/' ? path : to + path;
      if (path === from) return to;
      if (path.startsWith(from + '/')) return (to === '/' ? '' : to) + path.slice(from.length);
    }
    return null;
  }
}
