// The viewer page: plain DOM, no framework. State lives in `state`; every change calls render(),
// which rebuilds the parts that depend on it. All image work happens in the worker (client.ts).
import { REGISTER_NAMES } from '../core/model.js';
import { WorkerClient, WorkerError } from './client.js';
import {
  CLASS_LABELS, formatDate, hex64, hexAddr, humanBytes, openFlagNames, parseAddress, parseHexBytes, plural,
  protString, stateName, vmaClass,
} from './format.js';
import {
  CELL_CHANGED, CELL_DATA, CELL_DEDUP, CELL_PARENT, CELL_ZERO,
  type DiffResult, type ErrorInfo, type ImageSummary, type MemoryResult, type ProcessDiff, type SearchProgress,
  type SourceSpec, type ViewProcess, type ViewVma,
} from './protocol.js';

type ViewName = 'processes' | 'overview' | 'threads' | 'memory' | 'files' | 'env' | 'hex' | 'diff';
const VIEWS: { name: ViewName; label: string }[] = [
  { name: 'processes', label: 'Processes' },
  { name: 'overview', label: 'Overview' },
  { name: 'threads', label: 'Threads' },
  { name: 'memory', label: 'Memory' },
  { name: 'files', label: 'Files' },
  { name: 'env', label: 'Command & env' },
  { name: 'hex', label: 'Hex & search' },
  { name: 'diff', label: 'Diff' },
];

const HEX_ROWS = 32;
const HEX_BYTES = HEX_ROWS * 16;
const PAGE = 4096n;

interface SearchState {
  query: string;
  mode: 'text' | 'hex';
  running: number | null;
  progress: SearchProgress | null;
  patternLength: number;
  error: string | null;
  pid: number;
}

interface State {
  images: (ImageSummary | undefined)[];
  loading: string | null;
  error: { title: string; info: ErrorInfo } | null;
  side: number;
  pid: number | null;
  view: ViewName;
  addr: bigint | null;
  selection: { start: bigint; length: number } | null;
  vma: number | null;
  search: SearchState | null;
  diff: DiffResult | null;
  diffProgress: { done: number; total: number } | null;
  diffError: string | null;
  /** The pid whose VMA table lists every row (else the first TABLE_MAX_ROWS). */
  allVmas: number | null;
}

const state: State = {
  images: [], loading: null, error: null, side: 0, pid: null, view: 'processes', addr: null, selection: null,
  vma: null, search: null, diff: null, diffProgress: null, diffError: null, allVmas: null,
};

/** What tests (and curious people) can read: when the first view was painted and what it cost. */
const probe = {
  firstPaint: null as null | { bytesRead: number; ms: number; reads: number },
  opened: 0,
  state,
};
(window as unknown as { cryoViewer: typeof probe }).cryoViewer = probe;

const client = new WorkerClient();
client.onStats = () => renderStatus();

// ---- DOM helpers ---------------------------------------------------------------------------------

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = String(value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
}

function $(id: string): HTMLElement {
  return document.getElementById(id)!;
}

