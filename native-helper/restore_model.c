/* Decoding the image's metadata (FORMAT.md §5, §6, §7) into the restore model of restore.h, and the
 * consistency checks that must pass before any process is created. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "restore.h"

static const char *const mm_keys[11] = { "startCode", "endCode", "startData", "endData", "startBrk", "brk",
					 "startStack", "argStart", "argEnd", "envStart", "envEnd" };

static int decode(const struct img_section *s, unsigned char *buf, struct mp_node **out)
{
	char err[256];

	if (mp_decode(buf, s->h.raw_length, out, err, sizeof err))
		return rst_fail(0, "%s section at image byte %llu: %s", img_type_name(s->h.type),
				(unsigned long long)s->offset, err);
	if ((*out)->type != MP_MAP) {
		mp_free(*out);
		*out = NULL;
		return rst_fail(0, "%s section at image byte %llu: metadata is not a msgpack map",
				img_type_name(s->h.type), (unsigned long long)s->offset);
	}
	return 0;
}

int rst_load_meta(struct rst_image *img, const struct img_section *s, unsigned char *buf)
{
	const struct mp_node *pids, *host;
	int64_t v;

	if (img->meta)
		return rst_fail(0, "image byte %llu: a second IMAGE_META section", (unsigned long long)s->offset);
	if (decode(s, buf, &img->meta))
		return -1;
	img->meta_buf = buf;
	if (mp_int(mp_get(img->meta, "rootPid"), &v))
		return rst_fail(0, "IMAGE_META has no rootPid");
	img->root_pid = (int)v;
	host = mp_get(img->meta, "host");
	img->kernel = mp_strdup(mp_get(host, "kernel"));
	pids = mp_get(img->meta, "pids");
	img->npids = mp_count(pids);
	if (!img->npids)
		return rst_fail(0, "IMAGE_META lists no pids");
	img->pids = calloc(img->npids, sizeof *img->pids);
	if (!img->pids)
		return rst_fail(ENOMEM, "allocating the pid list");
	for (int i = 0; i < img->npids; i++) {
		if (mp_int(mp_at(pids, i), &v) || v <= 0)
			return rst_fail(0, "IMAGE_META pids[%d] is not a PID", i);
		img->pids[i] = (int)v;
	}
	return 0;
}

static int load_siginfos(const struct mp_node *arr, const unsigned char ***out, int *n, int pid)
{
	int count = mp_count(arr);

	*n = 0;
	*out = NULL;
	if (!count)
		return 0;
	*out = calloc(count, sizeof **out);
	if (!*out)
		return rst_fail(ENOMEM, "allocating pending signals");
	for (int i = 0; i < count; i++) {
		const unsigned char *p;
		size_t len;
		if (mp_bytes(mp_at(arr, i), &p, &len) || len != 128)
			return rst_fail(0, "process %d: pending signal %d is not a 128-byte siginfo", pid, i);
		(*out)[(*n)++] = p;
	}
	return 0;
}

static int load_thread(struct rst_proc *p, const struct mp_node *m, struct rst_thread *t)
{
	const unsigned char *b;
	size_t len;
	const struct mp_node *n;
	char *s;

	t->tid = (int)mp_get_int(m, "tid", 0);
	if (t->tid <= 0)
		return rst_fail(0, "process %d: a thread without a tid", p->pid);
	s = mp_strdup(mp_get(m, "comm"));
	if (s) {
		strncpy(t->comm, s, sizeof t->comm - 1);
		free(s);
	}
	if (mp_bytes(mp_get(m, "regs"), &b, &len) || len != RST_REGS_WORDS * 8)
		return rst_fail(0, "thread %d: regs is not a %d-byte bin", t->tid, RST_REGS_WORDS * 8);
	for (int i = 0; i < RST_REGS_WORDS; i++) {
		t->regs[i] = 0;
		for (int k = 0; k < 8; k++)
			t->regs[i] |= (uint64_t)b[i * 8 + k] << (8 * k);
	}
	s = mp_strdup(mp_get(m, "restart"));
	if (s) {
		strncpy(t->restart, s, sizeof t->restart - 1);
		free(s);
	}
	if (!mp_bytes(mp_get(m, "xstate"), &b, &len)) {
		t->xstate = (unsigned char *)b;
		t->xstate_len = len;
	}
	t->xfeatures = mp_get_uint(m, "xfeatures", 0);
	t->fs_base = mp_get_uint(m, "fsBase", t->regs[21]);
	t->gs_base = mp_get_uint(m, "gsBase", t->regs[22]);
	t->sigmask = mp_get_le64(m, "sigmask", 0);
	if (load_siginfos(mp_get(m, "pending"), &t->pending, &t->npending, p->pid))
		return -1;
	t->clear_child_tid = mp_get_uint(m, "clearChildTid", 0);
	n = mp_get(m, "robustList");
	t->robust_head = mp_get_uint(n, "head", 0);
	t->robust_len = mp_get_uint(n, "len", 0);
	n = mp_get(m, "rseq");
	if (n && mp_get_uint(n, "ptr", 0)) {
		t->has_rseq = 1;
		t->rseq_ptr = mp_get_uint(n, "ptr", 0);
		t->rseq_size = mp_get_uint(n, "size", 0);
		t->rseq_sig = mp_get_uint(n, "signature", 0);
	}
	n = mp_get(m, "sigaltstack");
	t->ss_sp = mp_get_uint(n, "sp", 0);
	t->ss_size = mp_get_uint(n, "size", 0);
	t->ss_flags = mp_get_int(n, "flags", 2 /* SS_DISABLE */);
	return 0;
}

