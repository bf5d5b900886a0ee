// PID maps for `rewrite --pid-map OLD:NEW,...` and `--pid-map auto`. A map must be one-to-one, must
// not move a PID onto another PID of the image that is not itself moved away, and (checked by the
// caller, which knows the host) must not name a PID that is in use.
import { RewriteOptionError } from './relocate.js';

export type PidMap = Map<number, number>;

const MAX_PID = 4_194_304; // PID_MAX_LIMIT on 64-bit Linux

function pidValue(text: string, whole: string): number {
  if (!/^\d+$/.test(text)) throw new RewriteOptionError(`--pid-map '${whole}': '${text}' is not a PID`);
  const value = Number(text);
  if (value < 1 || value > MAX_PID) throw new RewriteOptionError(`--pid-map '${whole}': ${value} is out of the PID range 1..${MAX_PID}`);
  return value;
}

/** Parses "OLD:NEW[,OLD:NEW...]". */
export function parsePidMap(text: string): PidMap {
  const map: PidMap = new Map();
  for (const pair of text.split(',')) {
    const parts = pair.split(':');
    if (parts.length !== 2) throw new RewriteOptionError(`--pid-map '${text}': expected OLD:NEW pairs separated by commas, got '${pair}'`);
    const from = pidValue(parts[0]!.trim(), text);
    const to = pidValue(parts[1]!.trim(), text);
    if (map.has(from)) throw new RewriteOptionError(`--pid-map: ${from} is mapped twice`);
    map.set(from, to);
  }
  return map;
}

/**
 * Completes and checks a map against the image's IDs (every PID and TID): IDs not in the map keep
 * their number. Throws when two IDs would end up the same, when a key is not an ID of the image, or
 * when `inUse` says a new ID is taken on this host.
 */
export function checkPidMap(map: PidMap, imageIds: number[], inUse: (pid: number) => boolean): PidMap {
  const ids = new Set(imageIds);
  for (const from of map.keys()) {
    if (!ids.has(from)) throw new RewriteOptionError(`--pid-map: ${from} is not a PID or TID of this image (it has ${[...ids].join(', ')})`);
  }
  const full: PidMap = new Map();
  const owners = new Map<number, number>();
  for (const id of ids) {
    const to = map.get(id) ?? id;
    const other = owners.get(to);
    if (other !== undefined) {
      throw new RewriteOptionError(`--pid-map: ${other} and ${id} would both become ${to}`);
    }
    owners.set(to, id);
    full.set(id, to);
  }
  for (const [from, to] of map) {
    if (from !== to && inUse(to)) throw new RewriteOptionError(`--pid-map: ${from}:${to}: PID ${to} is in use on this host`);
  }
  return full;
}

/**
 * A map moving every ID of the image to a PID free on this host. Picks a random run of free PIDs in
 * the upper half of the PID space, so that two images remapped at the same moment do not collide.
 */
export function autoPidMap(imageIds: number[], inUse: (pid: number) => boolean, pidMax: number, random = Math.random): PidMap {
  const ids = [...new Set(imageIds)].sort((a, b) => a - b);
  const low = Math.max(300, Math.floor(pidMax / 2));
  for (let attempt = 0; attempt < 64; attempt++) {
    const start = low + Math.floor(random() * (pidMax - low - ids.length - 1));
    const chosen: number[] = [];
    for (let pid = start; pid < pidMax && chosen.length < ids.length; pid++) {
      if (!inUse(pid) && !ids.includes(pid)) chosen.push(pid);
    }
    if (chosen.length === ids.length) return new Map(ids.map((id, i) => [id, chosen[i]!]));
  }
  throw new RewriteOptionError(`--pid-map auto: could not find ${ids.length} free PIDs below ${pidMax}`);
}