function table(headers: string[], rows: Child[][], attrs: Attrs = {}): HTMLElement {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', {}, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

// ---- navigation and deep links -------------------------------------------------------------------

function linkTo(parts: { pid?: number | null; view?: ViewName; addr?: bigint | null; side?: number }): string {
  const q = new URLSearchParams();
  const pid = parts.pid === undefined ? state.pid : parts.pid;
  if (pid !== null) q.set('pid', String(pid));
  q.set('view', parts.view ?? state.view);
  const addr = parts.addr === undefined ? state.addr : parts.addr;
  if (addr !== null) q.set('addr', hexAddr(addr));
  const side = parts.side ?? state.side;
  if (side) q.set('side', String(side));
  return '#' + q.toString();
}

function writeHash(): void {
  const hash = linkTo({});
  if (location.hash !== hash) history.replaceState(null, '', location.pathname + location.search + hash);
}

function readHash(): void {
  const q = new URLSearchParams(location.hash.slice(1));
  const view = q.get('view') as ViewName | null;
  if (view && VIEWS.some((v) => v.name === view)) state.view = view;
  const side = Number(q.get('side') ?? 0);
  state.side = side === 1 && state.images[1] ? 1 : 0;
  const pid = Number(q.get('pid'));
  if (q.has('pid') && current()?.processes.some((p) => p.pid === pid)) state.pid = pid;
  const addr = q.get('addr');
  if (addr) {
    const a = parseAddress(addr);
    if (a !== null) state.addr = a;
  }
}

function navigate(parts: { pid?: number | null; view?: ViewName; addr?: bigint | null; side?: number }): void {
  if (parts.pid !== undefined && parts.pid !== state.pid) {
    state.vma = null;
    if (parts.addr === undefined) state.addr = null;
    state.selection = null;
  }
  if (parts.pid !== undefined) state.pid = parts.pid;
  if (parts.view) state.view = parts.view;
  if (parts.addr !== undefined) state.addr = parts.addr;
  if (parts.side !== undefined) state.side = parts.side;
  writeHash();
  render();
}

window.addEventListener('hashchange', () => {
  const before = state.pid;
  readHash();
  if (before !== state.pid) state.vma = null;
  const hit = state.search?.progress?.hits.find((x) => x.address === state.addr);
  if (hit && state.view === 'hex') state.selection = { start: hit.address, length: state.search!.patternLength };
  render();
});

// ---- images --------------------------------------------------------------------------------------

function current(): ImageSummary | undefined {
  return state.images[state.side] ?? state.images[0];
}

function proc(): ViewProcess | undefined {
  return current()?.processes.find((p) => p.pid === state.pid);
}

async function openSource(slot: number, source: SourceSpec): Promise<void> {
  const started = performance.now();
  state.loading = `Opening ${source.name}…`;
  state.error = null;
  if (slot === 0) {
    state.images = [];
    await client.call({ op: 'close', slot: 1 });
  }
  state.diff = null;
  state.diffProgress = null;
  state.diffError = null;
  diffRun++;
  if (state.search?.running) client.cancel(state.search.running);
  state.search = null;
  render();
  try {
    const summary = await client.call<ImageSummary>({ op: 'open', slot, source });
    state.images[slot] = summary;
    state.loading = null;
    if (slot === 0) {
      state.side = 0;
      state.pid = summary.rootPid ?? summary.processes[0]?.pid ?? null;
      state.addr = null;
      state.view = 'processes';
      readHash();
    } else {
      // Opening a second image may link an incremental image to its parent: refresh the first.
      const all = await client.call<(ImageSummary | null)[]>({ op: 'summaries' });
      if (all[0]) state.images[0] = all[0];
      state.view = 'diff';
      writeHash();
    }
    render();
    probe.opened++;
    if (!probe.firstPaint) {
      requestAnimationFrame(() => {
        probe.firstPaint = { bytesRead: summary.bytesRead, reads: summary.reads, ms: performance.now() - started };
        document.body.dataset.ready = String(probe.opened);
      });
    } else {
      requestAnimationFrame(() => { document.body.dataset.ready = String(probe.opened); });
    }
    if (slot === 1) void runDiff();
  } catch (error) {
    state.loading = null;
    const info = error instanceof WorkerError ? error.info : { name: 'Error', message: String(error) };
    state.error = { title: `Cannot open ${source.name}`, info };
    if (slot === 0) state.images = [];
    render();
    document.body.dataset.ready = 'error';
  }
}

function openFiles(files: FileList | File[], forCompare = false): void {
  const list = [...files];
  if (list.length === 0) return;
  if (forCompare && state.images[0]) {
    void openSource(1, { kind: 'blob', blob: list[0]!, name: list[0]!.name });
    return;
  }
  void (async () => {
    await openSource(0, { kind: 'blob', blob: list[0]!, name: list[0]!.name });
    if (list[1] && state.images[0]) await openSource(1, { kind: 'blob', blob: list[1], name: list[1].name });
  })();
}

function pickFiles(forCompare: boolean): void {
  const input = h('input', { type: 'file', accept: '.cryo,application/octet-stream', multiple: !forCompare }) as HTMLInputElement;
  input.addEventListener('change', () => input.files && openFiles(input.files, forCompare));
  input.click();
}

let diffRun = 0;

async function runDiff(): Promise<void> {
  const run = ++diffRun;
  state.diffProgress = { done: 0, total: 0 };
  state.diffError = null;
  render();
  try {
    const diff = await client.call<DiffResult>({ op: 'diff' }, (p) => {
      if (run !== diffRun) return;
      state.diffProgress = p as { done: number; total: number };
      if (state.view === 'diff') renderDiffProgress();
    });
    if (run !== diffRun) return; // another pair of images was opened meanwhile
    state.diff = diff;
  } catch (error) {
    if (run !== diffRun) return;
    state.diffError = (error as Error).message;
  }
  state.diffProgress = null;
  render();
  document.body.dataset.diff = state.diff ? 'done' : 'error';
}

// ---- rendering -----------------------------------------------------------------------------------

function render(): void {
  renderHeader();
  renderStatus();
  const main = $('main');
  main.replaceChildren();
  if (state.error) {
    main.append(errorPanel());
    if (!state.images[0]) return;
  }
  if (state.loading) {
    main.append(h('div', { class: 'loading' }, h('div', { class: 'spinner' }), state.loading));
    return;
  }
  const image = current();
  if (!image) {
    if (!state.error) main.append(welcome());
    return;
  }
  main.append(h('div', { class: 'layout' }, treeNav(image), h('section', { class: 'content' }, tabs(),
    image.note ? h('div', { class: 'note', id: 'note' }, image.note) : null,
    h('div', { id: 'view', class: `view view-${state.view}` }))));
  renderView();
}

function renderHeader(): void {
  const header = $('header');
  const a = state.images[0];
  const b = state.images[1];
  header.replaceChildren(
    h('div', { class: 'brand' }, h('span', { class: 'logo' }, '❄'), ' cryo-img ', h('span', { class: 'muted' }, 'viewer')),
    a ? h('div', { class: 'images' },
      sideButton(0, a), b ? [h('span', { class: 'muted' }, '→'), sideButton(1, b)] : null) : h('div', { class: 'images' }),
    h('div', { class: 'actions' },
      h('button', { onclick: () => pickFiles(false), title: 'Open an image (o)' }, 'Open…'),
      a ? h('button', { onclick: () => pickFiles(true), title: 'Compare with a second image (c)' }, b ? 'Compare with another…' : 'Compare…') : null,
      h('button', { onclick: toggleTheme, title: 'Light or dark (t)', 'aria-label': 'toggle theme' }, document.documentElement.dataset.theme === 'dark' ? '☀' : '☾'),
      h('button', { onclick: toggleHelp, title: 'Keyboard shortcuts (?)' }, '?')),
  );
}

function sideButton(slot: number, image: ImageSummary): HTMLElement {
  const label = state.images[1] ? (slot === 0 ? 'A' : 'B') : '';
  return h('button', {
    class: `image-tab${state.side === slot ? ' active' : ''}`, 'data-slot': slot,
    onclick: () => navigate({ side: slot }), title: `${image.name}: ${humanBytes(image.size)}`,
  }, label ? h('b', {}, label + ' ') : null, image.name, h('span', { class: 'muted' }, ` ${humanBytes(image.size)}`));
}

function renderStatus(): void {
  const status = $('status');
  const parts: Child[] = [];
  state.images.forEach((image, i) => {
    if (!image) return;
    const read = client.bytesRead[i] ?? image.bytesRead;
    parts.push(h('span', { class: 'stat', 'data-slot': i },
      `${state.images[1] ? (i ? 'B' : 'A') + ': ' : ''}${humanBytes(read)} read from ${image.name} (${humanBytes(image.size)})`));
  });
  parts.push(h('span', { class: 'muted hint' }, 'keys: 1–8 views · j/k process · g address · / search · t theme · ? help'));
  status.replaceChildren(...parts.map((p) => p as Node));
}

function errorPanel(): HTMLElement {
  const { title, info } = state.error!;
  const details: Child[] = [];
  if (info.offset !== undefined) details.push(h('dt', {}, 'byte offset'), h('dd', {}, `${info.offset} (${hexAddr(info.offset)})`));
  if (info.expected !== undefined) details.push(h('dt', {}, 'expected'), h('dd', {}, info.expected));
  if (info.found !== undefined) details.push(h('dt', {}, 'found'), h('dd', {}, info.found));
  if (info.code) details.push(h('dt', {}, 'error'), h('dd', {}, `${info.name} ${info.code}`));
  return h('div', { class: 'error-panel', role: 'alert', id: 'error' },
    h('h2', {}, title),
    h('p', { class: 'error-message' }, info.message),
    info.code ? h('p', { class: 'muted' }, 'This file is not a valid .cryo image, or it was damaged after it was written.') : null,
    details.length ? h('dl', {}, details) : null,
    h('p', {}, h('button', { onclick: () => pickFiles(false) }, 'Open another image…'),
      ' ', h('button', { onclick: () => { state.error = null; render(); } }, 'Dismiss')));
}

function welcome(): HTMLElement {
  return h('div', { class: 'welcome', id: 'welcome' },
    h('div', { class: 'drop-target' },
      h('div', { class: 'big' }, '❄'),
      h('h1', {}, 'Open a checkpoint image'),
      h('p', {}, 'Drop a ', h('code', {}, '.cryo'), ' file here, or ', h('button', { class: 'primary', onclick: () => pickFiles(false) }, 'choose a file…')),
      h('p', { class: 'muted' }, 'Drop two images (or choose two files) to compare them.'),
      h('p', { class: 'muted small' }, 'Everything stays in this browser tab: nothing is uploaded. Only the parts of the image on screen are read, so images of many GiB open at once.')));
}

function processDiff(pid: number): ProcessDiff | undefined {
  return state.diff?.processes.find((d) => d.pid === pid);
}

function badge(status: string | undefined): HTMLElement | null {
  if (!status || status === 'same') return null;
  return h('span', { class: `badge badge-${status}` }, status);
}

function treeOrder(image: ImageSummary): { p: ViewProcess; depth: number }[] {
  const pids = new Set(image.processes.map((p) => p.pid));
  const children = new Map<number, ViewProcess[]>();
  const roots: ViewProcess[] = [];
  for (const p of image.processes) {
    if (p.ppid !== null && pids.has(p.ppid) && p.ppid !== p.pid) {
      const list = children.get(p.ppid) ?? [];
      list.push(p);
      children.set(p.ppid, list);
    } else roots.push(p);
  }
  const out: { p: ViewProcess; depth: number }[] = [];
  const walk = (p: ViewProcess, depth: number) => {
    out.push({ p, depth });
    for (const c of children.get(p.pid) ?? []) walk(c, depth + 1);
  };
  roots.forEach((r) => walk(r, 0));
  return out;
}

function treeNav(image: ImageSummary): HTMLElement {
  const removed = state.diff?.processes.filter((d) => d.status === 'removed' && !image.processes.some((p) => p.pid === d.pid)) ?? [];
  return h('nav', { class: 'tree', id: 'tree', 'aria-label': 'process tree' },
    h('div', { class: 'tree-title' }, 'Process tree', h('span', { class: 'muted' }, ` ${image.processes.length}`)),
    h('ul', { role: 'tree' }, treeOrder(image).map(({ p, depth }) =>
      h('li', {
        role: 'treeitem', class: `tree-item${p.pid === state.pid ? ' selected' : ''}`, 'data-pid': p.pid,
        style: `padding-left:${0.6 + depth * 1.1}rem`, 'aria-selected': p.pid === state.pid ? 'true' : 'false',
        onclick: () => navigate({ pid: p.pid, view: state.view === 'processes' ? 'overview' : state.view }),
      },
      depth ? h('span', { class: 'branch' }, '└ ') : null,
      h('span', { class: 'pid' }, String(p.pid)), ' ', h('span', { class: 'comm' }, p.comm ?? '?'), ' ',
      h('span', { class: `state state-${p.state}`, title: stateName(p.state) }, p.state ?? '?'),
      badge(processDiff(p.pid)?.status)))),
    removed.length ? h('div', { class: 'muted small' }, 'Only in A: ', removed.map((d) => `${d.pid} `)) : null);
}

function tabs(): HTMLElement {
  return h('div', { class: 'tabs', role: 'tablist' }, VIEWS.filter((v) => v.name !== 'diff' || state.images[1]).map((v, i) =>
    h('a', {
      role: 'tab', class: `tab${state.view === v.name ? ' active' : ''}`, href: linkTo({ view: v.name }), 'data-view': v.name,
      'aria-selected': state.view === v.name ? 'true' : 'false',
    }, h('kbd', {}, String(i + 1)), ' ', v.label)));
}

function renderView(): void {
  const view = document.getElementById('view');
  if (!view) return;
  const p = proc();
  const image = current()!;
  switch (state.view) {
    case 'processes': view.append(processesView(image)); break;
    case 'overview': view.append(p ? overviewView(image, p) : noProcess()); break;
    case 'threads': view.append(p ? threadsView(p) : noProcess()); break;
    case 'memory': view.append(p ? memoryView(p) : noProcess()); break;
    case 'files': view.append(p ? filesView(p) : noProcess()); break;
    case 'env': view.append(p ? envView(p) : noProcess()); break;
    case 'hex': view.append(p ? hexView(p) : noProcess()); break;
    case 'diff': view.append(diffView()); break;
  }
}

function noProcess(): HTMLElement {
  return h('p', { class: 'muted' }, 'Choose a process in the tree.');
}

function mapped(p: ViewProcess): number {
  return p.vmas.reduce((n, v) => n + Number(v.end - v.start), 0);
}

function stored(p: ViewProcess): number {
  return p.vmas.reduce((n, v) => n + v.pagesStored * 4096, 0);
}

function processesView(image: ImageSummary): HTMLElement {
  const rows = treeOrder(image).map(({ p, depth }) => [
    h('a', { href: linkTo({ pid: p.pid, view: 'overview' }), class: 'pid' }, String(p.pid)),
    p.ppid ?? '—',
    h('span', { style: `padding-left:${depth}em` }, depth ? '└ ' : '', h('b', {}, p.comm ?? '?')),
    h('span', { title: stateName(p.state) }, stateName(p.state)),
    p.threads.length, p.fds.length, humanBytes(mapped(p)), humanBytes(stored(p)),
    h('code', { class: 'cmdline' }, p.cmdline.join(' ')),
    state.diff ? badge(processDiff(p.pid)?.status) : null,
  ]);
  return h('div', {},
    h('div', { class: 'cards' },
      card('Image', image.name, `${humanBytes(image.size)} · format ${image.version.major}.${image.version.minor} · ${image.sectionCount} sections${image.packed ? ' · packed' : ''}`),
      card('Dumped', formatDate(image.createdAt), image.tool ?? ''),
      card('Host', image.host?.hostname ?? '—', `${image.host?.machine ?? ''} · Linux ${image.host?.kernel ?? '?'}`),
      card('Processes', String(image.processes.length), `root ${image.rootPid ?? '—'}`)),
    table(['PID', 'PPID', 'command', 'state', 'threads', 'fds', 'mapped', 'stored', 'command line', state.diff ? 'diff' : ''], rows,
      { class: 'grid processes', id: 'process-table' }));
}

function card(title: string, value: string, sub: string): HTMLElement {
  return h('div', { class: 'card' }, h('div', { class: 'card-title' }, title), h('div', { class: 'card-value' }, value), h('div', { class: 'muted small' }, sub));
}

function kv(pairs: [string, Child][]): HTMLElement {
  return h('dl', { class: 'kv' }, pairs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function overviewView(image: ImageSummary, p: ViewProcess): HTMLElement {
  const c = p.creds;
  const d = processDiff(p.pid);
  return h('div', {},
    h('h2', {}, `${p.comm ?? '?'} `, h('span', { class: 'muted' }, `pid ${p.pid}`), ' ', badge(d?.status)),
    h('div', { class: 'cards' },
      card('State', stateName(p.state), `${plural(p.threads.length, 'thread')}`),
      card('Memory', humanBytes(mapped(p)), `${humanBytes(stored(p))} stored in ${plural(p.vmas.length, 'VMA')}`),
      card('Files', String(p.fds.length), 'open descriptors'),
      card('Image', image.name, humanBytes(image.size))),
    kv([
      ['pid / ppid', `${p.pid} / ${p.ppid ?? '—'}`],
      ['pgid / sid', `${p.pgid ?? '—'} / ${p.sid ?? '—'}`],
      ['command line', h('code', {}, p.cmdline.map((a) => (/[\s'"]/.test(a) ? JSON.stringify(a) : a)).join(' '))],
      ['executable', h('code', {}, p.exe ?? '—')],
      ['cwd', h('code', {}, p.cwd ?? '—')],
      ['root', h('code', {}, p.root ?? '—')],
      ['umask', p.umask === null ? '—' : '0' + p.umask.toString(8).padStart(3, '0')],
      ['uid (r e s fs)', c ? c.uid.join(' ') : '—'],
      ['gid (r e s fs)', c ? c.gid.join(' ') : '—'],
      ['groups', c ? c.groups.join(' ') || '—' : '—'],
      ['capabilities (eff)', c ? hex64(c.capEff) : '—'],
      ['seccomp', c?.seccomp ?? '—'],
      ['brk', p.mm ? `${hexAddr(p.mm.startBrk)} – ${hexAddr(p.mm.brk)}` : '—'],
    ]),
    d && d.fields.length ? h('div', {}, h('h3', {}, 'Changed since A'), changesTable(d.fields)) : null);
}

function vmaAt(p: ViewProcess, a: bigint): number {
  return p.vmas.findIndex((v) => a >= v.start && a < v.end);
}

function addrLink(p: ViewProcess, value: bigint | null, text?: string): Child {
  if (value === null) return '—';
  const label = text ?? hex64(value);
  if (vmaAt(p, value) < 0) return label;
  return h('a', { href: linkTo({ view: 'hex', addr: value }), class: 'addr', title: 'show in the hex view' }, label);
}

function threadsView(p: ViewProcess): HTMLElement {
  const d = processDiff(p.pid);
  return h('div', {},
    h('h2', {}, plural(p.threads.length, 'thread')),
    p.threads.map((t) => {
      const td = d?.threads.find((x) => x.tid === t.tid);
      return h('div', { class: 'thread', 'data-tid': t.tid },
        h('h3', {}, `${t.tid} `, h('span', { class: 'muted' }, t.comm ?? ''), ' ', h('span', { class: 'muted' }, stateName(t.state)), ' ', badge(td?.status)),
        kv([
          ['syscall restart', t.restart ?? '—'],
          ['fs_base / gs_base', h('span', {}, addrLink(p, t.fsBase), ' / ', addrLink(p, t.gsBase))],
          ['blocked signals', hex64(t.sigmask)],
          ['pending signals', String(t.pendingCount)],
          ['xstate', `${t.xstateBytes} bytes`],
        ]),
        t.registers
          ? h('div', { class: 'regs' }, REGISTER_NAMES.map((name) => {
            const value = t.registers![name];
            return h('div', { class: 'reg' }, h('span', { class: 'reg-name' }, name), addrLink(p, value));
          }))
          : h('p', { class: 'muted' }, 'no registers recorded'),
        td && td.changes.length ? changesTable(td.changes) : null);
    }));
}

function filesView(p: ViewProcess): HTMLElement {
  const d = processDiff(p.pid);
  const rows = p.fds.map((f) => {
    const fdd = d?.fds.find((x) => x.fd === f.fd);
    const detail: string[] = [];
    const blob = f.pipe?.dataBlob ?? f.contentBlob;
    const blobButton = blob !== null && blob !== undefined
      ? h('button', { class: 'small-button', 'data-blob': blob, onclick: () => showBlob(f.fd, blob, f.pipe ? 'waiting in the pipe' : 'content of the deleted file') }, 'show bytes')
      : null;
    if (f.pipe?.dataLength) detail.push(`${humanBytes(f.pipe.dataLength)} waiting in the pipe`);
    if (f.socket) detail.push([f.socket.family, f.socket.type, f.socket.state, f.socket.local, f.socket.peer && `→ ${f.socket.peer}`].filter(Boolean).join(' '));
    if (f.deleted) detail.push('deleted');
    return [
      h('b', {}, String(f.fd)), f.type ?? '?', h('code', { class: 'path' }, f.path ?? '—'),
      f.flags === null ? '—' : h('span', { title: `0${f.flags.toString(8)}` }, openFlagNames(f.flags)),
      f.cloexec ? 'yes' : 'no', f.pos === null ? '—' : f.pos.toLocaleString('en-US'),
      f.size === null ? '—' : humanBytes(f.size), h('span', {}, detail.join('; '), blobButton ? ' ' : null, blobButton),
      fdd ? h('span', {}, badge(fdd.status), ' ', fdd.changes.map((c) => `${c.field}: ${c.before} → ${c.after}`).join('; ')) : '',
    ];
  });
  const gone = d?.fds.filter((x) => x.status === 'removed') ?? [];
  return h('div', {},
    h('h2', {}, plural(p.fds.length, 'file descriptor')),
    table(['fd', 'type', 'path', 'flags', 'cloexec', 'offset', 'size', 'details', d ? 'diff' : ''], rows, { class: 'grid fds', id: 'fd-table' }),
    gone.length ? h('p', { class: 'muted' }, 'Closed since A: ', gone.map((g) => `fd ${g.fd} `)) : null,
    h('div', { id: 'blob-view' }));
}

const BLOB_SHOWN = 64 * 1024;

async function showBlob(fd: number, id: number, what: string): Promise<void> {
  const el = document.getElementById('blob-view');
  if (!el) return;
  el.replaceChildren(h('p', { class: 'muted' }, 'reading…'));
  try {
    const { bytes, length } = await client.call<{ bytes: Uint8Array; length: number }>({ op: 'blob', slot: state.side, blob: id, max: BLOB_SHOWN });
    const lines: string[] = [];
    for (let at = 0; at < bytes.length; at += 16) {
      const row = bytes.subarray(at, at + 16);
      const hexPart = [...row].map((b) => b.toString(16).padStart(2, '0')).join(' ').padEnd(47, ' ');
      const text = [...row].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
      lines.push(`${at.toString(16).padStart(8, '0')}  ${hexPart}  ${text}`);
    }
    el.replaceChildren(h('h3', {}, `fd ${fd}: ${humanBytes(length)} ${what}`, length > bytes.length ? h('span', { class: 'muted' }, ` (first ${humanBytes(bytes.length)})`) : null),
      h('pre', { class: 'hexdump blob', id: 'blob-bytes' }, lines.join('\n')));
  } catch (error) {
    el.replaceChildren(h('p', { class: 'error-message' }, (error as Error).message));
  }
}

function envView(p: ViewProcess): HTMLElement {
  return h('div', {},
    h('h2', {}, 'Command line'),
    h('ol', { class: 'argv', start: 0 }, p.cmdline.map((a) => h('li', {}, h('code', {}, a)))),
    h('h2', {}, `Environment `, h('span', { class: 'muted' }, `${p.environ.length} entries — may hold secrets`)),
    table(['name', 'value'], p.environ.map((e) => {
      const i = e.indexOf('=');
      return [h('code', {}, i < 0 ? e : e.slice(0, i)), h('code', { class: 'wrap' }, i < 0 ? '' : e.slice(i + 1))];
    }), { class: 'grid env' }));
}

function changesTable(changes: { field: string; before: string; after: string }[]): HTMLElement {
  return table(['field', 'in A', 'in B'], changes.map((c) => [c.field, h('code', { class: 'before' }, c.before), h('code', { class: 'after' }, c.after)]), { class: 'grid changes' });
}

// ---- memory map picture --------------------------------------------------------------------------

const PICTURE_WIDTH = 168;
/** Blocks drawn at most (one canvas each); a process with more VMAs lists them all in the table. */
const PICTURE_MAX_VMAS = 1000;
/** VMA table rows listed before a "List all" button. */
const TABLE_MAX_ROWS = 2000;
const CELL = 4;

function blockHeight(v: ViewVma): number {
  const pages = Number((v.end - v.start) / PAGE);
  return Math.round(Math.min(192, Math.max(16, 14 + 9 * Math.log2(Math.max(1, pages)))) / CELL) * CELL;
}

function memoryView(p: ViewProcess): HTMLElement {
  const totals = { mapped: 0, stored: 0, zero: 0, dedup: 0 };
  const byClass = new Map<string, { mapped: number; stored: number; zero: number; dedup: number; count: number }>();
  for (const v of p.vmas) {
    const size = Number(v.end - v.start);
    totals.mapped += size;
    totals.stored += v.pagesStored * 4096;
    totals.zero += v.zeroPages * 4096;
    totals.dedup += v.dedupPages * 4096;
    const c = vmaClass(v);
    const t = byClass.get(c) ?? { mapped: 0, stored: 0, zero: 0, dedup: 0, count: 0 };
    t.mapped += size;
    t.stored += v.pagesStored * 4096;
    t.zero += v.zeroPages * 4096;
    t.dedup += v.dedupPages * 4096;
    t.count++;
    byClass.set(c, t);
  }
  const classOrder = Object.keys(CLASS_LABELS).filter((c) => byClass.has(c));
  const d = processDiff(p.pid);
  const picture = h('div', { class: 'picture', id: 'memory-picture', 'aria-label': 'memory map' });
  const canvases: HTMLCanvasElement[] = [];
  const cells: number[] = [];
  p.vmas.forEach((v, i) => {
    if (i >= PICTURE_MAX_VMAS) return;
    const prev = p.vmas[i - 1];
    if (prev && v.start > prev.end) {
      picture.append(h('div', { class: 'gap', title: `unmapped: ${humanBytes(Number(v.start - prev.end))}` }, `⋯ ${humanBytes(Number(v.start - prev.end))} unmapped`));
    }
    const height = blockHeight(v);
    const canvas = h('canvas', { width: PICTURE_WIDTH, height, class: 'cells' }) as HTMLCanvasElement;
    canvases.push(canvas);
    cells.push((PICTURE_WIDTH / CELL) * (height / CELL));
    const cls = vmaClass(v);
    const size = Number(v.end - v.start);
    picture.append(h('div', {
      class: `block k-${cls}${height >= 32 ? ' tall' : ''}${state.vma === i ? ' selected' : ''}`, 'data-vma': i, style: `height:${height}px`,
      title: `${hexAddr(v.start)}–${hexAddr(v.end)} ${protString(v.prot, v.shared)} ${v.name || '(anonymous)'}\n${humanBytes(size)}: ${humanBytes(v.pagesStored * 4096)} stored, ${humanBytes(v.zeroPages * 4096)} zero, ${humanBytes(v.dedupPages * 4096)} deduplicated`,
      onclick: () => selectVma(i),
      ondblclick: () => navigate({ view: 'hex', addr: v.start }),
    }, canvas, h('div', { class: 'block-label' },
      h('span', { class: 'block-name' }, shortName(v)), h('span', { class: 'block-size' }, humanBytes(size)))));
  });
  if (p.vmas.length > PICTURE_MAX_VMAS) {
    picture.append(h('div', { class: 'gap' }, `the first ${PICTURE_MAX_VMAS.toLocaleString('en-US')} of ${plural(p.vmas.length, 'VMA')} are drawn; the table lists all`));
  }
  void paintCells(p, canvases, cells);
  const shownRows = state.allVmas === p.pid ? p.vmas.length : Math.min(p.vmas.length, TABLE_MAX_ROWS);
  const rows = p.vmas.slice(0, shownRows).map((v, i) => {
    const vd = d?.vmas.find((x) => x.start === v.start);
    return h('tr', { class: `${state.vma === i ? 'selected' : ''}`, 'data-vma': i, onclick: () => selectVma(i), ondblclick: () => navigate({ view: 'hex', addr: v.start }) },
      h('td', {}, h('span', { class: `swatch k-${vmaClass(v)}` }), ' ', h('a', { href: linkTo({ view: 'hex', addr: v.start }), class: 'addr' }, hexAddr(v.start))),
      h('td', {}, hexAddr(v.end)), h('td', { class: 'num' }, humanBytes(Number(v.end - v.start))),
      h('td', {}, h('code', {}, protString(v.prot, v.shared))), h('td', {}, v.kind ?? '?'),
      h('td', { class: 'num' }, v.pagesStored ? humanBytes(v.pagesStored * 4096) : '—'),
      h('td', { class: 'num' }, v.zeroPages ? humanBytes(v.zeroPages * 4096) : '—'),
      h('td', { class: 'num' }, v.dedupPages ? humanBytes(v.dedupPages * 4096) : '—'),
      h('td', {}, h('code', { class: 'path' }, v.name || '')),
      d ? h('td', {}, badge(vd?.status), changedPagesIn(d, v)) : null);
  });
  return h('div', {},
    h('div', { class: 'memory-summary' }, h('div', { class: 'cards cards-grid' },
      card('Mapped', humanBytes(totals.mapped), plural(p.vmas.length, 'VMA')),
      card('Stored', humanBytes(totals.stored), 'page data in the image'),
      card('Zero', humanBytes(totals.zero), 'recorded as zero pages'),
      card('Deduplicated', humanBytes(totals.dedup), 'stored once, used twice'),
      d ? card('Changed', plural(d.changedPageCount, 'page'), `of ${plural(d.comparedPages, 'page')} compared`) : null),
    h('table', { class: 'grid kinds', id: 'kind-table' },
      h('thead', {}, h('tr', {}, ['kind', 'VMAs', 'mapped', 'stored', 'zero', 'deduplicated'].map((x) => h('th', {}, x)))),
      h('tbody', {}, classOrder.map((c) => {
        const t = byClass.get(c)!;
        const share = t.mapped ? Math.round((100 * t.stored) / t.mapped) : 0;
        return h('tr', {}, h('td', {}, h('span', { class: `swatch k-${c}` }), ' ', CLASS_LABELS[c] ?? c), h('td', { class: 'num' }, String(t.count)),
          h('td', { class: 'num' }, humanBytes(t.mapped)),
          h('td', { class: 'num' }, t.stored ? `${humanBytes(t.stored)} (${share}%)` : '—'),
          h('td', { class: 'num' }, t.zero ? humanBytes(t.zero) : '—'), h('td', { class: 'num' }, t.dedup ? humanBytes(t.dedup) : '—'));
      })))),
    h('div', { class: 'legend' },
      h('span', { class: 'muted' }, 'Picture: each VMA a block, height on a log scale, unmapped gaps marked; each cell a slice of its pages:'),
      h('span', { class: 'legend-item' }, h('span', { class: 'swatch cell-data' }), 'stored'),
      h('span', { class: 'legend-item' }, h('span', { class: 'swatch cell-dedup' }), 'deduplicated'),
      h('span', { class: 'legend-item' }, h('span', { class: 'swatch cell-zero' }), 'zero'),
      h('span', { class: 'legend-item' }, h('span', { class: 'swatch cell-none' }), 'not stored'),
      d ? h('span', { class: 'legend-item' }, h('span', { class: 'swatch cell-changed' }), 'changed') : null),
    h('div', { class: 'memory-layout' }, picture,
      h('div', { class: 'vma-table-wrap' }, h('table', { class: 'grid vmas', id: 'vma-table' },
        h('thead', {}, h('tr', {}, ['start', 'end', 'size', 'prot', 'kind', 'stored', 'zero', 'dedup', 'name', d ? 'diff' : null].map((x) => (x === null ? null : h('th', {}, x))))),
        h('tbody', {}, rows)),
        shownRows < p.vmas.length ? h('p', {}, `${shownRows.toLocaleString('en-US')} of ${plural(p.vmas.length, 'VMA')} listed. `,
          h('button', { onclick: () => { state.allVmas = p.pid; render(); } }, 'List all')) : null)));
}

function changedPagesIn(d: ProcessDiff, v: ViewVma): Child {
  let n = 0;
  for (const a of d.changedPages) if (a >= v.start && a < v.end) n++;
  return n ? h('span', { class: 'changed-count' }, ` ${plural(n, 'page')} changed`) : null;
}

function shortName(v: ViewVma): string {
  if (!v.name) return v.shared ? '[shared anon]' : '[anon]';
  const slash = v.name.lastIndexOf('/');
  return slash >= 0 && !v.name.startsWith('[') ? v.name.slice(slash + 1) : v.name;
}

function selectVma(i: number): void {
  state.vma = i;
  document.querySelectorAll('[data-vma]').forEach((el) => el.classList.toggle('selected', Number((el as HTMLElement).dataset.vma) === i));
  document.querySelector(`#vma-table tr[data-vma="${i}"]`)?.scrollIntoView({ block: 'nearest' });
  document.querySelector(`#memory-picture .block[data-vma="${i}"]`)?.scrollIntoView({ block: 'nearest' });
}

/** '#rrggbb' (or any colour the canvas understands) as [r, g, b]. */
function rgb(ctx: CanvasRenderingContext2D, color: string): [number, number, number] {
  ctx.fillStyle = '#000';
  ctx.fillStyle = color; // normalised to #rrggbb by the canvas
  const hex = String(ctx.fillStyle);
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m ? [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)] : [136, 136, 136];
}

/** Alpha of a cell by its state: stored pages solid, zero and not-stored ones faint. */
const CELL_ALPHA: Record<number, number> = {
  [CELL_DATA]: 242, [CELL_DEDUP]: 153, [CELL_PARENT]: 115, [CELL_ZERO]: 82, 0: 26,
};

async function paintCells(p: ViewProcess, canvases: HTMLCanvasElement[], cells: number[]): Promise<void> {
  const side = state.side;
  const rasters = await client.call<Uint8Array[]>({ op: 'raster', slot: side, pid: p.pid, cells, diff: !!state.diff });
  const style = getComputedStyle(document.body);
  const cols = PICTURE_WIDTH / CELL;
  let changed: [number, number, number] | null = null;
  const colours = new Map<string, [number, number, number]>();
  canvases.forEach((canvas, i) => {
    const raster = rasters[i];
    const v = p.vmas[i];
    const ctx = canvas.getContext('2d');
    if (!raster || !v || !ctx) return;
    changed ??= rgb(ctx, style.getPropertyValue('--changed').trim() || '#e11d48');
    const cls = vmaClass(v);
    let colour = colours.get(cls);
    if (!colour) {
      colour = rgb(ctx, style.getPropertyValue(`--k-${cls}`).trim() || '#888');
      colours.set(cls, colour);
    }
    // One ImageData per block, CELL×CELL pixels per cell (a zero cell leaves a 1-pixel seam).
    const image = ctx.createImageData(canvas.width, canvas.height);
    const px = image.data;
    for (let c = 0; c < raster.length; c++) {
      const code = raster[c]!;
      const isChanged = (code & CELL_CHANGED) !== 0;
      const base = code & ~CELL_CHANGED;
      const [r, g, b] = isChanged ? changed : colour;
      const a = isChanged ? 255 : CELL_ALPHA[base] ?? 26;
      const size = !isChanged && base === CELL_ZERO ? CELL - 1 : CELL;
      const x0 = (c % cols) * CELL;
      const y0 = Math.floor(c / cols) * CELL;
      for (let y = y0; y < y0 + size && y < canvas.height; y++) {
        let at = (y * canvas.width + x0) * 4;
        for (let x = 0; x < size; x++, at += 4) {
          px[at] = r;
          px[at + 1] = g;
          px[at + 2] = b;
          px[at + 3] = a;
        }
      }
    }
    ctx.putImageData(image, 0, 0);
  });
  document.body.dataset.picture = String(p.pid);
}

// ---- hex view and search -------------------------------------------------------------------------

function hexView(p: ViewProcess): HTMLElement {
  if (state.addr === null) {
    const heap = p.vmas.find((v) => v.kind === 'heap') ?? p.vmas.find((v) => v.pagesStored > 0) ?? p.vmas[0];
    state.addr = heap?.start ?? 0n;
    writeHash();
  }
  const s = state.search && state.search.pid === p.pid ? state.search : null;
  const addrInput = h('input', { id: 'addr-input', value: hexAddr(state.addr), spellcheck: 'false', 'aria-label': 'address' }) as HTMLInputElement;
  const searchInput = h('input', { id: 'search-input', value: s?.query ?? '', placeholder: 'text, or hex bytes like de ad be ef', spellcheck: 'false', 'aria-label': 'search' }) as HTMLInputElement;
  const mode = h('select', { id: 'search-mode', 'aria-label': 'search mode' },
    h('option', { value: 'text', selected: (s?.mode ?? 'text') === 'text' }, 'text'),
    h('option', { value: 'hex', selected: s?.mode === 'hex' }, 'hex bytes')) as HTMLSelectElement;
  const go = (): void => {
    const a = parseAddress(addrInput.value);
    if (a === null) { addrInput.classList.add('invalid'); return; }
    state.selection = null;
    navigate({ addr: a });
  };
  addrInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
  searchInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') startSearch(p, searchInput.value, mode.value as 'text' | 'hex'); });
  const dump = h('div', { class: 'hexdump', id: 'hexdump', tabindex: 0 }, h('div', { class: 'muted' }, 'reading…'));
  void fillHex(p, dump);
  const vi = vmaAt(p, state.addr);
  const v = p.vmas[vi];
  return h('div', { class: 'hex-layout' },
    h('div', { class: 'hex-main' },
      h('div', { class: 'toolbar' },
        h('label', {}, 'Address ', addrInput), h('button', { onclick: go }, 'Go'),
        h('button', { onclick: () => navigate({ addr: clampAddr(state.addr! - BigInt(HEX_BYTES)) }), title: 'PageUp' }, '↑'),
        h('button', { onclick: () => navigate({ addr: state.addr! + BigInt(HEX_BYTES) }), title: 'PageDown' }, '↓')),
      h('div', { class: 'where muted' }, v
        ? [h('span', { class: `swatch k-${vmaClass(v)}` }), ` in ${v.name || '[anonymous]'} ${protString(v.prot, v.shared)} ${hexAddr(v.start)}–${hexAddr(v.end)}, offset ${hexAddr(state.addr - v.start)}`]
        : 'not in any mapping'),
      dump),
    h('aside', { class: 'search' },
      h('div', { class: 'toolbar' }, searchInput, mode,
        s?.running ? h('button', { onclick: () => client.cancel(s.running!) }, 'Stop') : h('button', { id: 'search-button', onclick: () => startSearch(p, searchInput.value, mode.value as 'text' | 'hex') }, 'Search')),
      h('div', { id: 'search-results' }, searchResults(p, s))));
}

function clampAddr(a: bigint): bigint {
  return a < 0n ? 0n : a;
}

function searchResults(p: ViewProcess, s: SearchState | null): Child {
  if (!s) return h('p', { class: 'muted small' }, 'Searches every page this process has in the image, in the worker, a chunk at a time.');
  if (s.error) return h('p', { class: 'error-message' }, s.error);
  const pr = s.progress;
  const pct = pr && pr.total ? Math.round((100 * pr.scanned) / pr.total) : 0;
  return [
    h('div', { class: 'progress' }, h('div', { class: 'bar', style: `width:${s.running ? pct : 100}%` })),
    h('p', { class: 'small', id: 'search-summary' }, s.running ? `searching… ${pct}% of ${humanBytes(pr?.total ?? 0)}` :
      `${plural(pr?.hits.length ?? 0, 'match')} in ${humanBytes(pr?.scanned ?? 0)} of stored memory`),
    h('ol', { class: 'hits' }, (pr?.hits ?? []).slice(0, 500).map((hit) => {
      const v = p.vmas[hit.vma];
      return h('li', {}, h('a', { href: linkTo({ view: 'hex', addr: hit.address }), class: `addr hit${state.addr === hit.address ? ' current' : ''}`, 'data-addr': hexAddr(hit.address) }, hexAddr(hit.address)),
        ' ', h('span', { class: 'muted small' }, v ? shortName(v) : ''));
    })),
  ];
}

function startSearch(p: ViewProcess, query: string, mode: 'text' | 'hex'): void {
  const pattern = mode === 'hex' ? parseHexBytes(query) : new TextEncoder().encode(query);
  const s: SearchState = { query, mode, running: null, progress: null, patternLength: pattern?.length ?? 0, error: null, pid: p.pid };
  if (state.search?.running) client.cancel(state.search.running);
  state.search = s;
  if (!pattern || pattern.length === 0) {
    s.error = mode === 'hex' ? 'Type hex bytes, like "de ad be ef".' : 'Type something to search for.';
    render();
    return;
  }
  const refresh = (): void => {
    const el = document.getElementById('search-results');
    if (el && state.search === s && state.view === 'hex') el.replaceChildren(...flat(searchResults(p, s)));
  };
  void client.call<SearchProgress>({ op: 'search', slot: state.side, pid: p.pid, pattern, maxHits: 10_000 },
    (pr) => { s.progress = pr as SearchProgress; refresh(); },
    (id) => { s.running = id; }).then((result) => {
    s.progress = result;
    s.running = null;
    const first = result.hits[0];
    if (first && state.search === s) {
      state.selection = { start: first.address, length: pattern.length };
      navigate({ view: 'hex', addr: first.address });
    } else render();
    document.body.dataset.search = 'done';
  }, (error: Error) => {
    s.running = null;
    s.error = error.message;
    render();
  });
  render();
}

function flat(c: Child): Node[] {
  const holder = document.createElement('div');
  append(holder, [c]);
  return [...holder.childNodes];
}

async function fillHex(p: ViewProcess, dump: HTMLElement): Promise<void> {
  const start = (state.addr! / 16n) * 16n;
  const side = state.side;
  let result: MemoryResult;
  let other: MemoryResult | null = null;
  try {
    result = await client.call<MemoryResult>({ op: 'read', slot: side, pid: p.pid, address: start, length: HEX_BYTES });
    const otherSlot = side ? 0 : 1;
    if (state.images[otherSlot]?.processes.some((x) => x.pid === p.pid)) {
      other = await client.call<MemoryResult>({ op: 'read', slot: otherSlot, pid: p.pid, address: start, length: HEX_BYTES });
    }
  } catch (error) {
    dump.replaceChildren(h('p', { class: 'error-message' }, (error as Error).message));
    return;
  }
  const sel = state.selection;
  const rows: Node[] = [];
  for (let r = 0; r < HEX_ROWS; r++) {
    const rowAddr = start + BigInt(r * 16);
    const hexCells: Node[] = [];
    const ascii: Node[] = [];
    for (let i = 0; i < 16; i++) {
      const at = r * 16 + i;
      const a = rowAddr + BigInt(i);
      const pageState = result.pageStates[Number(a / PAGE - result.firstPage / PAGE)] ?? 0;
      const byte = result.bytes[at]!;
      const classes: string[] = [];
      if (pageState === 0) classes.push('ns');
      else if (pageState === CELL_ZERO) classes.push('zp');
      else if (byte === 0) classes.push('z');
      if (sel && a >= sel.start && a < sel.start + BigInt(sel.length)) classes.push('sel');
      if (other && other.bytes[at] !== byte) classes.push('diff');
      if (a === state.addr) classes.push('cursor');
      const cls = classes.join(' ');
      hexCells.push(h('span', { class: cls, 'data-i': at }, pageState === 0 ? '··' : byte.toString(16).padStart(2, '0')));
      if (i === 7) hexCells.push(document.createTextNode(' '));
      ascii.push(h('span', { class: cls, 'data-i': at }, pageState === 0 ? '·' : byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '.'));
    }
    rows.push(h('div', { class: 'hexrow' }, h('span', { class: 'hexaddr' }, rowAddr.toString(16).padStart(12, '0')),
      h('span', { class: 'hexbytes' }, hexCells), h('span', { class: 'hexascii' }, ascii)));
  }
  const notStored = [...result.pageStates].some((x) => x === 0);
  const inspector = h('div', { class: 'inspector', id: 'inspector' });
  const inspect = (i: number): void => {
    dump.querySelectorAll('.cursor').forEach((el) => el.classList.remove('cursor'));
    dump.querySelectorAll(`[data-i="${i}"]`).forEach((el) => el.classList.add('cursor'));
    inspector.replaceChildren(...flat(inspectBytes(p, start + BigInt(i), result.bytes.subarray(i, i + 8))));
  };
  dump.addEventListener('click', (e) => {
    const el = (e.target as HTMLElement).closest('[data-i]') as HTMLElement | null;
    if (!el) return;
    const i = Number(el.dataset.i);
    inspect(i);
    const input = document.getElementById('addr-input') as HTMLInputElement | null;
    if (input) input.value = hexAddr(start + BigInt(i));
  });
  dump.replaceChildren(...rows, inspector, notStored ? h('p', { class: 'muted small' }, '·· = not stored in the image (file-backed or never touched)') : '',
    other ? h('p', { class: 'muted small' }, h('span', { class: 'diff' }, 'xx'), ` = differs from ${side ? 'A' : 'B'}`) : '');
  dump.dataset.addr = hexAddr(start);
  inspect(Number(state.addr! - start));
}

/** The values at the cursor: integers of 1 to 8 bytes (little-endian), and where a pointer points. */
function inspectBytes(p: ViewProcess, address: bigint, bytes: Uint8Array): Child {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Child[] = [h('b', {}, hexAddr(address)), ' '];
  if (bytes.length >= 1) parts.push(h('span', {}, `u8 ${bytes[0]}`));
  if (bytes.length >= 2) parts.push(h('span', {}, `u16 ${view.getUint16(0, true)}`));
  if (bytes.length >= 4) parts.push(h('span', {}, `u32 ${view.getUint32(0, true)} · i32 ${view.getInt32(0, true)}`));
  if (bytes.length >= 8) {
    const u64 = view.getBigUint64(0, true);
    parts.push(h('span', {}, `u64 ${hexAddr(u64)}`));
    const vi = vmaAt(p, u64);
    if (vi >= 0) {
      const v = p.vmas[vi]!;
      parts.push(h('span', {}, 'pointer → ', h('a', { href: linkTo({ view: 'hex', addr: u64 }), class: 'addr' }, `${v.name || '[anon]'} +${hexAddr(u64 - v.start)}`)));
    } else {
      parts.push(h('span', {}, `f64 ${view.getFloat64(0, true).toPrecision(6)}`));
    }
  }
  return parts;
}

// ---- diff ----------------------------------------------------------------------------------------

function renderDiffProgress(): void {
  const el = document.getElementById('diff-progress');
  const pr = state.diffProgress;
  if (el && pr) el.textContent = `comparing pages… ${pr.total ? Math.round((100 * pr.done) / pr.total) : 0}% (${plural(pr.done, 'page')} of ${pr.total.toLocaleString('en-US')})`;
}

function diffView(): HTMLElement {
  const [a, b] = state.images;
  if (!a || !b) return h('p', {}, 'Open a second image to compare.');
  if (state.diffError) return h('p', { class: 'error-message' }, state.diffError);
  if (!state.diff) {
    const el = h('div', { class: 'loading' }, h('div', { class: 'spinner' }), h('span', { id: 'diff-progress' }, 'comparing…'));
    queueMicrotask(renderDiffProgress);
    return el;
  }
  const d = state.diff;
  const rows = d.processes.map((x) => [
    h('a', { href: linkTo({ pid: x.pid, view: 'memory', side: 1 }) }, String(x.pid)),
    (b.processes.find((p) => p.pid === x.pid) ?? a.processes.find((p) => p.pid === x.pid))?.comm ?? '?',
    badge(x.status) ?? 'same',
    x.fields.map((f) => `${f.field}: ${f.before} → ${f.after}`).join('; ') || '—',
    x.fds.length ? h('a', { href: linkTo({ pid: x.pid, view: 'files', side: 1 }) }, x.fds.map((f) => `fd ${f.fd} ${f.status}${f.changes.length ? ' (' + f.changes.map((c) => `${c.field} ${c.before} → ${c.after}`).join(', ') + ')' : ''}`).join('; ')) : '—',
    x.threads.length ? h('a', { href: linkTo({ pid: x.pid, view: 'threads', side: 1 }) }, x.threads.map((t) => `${t.tid} ${t.status}${t.changes.length ? ` (${t.changes.slice(0, 6).map((c) => c.field).join(', ')}${t.changes.length > 6 ? ', …' : ''})` : ''}`).join('; ')) : '—',
    x.vmas.length ? `${x.vmas.filter((v) => v.status === 'added').length} added, ${x.vmas.filter((v) => v.status === 'removed').length} removed, ${x.vmas.filter((v) => v.status === 'changed').length} changed` : '—',
    h('span', { class: x.changedPageCount ? 'changed-count' : '' }, `${x.changedPageCount.toLocaleString('en-US')} of ${x.comparedPages.toLocaleString('en-US')}`),
    x.addedPages || x.removedPages ? `+${x.addedPages.toLocaleString('en-US')} / −${x.removedPages.toLocaleString('en-US')}` : '—',
  ]);
  const p = proc();
  const pd = p ? processDiff(p.pid) : undefined;
  return h('div', {},
    h('h2', {}, `${a.name} → ${b.name}`),
    h('p', { class: 'muted small' }, `compared with ${d.engine}(): metadata field by field, memory page by page (pages both images store).`),
    table(['pid', 'command', 'status', 'fields', 'descriptors', 'threads', 'VMAs', 'changed pages', 'pages only in B / A'], rows, { class: 'grid', id: 'diff-table' }),
    pd && pd.vmas.length ? h('div', {}, h('h3', {}, `VMA changes in ${pd.pid}`),
      table(['start', 'end', 'name', 'status', 'changes'], pd.vmas.map((v) => [hexAddr(v.start), hexAddr(v.end), v.name, badge(v.status), v.changes.map((c) => `${c.field}: ${c.before} → ${c.after}`).join('; ')]), { class: 'grid' })) : null,
    pd && pd.changedPages.length ? h('div', {}, h('h3', {}, `Changed pages in ${pd.pid}`),
      h('div', { class: 'page-list', id: 'changed-pages' }, pd.changedPages.slice(0, 400).map((a2) => h('a', { href: linkTo({ view: 'hex', addr: a2, side: 1 }), class: 'addr' }, hexAddr(a2)))),
      pd.changedPages.length > 400 ? h('p', { class: 'muted' }, `and ${pd.changedPages.length - 400} more (see the memory picture)`) : null) : null);
}

// ---- keyboard, theme, drag and drop --------------------------------------------------------------

function toggleTheme(): void {
  const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
  document.documentElement.dataset.theme = next;
  try { localStorage.setItem('cryo-theme', next); } catch { /* storage may be off */ }
  render();
}

function toggleHelp(): void {
  const existing = document.getElementById('help');
  if (existing) { existing.remove(); return; }
  document.body.append(h('div', { id: 'help', class: 'help', onclick: (e: Event) => { if (e.target === e.currentTarget) toggleHelp(); } },
    h('div', { class: 'help-card' }, h('h2', {}, 'Keyboard'),
      kv([
        ['1 … 8', 'switch view'], ['j / k, ↓ / ↑', 'next / previous process'], ['o', 'open an image'], ['c', 'compare with a second image'],
        ['g', 'go to an address (hex view)'], ['/', 'search memory'], ['n / N', 'next / previous match'],
        ['PageDown / PageUp', 'scroll the hex view'], ['a / b', 'show image A / B'], ['t', 'light / dark theme'], ['?', 'this help'],
      ]))));
}

document.addEventListener('keydown', (e) => {
  const target = e.target as HTMLElement;
  if (target.tagName === 'INPUT' || target.tagName === 'SELECT' || target.tagName === 'TEXTAREA' || e.ctrlKey || e.metaKey || e.altKey) {
    if (e.key === 'Escape') target.blur();
    return;
  }
  const image = current();
  const visible = VIEWS.filter((v) => v.name !== 'diff' || state.images[1]);
  if (/^[1-8]$/.test(e.key)) {
    const v = visible[Number(e.key) - 1];
    if (v) navigate({ view: v.name });
  } else if ((e.key === 'j' || e.key === 'k' || e.key === 'ArrowDown' || e.key === 'ArrowUp') && image && state.view !== 'hex') {
    const order = treeOrder(image).map((x) => x.p.pid);
    const i = order.indexOf(state.pid ?? -1);
    const next = order[Math.max(0, Math.min(order.length - 1, i + (e.key === 'j' || e.key === 'ArrowDown' ? 1 : -1)))];
    if (next !== undefined) { e.preventDefault(); navigate({ pid: next }); }
  } else if (state.view === 'hex' && state.addr !== null && ['PageDown', 'PageUp', 'ArrowDown', 'ArrowUp'].includes(e.key)) {
    e.preventDefault();
    const step = BigInt(e.key.startsWith('Page') ? HEX_BYTES : 16);
    navigate({ addr: e.key.endsWith('Down') ? state.addr + step : clampAddr(state.addr - step) });
  } else if (e.key === 'o') pickFiles(false);
  else if (e.key === 'c' && state.images[0]) pickFiles(true);
  else if (e.key === 't') toggleTheme();
  else if (e.key === '?') toggleHelp();
  else if (e.key === 'a' && state.images[1]) navigate({ side: 0 });
  else if (e.key === 'b' && state.images[1]) navigate({ side: 1 });
  else if ((e.key === 'g' || e.key === '/') && image) {
    e.preventDefault();
    if (state.view !== 'hex') navigate({ view: 'hex' });
    document.getElementById(e.key === 'g' ? 'addr-input' : 'search-input')?.focus();
  } else if ((e.key === 'n' || e.key === 'N') && state.search?.progress?.hits.length) {
    const hits = state.search.progress.hits;
    const i = hits.findIndex((x) => x.address === state.addr);
    const next = hits[(i + (e.key === 'n' ? 1 : hits.length - 1)) % hits.length]!;
    state.selection = { start: next.address, length: state.search.patternLength };
    navigate({ view: 'hex', addr: next.address });
  } else if (e.key === 'Escape') document.getElementById('help')?.remove();
});

document.addEventListener('dragover', (e) => {
  e.preventDefault();
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', (e) => {
  if (e.relatedTarget === null) document.body.classList.remove('dragging');
});
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  const files = e.dataTransfer?.files;
  if (files && files.length) openFiles(files, e.shiftKey);
});

// ---- start ---------------------------------------------------------------------------------------

function start(): void {
  let theme: string | null = null;
  try { theme = localStorage.getItem('cryo-theme'); } catch { /* ignore */ }
  document.documentElement.dataset.theme = theme ?? (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  document.body.replaceChildren(h('header', { id: 'header' }), h('main', { id: 'main' }), h('footer', { id: 'status' }));
  render();
  // Served by `cryo-img view`: the images to open are listed next to the page.
  const params = new URLSearchParams(location.search);
  if (params.has('serve')) {
    void (async () => {
      try {
        const response = await fetch('images.json', { cache: 'no-store' });
        const list = (await response.json()) as { url: string; name: string }[];
        if (list[0]) await openSource(0, { kind: 'url', url: new URL(list[0].url, location.href).href, name: list[0].name });
        if (list[1] && state.images[0]) await openSource(1, { kind: 'url', url: new URL(list[1].url, location.href).href, name: list[1].name });
      } catch (error) {
        state.error = { title: 'Cannot load the images', info: { name: 'Error', message: (error as Error).message } };
        render();
      }
    })();
  }
  document.body.dataset.started = '1';
}

start();