static int vma_kind(const char *k)
{
	static const char *const names[] = { "anon", "heap", "stack", "file", "shmem", "memfd", "deleted",
					     "vdso", "vvar", "vsyscall" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (k && !strcmp(k, names[i]))
			return (int)i;
	return VK_UNKNOWN;
}

static unsigned vma_flags(const struct mp_node *arr)
{
	static const char flags[][3] = { "gd", "nr", "dd", "dc", "wf", "hg", "nh", "mg", "lo", "ss" };
	unsigned out = 0;

	for (uint32_t i = 0; i < mp_count(arr); i++) {
		const unsigned char *b;
		size_t len;
		if (mp_bytes(mp_at(arr, i), &b, &len) || len != 2)
			continue;
		for (size_t k = 0; k < sizeof flags / sizeof *flags; k++)
			if (!memcmp(b, flags[k], 2))
				out |= 1u << k;
	}
	return out;
}

static int load_vma(struct rst_proc *p, const struct mp_node *m, struct rst_vma *v)
{
	const struct mp_node *dev = mp_get(m, "dev");
	char *kind = mp_strdup(mp_get(m, "kind"));
	int shared = 0;

	v->start = mp_get_uint(m, "start", 0);
	v->end = mp_get_uint(m, "end", 0);
	if (v->start >= v->end || v->start % 4096 || v->end % 4096)
		return rst_fail(0, "process %d: VMA %#llx-%#llx is not a page-aligned range", p->pid,
				(unsigned long long)v->start, (unsigned long long)v->end);
	v->prot = (int)mp_get_int(m, "prot", 0) & 7;
	mp_bool(mp_get(m, "shared"), &shared);
	v->shared = shared;
	v->offset = mp_get_uint(m, "offset", 0);
	v->inode = mp_get_uint(m, "inode", 0);
	if (mp_at(dev, 0))
		v->dev_major = (uint32_t)mp_at(dev, 0)->num.u;
	if (mp_at(dev, 1))
		v->dev_minor = (uint32_t)mp_at(dev, 1)->num.u;
	v->name = mp_strdup(mp_get(m, "name"));
	v->path = mp_strdup(mp_get(m, "path"));
	v->kind = vma_kind(kind);
	free(kind);
	v->vmflags = vma_flags(mp_get(m, "vmFlags"));
	if (v->kind == VK_UNKNOWN)
		return rst_fail(0, "process %d: VMA %#llx-%#llx has an unknown kind", p->pid,
				(unsigned long long)v->start, (unsigned long long)v->end);
	return 0;
}

static int load_fd(struct rst_proc *p, const struct mp_node *m, struct rst_fd *f)
{
	const struct mp_node *pipe = mp_get(m, "pipe"), *sock = mp_get(m, "socket");
	int b = 0;

	f->fd = (int)mp_get_int(m, "fd", -1);
	if (f->fd < 0)
		return rst_fail(0, "process %d: a descriptor without a number", p->pid);
	f->type = mp_strdup(mp_get(m, "type"));
	if (!f->type)
		f->type = strdup("unknown");
	f->path = mp_strdup(mp_get(m, "path"));
	f->flags = (int)mp_get_int(m, "flags", 0);
	mp_bool(mp_get(m, "cloexec"), &b);
	f->cloexec = b;
	f->pos = mp_get_int(m, "pos", 0);
	f->mode = mp_get_uint(m, "mode", 0);
	f->size = mp_get_uint(m, "size", 0);
	f->inode = mp_get_uint(m, "inode", 0);
	b = 0;
	mp_bool(mp_get(m, "deleted"), &b);
	f->deleted = b;
	f->content_blob = mp_get_int(m, "contentBlob", -1);
	f->fdinfo = mp_get(m, "fdinfo");
	f->fdinfo_parent = m;
	f->pipe_blob = -1;
	if (pipe) {
		f->is_pipe = 1;
		f->pipe_inode = mp_get_uint(pipe, "inode", f->inode);
		f->pipe_blob = mp_get_int(pipe, "dataBlob", -1);
		f->pipe_len = mp_get_uint(pipe, "dataLength", 0);
	}
	if (sock) {
		char buf[512];
		char *fam = mp_strdup(mp_get(sock, "family")), *type = mp_strdup(mp_get(sock, "type"));
		char *peer = mp_strdup(mp_get(sock, "peer")), *local = mp_strdup(mp_get(sock, "local"));
		snprintf(buf, sizeof buf, "%s %s socket, local %s, peer %s", fam ? fam : "?", type ? type : "?",
			 local && *local ? local : "-", peer && *peer ? peer : "-");
		f->socket_desc = strdup(buf);
		free(fam); free(type); free(peer); free(local);
	}
	return 0;
}

static void load_creds(struct rst_proc *p, const struct mp_node *c)
{
	const struct mp_node *uid = mp_get(c, "uid"), *gid = mp_get(c, "gid"), *groups = mp_get(c, "groups");
	int b = 0;

	for (int i = 0; i < 4; i++) {
		p->uid[i] = mp_at(uid, i) ? mp_at(uid, i)->num.i : -1;
		p->gid[i] = mp_at(gid, i) ? mp_at(gid, i)->num.i : -1;
	}
	p->ngroups = mp_count(groups);
	p->groups = p->ngroups ? calloc(p->ngroups, sizeof *p->groups) : NULL;
	if (!p->groups)
		p->ngroups = 0;
	for (int i = 0; i < p->ngroups; i++)
		p->groups[i] = mp_at(groups, i) ? mp_at(groups, i)->num.i : 0;
	p->cap_inh = mp_get_le64(c, "capInh", 0);
	p->cap_prm = mp_get_le64(c, "capPrm", 0);
	p->cap_eff = mp_get_le64(c, "capEff", 0);
	p->cap_bnd = mp_get_le64(c, "capBnd", 0);
	p->cap_amb = mp_get_le64(c, "capAmb", 0);
	mp_bool(mp_get(c, "noNewPrivs"), &b);
	p->no_new_privs = b;
	p->seccomp = mp_get_int(c, "seccomp", 0);
}

static void load_rlimits(struct rst_proc *p, const struct mp_node *arr)
{
	for (int i = 0; i < RST_NRLIMIT && i < (int)mp_count(arr); i++) {
		const struct mp_node *pair = mp_at(arr, i);
		if (!pair)
			continue;
		p->has_rlimit[i] = 1;
		for (int k = 0; k < 2; k++) {
			uint64_t v;
			p->rlim[i][k] = mp_uint(mp_at(pair, k), &v) ? ~0ull /* RLIM_INFINITY */ : v;
		}
	}
}

static void load_sigactions(struct rst_proc *p, const struct mp_node *arr)
{
	for (int i = 0; i < RST_NSIG && i < (int)mp_count(arr); i++) {
		const struct mp_node *a = mp_at(arr, i);
		if (!a)
			continue;
		p->sigact[i].present = 1;
		p->sigact[i].handler = mp_get_uint(a, "handler", 0);
		p->sigact[i].flags = mp_get_uint(a, "flags", 0);
		p->sigact[i].restorer = mp_get_uint(a, "restorer", 0);
		p->sigact[i].mask = mp_get_le64(a, "mask", 0);
	}
}

static int load_arrays(struct rst_proc *p, const struct mp_node *m)
{
	const struct mp_node *threads = mp_get(m, "threads"), *vmas = mp_get(m, "vmas"), *fds = mp_get(m, "fds");

	p->nthreads = mp_count(threads);
	p->nvmas = mp_count(vmas);
	p->nfds = mp_count(fds);
	if (!p->nthreads)
		return rst_fail(0, "process %d has no threads in the image", p->pid);
	p->threads = calloc(p->nthreads, sizeof *p->threads);
	p->vmas = calloc(p->nvmas + 1, sizeof *p->vmas);
	p->fds = calloc(p->nfds + 1, sizeof *p->fds);
	if (!p->threads || !p->vmas || !p->fds)
		return rst_fail(ENOMEM, "allocating process %d", p->pid);
	for (int i = 0; i < p->nthreads; i++)
		if (load_thread(p, mp_at(threads, i), &p->threads[i]))
			return -1;
	if (p->threads[0].tid != p->pid)
		return rst_fail(0, "process %d: the first thread is %d, not the thread-group leader", p->pid,
				p->threads[0].tid);
	for (int i = 0; i < p->nvmas; i++)
		if (load_vma(p, mp_at(vmas, i), &p->vmas[i]))
			return -1;
	for (int i = 0; i < p->nfds; i++)
		if (load_fd(p, mp_at(fds, i), &p->fds[i]))
			return -1;
	return 0;
}

int rst_load_process(struct rst_image *img, const struct img_section *s, unsigned char *buf)
{
	struct mp_node *m;
	struct rst_proc *p, *procs;
	const struct mp_node *mm;
	const unsigned char *b;
	size_t len;

	if (decode(s, buf, &m))
		return -1;
	procs = realloc(img->procs, (img->nprocs + 1) * sizeof *procs);
	if (!procs) {
		mp_free(m);
		return rst_fail(ENOMEM, "allocating process");
	}
	img->procs = procs;
	p = &img->procs[img->nprocs++];
	memset(p, 0, sizeof *p);
	p->meta = m;
	p->meta_buf = buf;
	p->parent = -1;
	p->pid = (int)mp_get_int(m, "pid", 0);
	if (p->pid <= 0 || (uint32_t)p->pid != s->h.owner)
		return rst_fail(0, "PROCESS section at image byte %llu: pid %d does not match its owner %u",
				(unsigned long long)s->offset, p->pid, s->h.owner);
	p->ppid = (int)mp_get_int(m, "ppid", 0);
	p->pgid = (int)mp_get_int(m, "pgid", p->pid);
	p->sid = (int)mp_get_int(m, "sid", p->pid);
	p->comm = mp_strdup(mp_get(m, "comm"));
	p->exe = mp_strdup(mp_get(m, "exe"));
	p->cwd = mp_strdup(mp_get(m, "cwd"));
	p->root = mp_strdup(mp_get(m, "root"));
	p->umask = (int)mp_get_int(m, "umask", 022);
	{
		char *st = mp_strdup(mp_get(m, "state"));
		p->state = st && *st ? st[0] : 'S';
		free(st);
	}
	p->personality = mp_get_int(m, "personality", 0);
	load_creds(p, mp_get(m, "creds"));
	load_rlimits(p, mp_get(m, "rlimits"));
	mm = mp_get(m, "mm");
	p->has_mm = mm != NULL;
	for (int i = 0; i < 11; i++)
		p->mm[i] = mp_get_uint(mm, mm_keys[i], 0);
	if (!mp_bytes(mp_get(m, "auxv"), &b, &len)) {
		p->auxv = b;
		p->auxv_len = len;
	}
	load_sigactions(p, mp_get(m, "sigactions"));
	if (load_siginfos(mp_get(m, "pendingShared"), &p->pending_shared, &p->npending_shared, p->pid))
		return -1;
	return load_arrays(p, m);
}

static int cmp_run_store(const void *a, const void *b)
{
	const struct cryo_pagemap_entry *x = *(const struct cryo_pagemap_entry *const *)a;
	const struct cryo_pagemap_entry *y = *(const struct cryo_pagemap_entry *const *)b;
	return x->store_index < y->store_index ? -1 : x->store_index > y->store_index;
}

static uint64_t le(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int index_runs(struct rst_proc *p)
{
	size_t n = 0;

	p->runs = calloc(p->npagemap + 1, sizeof *p->runs);
	if (!p->runs)
		return rst_fail(ENOMEM, "indexing the page map of %d", p->pid);
	for (size_t i = 0; i < p->npagemap; i++) {
		struct cryo_pagemap_entry *e = &p->pagemap[i];
		if (e->kind != CRYO_PAGE_DATA)
			continue;
		p->runs[n++] = e;
		if (e->page_count > p->max_run)
			p->max_run = e->page_count;
		if (e->store_index + e->page_count > p->store_pages)
			p->store_pages = e->store_index + e->page_count;
	}
	p->nruns = n;
	qsort(p->runs, n, sizeof *p->runs, cmp_run_store);
	return 0;
}

int rst_load_pagemap(struct rst_image *img, const struct img_section *s, const unsigned char *buf)
{
	struct rst_proc *p = rst_find_proc(img, (int)s->h.owner);
	uint64_t n = s->h.raw_length / CRYO_PAGEMAP_ENTRY_SIZE, end = 0;

	if (!p)
		return rst_fail(0, "PAGEMAP section at image byte %llu for process %u, whose PROCESS section "
				"did not come first", (unsigned long long)s->offset, s->h.owner);
	if (p->pagemap)
		return rst_fail(0, "image byte %llu: a second PAGEMAP for process %d",
				(unsigned long long)s->offset, p->pid);
	if (s->h.raw_length % CRYO_PAGEMAP_ENTRY_SIZE)
		return rst_fail(0, "image byte %llu: PAGEMAP length %llu is not a multiple of 24",
				(unsigned long long)s->offset, (unsigned long long)s->h.raw_length);
	p->pagemap = calloc(n + 1, sizeof *p->pagemap);
	if (!p->pagemap)
		return rst_fail(ENOMEM, "allocating the page map of %d", p->pid);
	for (uint64_t i = 0; i < n; i++) {
		const unsigned char *e = buf + i * CRYO_PAGEMAP_ENTRY_SIZE;
		struct cryo_pagemap_entry *m = &p->pagemap[i];
		uint64_t at = s->offset + CRYO_SECTION_HEADER_SIZE + i * CRYO_PAGEMAP_ENTRY_SIZE;
		m->vaddr = le(e, 8);
		m->page_count = (uint32_t)le(e + 8, 4);
		m->kind = (uint16_t)le(e + 12, 2);
		m->flags = (uint16_t)le(e + 14, 2);
		m->store_index = le(e + 16, 8);
		if (m->vaddr % 4096 || !m->page_count || m->vaddr < end)
			return rst_fail(0, "image byte %llu: page map entry %llu of %d is unaligned, empty, "
					"unsorted or overlapping", (unsigned long long)at, (unsigned long long)i,
					p->pid);
		if (m->kind > CRYO_PAGE_ZERO || m->flags || (m->kind == CRYO_PAGE_ZERO && m->store_index))
			return rst_fail(0, "image byte %llu: page map entry %llu of %d has unknown kind %u or "
					"flags %#x (or a ZERO run with a store index)", (unsigned long long)at, (unsigned long long)i, p->pid, m->kind,
					m->flags);
		end = m->vaddr + (uint64_t)m->page_count * 4096;
	}
	p->npagemap = n;
	return index_runs(p);
}

int rst_load_blob(struct rst_image *img, const struct img_section *s, unsigned char *buf)
{
	struct rst_blob *b = rst_find_blob(img, (int64_t)s->h.key);

	if (!b) {
		struct rst_blob *n = realloc(img->blobs, (img->nblobs + 1) * sizeof *n);
		if (!n)
			return rst_fail(ENOMEM, "allocating blob %llu", (unsigned long long)s->h.key);
		img->blobs = n;
		b = &img->blobs[img->nblobs++];
		memset(b, 0, sizeof *b);
		b->id = s->h.key;
	}
	unsigned char *d = realloc(b->data, b->len + s->h.raw_length + 1);
	if (!d)
		return rst_fail(ENOMEM, "allocating blob %llu", (unsigned long long)s->h.key);
	memcpy(d + b->len, buf, s->h.raw_length);
	b->data = d;
	b->len += s->h.raw_length;
	return 0;
}

struct rst_proc *rst_find_proc(struct rst_image *img, int pid)
{
	for (int i = 0; i < img->nprocs; i++)
		if (img->procs[i].pid == pid)
			return &img->procs[i];
	return NULL;
}

struct rst_blob *rst_find_blob(struct rst_image *img, int64_t id)
{
	for (int i = 0; i < img->nblobs; i++)
		if ((int64_t)img->blobs[i].id == id)
			return &img->blobs[i];
	return NULL;
}

struct rst_vma *rst_find_vma(struct rst_proc *p, uint64_t addr)
{
	int lo = 0, hi = p->nvmas - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (addr < p->vmas[mid].start)
			hi = mid - 1;
		else if (addr >= p->vmas[mid].end)
			lo = mid + 1;
		else
			return &p->vmas[mid];
	}
	return NULL;
}

/* Every stored page must land inside a VMA, and the pages a VMA receives decide whether it is mapped
 * writable while the page data streams in. */
static int check_pagemap_vmas(struct rst_proc *p)
{
	for (int i = 1; i < p->nvmas; i++)
		if (p->vmas[i].start < p->vmas[i - 1].end)
			return rst_fail(0, "process %d: VMAs %#llx and %#llx overlap or are unsorted", p->pid,
					(unsigned long long)p->vmas[i - 1].start,
					(unsigned long long)p->vmas[i].start);
	for (size_t i = 0; i < p->npagemap; i++) {
		struct cryo_pagemap_entry *e = &p->pagemap[i];
		for (uint64_t a = e->vaddr; a < e->vaddr + (uint64_t)e->page_count * 4096;) {
			struct rst_vma *v = rst_find_vma(p, a);
			if (!v)
				return rst_fail(0, "process %d: page map run at %#llx covers %#llx, which is in "
						"no VMA", p->pid, (unsigned long long)e->vaddr,
						(unsigned long long)a);
			if (e->kind == CRYO_PAGE_DATA || v->kind == VK_FILE)
				v->needs_write = 1;
			a = v->end;
		}
	}
	return 0;
}

static int check_parents(struct rst_image *img)
{
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		for (int k = 0; k < i; k++)
			if (img->procs[k].pid == p->ppid)
				p->parent = k;
		if (p->parent < 0 && p->pid != img->root_pid)
			return rst_fail(0, "process %d: its parent %d is not in the image (or comes after it)",
					p->pid, p->ppid);
		if (p->pid == img->root_pid && i != 0)
			return rst_fail(0, "the root process %d is not the first process", p->pid);
	}
	return 0;
}

int rst_check_model(struct rst_image *img)
{
	if (!img->meta)
		return rst_fail(0, "the image has no IMAGE_META section");
	if (img->nprocs != img->npids)
		return rst_fail(0, "IMAGE_META lists %d processes, the image holds %d PROCESS sections",
				img->npids, img->nprocs);
	for (int i = 0; i < img->npids; i++) {
		struct rst_proc *p = rst_find_proc(img, img->pids[i]);
		if (!p)
			return rst_fail(0, "process %d of IMAGE_META has no PROCESS section", img->pids[i]);
		if (check_pagemap_vmas(p))
			return -1;
		for (int k = 0; k < p->nfds; k++) {
			struct rst_fd *f = &p->fds[k];
			struct rst_blob *b = f->pipe_blob >= 0 ? rst_find_blob(img, f->pipe_blob) : NULL;
			if (f->content_blob >= 0 && !rst_find_blob(img, f->content_blob) && f->size)
				return rst_fail(0, "process %d fd %d: content blob %lld is missing", p->pid, f->fd,
						(long long)f->content_blob);
			if (f->pipe_blob >= 0 && (b ? b->len : 0) != f->pipe_len)
				return rst_fail(0, "process %d fd %d: pipe data blob %lld holds %zu bytes, dataLength "
						"says %llu", p->pid, f->fd, (long long)f->pipe_blob, b ? b->len : 0,
						(unsigned long long)f->pipe_len);
		}
	}
	return check_parents(img);
}

void rst_free_image(struct rst_image *img)
{
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		for (int k = 0; k < p->nthreads; k++)
			free(p->threads[k].pending);
		for (int k = 0; k < p->nvmas; k++) {
			free(p->vmas[k].name);
			free(p->vmas[k].path);
		}
		for (int k = 0; k < p->nfds; k++) {
			free(p->fds[k].type);
			free(p->fds[k].path);
			free(p->fds[k].socket_desc);
		}
		free(p->threads); free(p->vmas); free(p->fds); free(p->pagemap); free(p->runs);
		free(p->comm); free(p->exe); free(p->cwd); free(p->root); free(p->groups);
		free(p->pending_shared); free(p->tasks);
		mp_free(p->meta);
		free(p->meta_buf);
	}
	for (int i = 0; i < img->nblobs; i++)
		free(img->blobs[i].data);
	free(img->procs); free(img->blobs); free(img->pipes); free(img->sockets); free(img->shared); free(img->pids); free(img->kernel);
	mp_free(img->meta);
	free(img->meta_buf);
	memset(img, 0, sizeof *img);
}
