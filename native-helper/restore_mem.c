/* Address spaces (FORMAT.md §5, §6.4). In each stopped process (still holding a copy of the helper's
 * memory) the helper, through injected syscalls: drops the inherited rseq, robust-list and
 * clear_child_tid registrations; unmaps everything but the trampoline area and the vDSO; moves the
 * running kernel's vDSO/vvar to the image's addresses (only when they are the same size and layout,
 * and, once the stored vDSO pages stream by, byte-identical); maps every VMA at its address with
 * MAP_FIXED_NOREPLACE (private file mappings from the file, so that only the stored COW pages are
 * written over them); then streams the page data in with process_vm_writev. VMAs that receive pages are
 * mapped writable for that and get their own protection back at the end (rst_finish_mm), followed by
 * the madvise flags, anonymous VMA names and the mm fields (PR_SET_MM_MAP). */
#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "restore.h"

#define PARK_OFFSET (16 * 4096)   /* where the vDSO waits inside the trampoline area */
#define MAX_SPECIAL 4

struct special {
	char name[24];
	uint64_t start, end;
};

static struct special rt_special[MAX_SPECIAL];   /* the running kernel's [vvar*] and [vdso] */
static int n_rt_special;

static int vdso_compare(struct rst_image *img, struct rst_proc *p, uint64_t addr, const unsigned char *page,
			size_t len);
static struct rst_vma *image_vdso(struct rst_proc *p);

static int is_special_name(const char *n)
{
	return !strcmp(n, "[vdso]") || !strcmp(n, "[vvar]") || !strcmp(n, "[vvar_vclock]");
}

/* Reads a maps file; calls fn for each line. */
static int each_map(int pid, int (*fn)(void *ctx, uint64_t s, uint64_t e, const char *name), void *ctx)
{
	char path[64], line[4400];
	FILE *f;
	int rc = 0;

	snprintf(path, sizeof path, pid ? "/proc/%d/maps" : "/proc/self/maps", pid);
	f = fopen(path, "r");
	if (!f)
		return rst_fail(errno, "opening %s", path);
	while (!rc && fgets(line, sizeof line, f)) {
		unsigned long long s, e;
		int name_at = 0;
		if (sscanf(line, "%llx-%llx %*s %*s %*s %*s %n", &s, &e, &name_at) < 2)
			continue;
		line[strcspn(line, "\n")] = 0;
		rc = fn(ctx, s, e, name_at ? line + name_at : "");
	}
	fclose(f);
	return rc;
}

static int collect_special(void *ctx, uint64_t s, uint64_t e, const char *name)
{
	(void)ctx;
	if (!is_special_name(name) || n_rt_special == MAX_SPECIAL)
		return 0;
	snprintf(rt_special[n_rt_special].name, sizeof rt_special[0].name, "%s", name);
	rt_special[n_rt_special].start = s;
	rt_special[n_rt_special].end = e;
	n_rt_special++;
	return 0;
}

static const struct special *rt_find(const char *name)
{
	for (int i = 0; i < n_rt_special; i++)
		if (!strcmp(rt_special[i].name, name))
			return &rt_special[i];
	return NULL;
}

static struct rst_vma *image_vdso(struct rst_proc *p)
{
	for (int i = 0; i < p->nvmas; i++)
		if (p->vmas[i].kind == VK_VDSO)
			return &p->vmas[i];
	return NULL;
}

/* Same kernel vDSO size and the same vvar/vdso layout, or a clear refusal before anything exists. */
int rst_check_vdso_layout(struct rst_image *img)
{
	struct utsname u;
	const struct special *rv;

	if (each_map(0, collect_special, NULL))
		return -1;
	rv = rt_find("[vdso]");
	img->vdso_rt = getauxval(AT_SYSINFO_EHDR);
	img->vdso_rt_size = rv ? rv->end - rv->start : 0;
	uname(&u);
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		struct rst_vma *vd = image_vdso(p);
		if (!vd)
			continue;
		if (!rv || vd->end - vd->start != img->vdso_rt_size)
			return rst_fail(0, "the image's vDSO (%llu bytes, kernel %s) is not the running kernel's "
					"(%llu bytes, kernel %s): it cannot be moved into place; restore on the "
					"kernel that made the image", (unsigned long long)(vd->end - vd->start),
					img->kernel ? img->kernel : "?", (unsigned long long)img->vdso_rt_size,
					u.release);
		for (int k = 0; k < p->nvmas; k++) {
			struct rst_vma *v = &p->vmas[k];
			const struct special *r;
			if (v->kind != VK_VVAR)
				continue;
			r = rt_find(v->name ? v->name : "");
			if (!r || r->end - r->start != v->end - v->start ||
			    (int64_t)(r->start - rv->start) != (int64_t)(v->start - vd->start))
				return rst_fail(0, "process %d: the image's %s at %#llx does not match the running "
						"kernel's vvar layout (kernel %s, image from %s)", p->pid,
						v->name ? v->name : "vvar", (unsigned long long)v->start, u.release,
						img->kernel ? img->kernel : "?");
		}
	}
	if (img->kernel && strcmp(img->kernel, u.release))
		rst_warn("the image comes from kernel %s, this is %s: the vDSO pages will be compared byte by byte",
			 img->kernel, u.release);
	return 0;
}

static uint64_t store_index_of(struct rst_proc *p, uint64_t addr, int *found)
{
	*found = 0;
	for (size_t i = 0; i < p->npagemap; i++) {
		struct cryo_pagemap_entry *e = &p->pagemap[i];
		if (e->kind == CRYO_PAGE_DATA && addr >= e->vaddr && addr < e->vaddr + (uint64_t)e->page_count * 4096) {
			*found = 1;
			return e->store_index + (addr - e->vaddr) / 4096;
		}
	}
	return 0;
}

/* When the image is a regular file, its stored vDSO pages can be compared with the running kernel's
 * before anything exists (found through the INDEX, read with pread); from a pipe they are compared as
 * they stream by, which is after the processes exist. */
int rst_precheck_vdso(struct rst_image *img, struct img_reader *r)
{
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		struct rst_vma *vd = image_vdso(p);
		for (uint64_t a = vd ? vd->start : 0; vd && a < vd->end; a += 4096) {
			unsigned char *buf;
			const unsigned char *page;
			int found, rc;
			uint64_t s = store_index_of(p, a, &found);
			if (!found)
				continue;
			rc = img_pread_page(r, (uint32_t)p->pid, s, &buf, &page);
			if (rc < 0)
				return rst_fail(0, "%s", r->err);
			if (rc == 0)
				return 0; /* a pipe, or no index: checked while streaming */
			rc = vdso_compare(img, p, a, page, 4096);
			free(buf);
			if (rc)
				return -1;
		}
	}
	return 0;
}

/* Private file mappings get the file's pages under the stored ones: the file must be the same. */
int rst_check_file_vmas(struct rst_image *img)
{
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		for (int k = 0; k < p->nvmas; k++) {
			struct rst_vma *v = &p->vmas[k];
			struct stat st;
			if (v->kind != VK_FILE)
				continue;
			if (!v->path || stat(v->path, &st) < 0)
				return rst_fail(errno, "process %d: mapped file %s (at %#llx)", p->pid,
						v->path ? v->path : "(no path)", (unsigned long long)v->start);
			if (v->inode && st.st_ino != v->inode && major(st.st_dev) == v->dev_major &&
			    minor(st.st_dev) == v->dev_minor)
				return rst_fail(0, "process %d: mapped file %s has changed since the dump (inode %llu, "
						"was %llu); its unmodified pages would come from the new file",
						p->pid, v->path, (unsigned long long)st.st_ino,
						(unsigned long long)v->inode);
			/* on another device number (overlayfs shows the layer's device in maps) the inode
			 * numbers are not comparable: say so, but go on */
			if (v->inode && st.st_ino != v->inode)
				rst_warn("process %d: cannot tell whether mapped file %s is the dumped one (device "
					 "%u:%u inode %llu in the image, %u:%u inode %llu now)", p->pid, v->path,
					 v->dev_major, v->dev_minor, (unsigned long long)v->inode, major(st.st_dev),
					 minor(st.st_dev), (unsigned long long)st.st_ino);
			if ((uint64_t)st.st_size < v->offset + 1 && v->offset)
				return rst_fail(0, "process %d: mapped file %s is shorter than the mapping's offset",
						p->pid, v->path);
		}
	}
	return 0;
}

static int rcall(struct rst_task *t, long *ret, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		 uint64_t a5, uint64_t a6)
{
	return rst_syscall(t, ret, nr, a1, a2, a3, a4, a5, a6);
}

/* Drop what the child inherited from the helper's own thread: rseq, robust list, clear_child_tid.
 * They point into the helper's TLS, which is about to become the restored program's memory. */
static int scrub_inherited(struct rst_task *t)
{
	struct { uint64_t ptr; uint32_t size, sig, flags, pad; } conf;
	long r;

	memset(&conf, 0, sizeof conf);
	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->tid, sizeof conf, &conf) < 0)
		return rst_fail(errno, "PTRACE_GET_RSEQ_CONFIGURATION of %d", t->tid);
	if (conf.ptr && conf.size) {
		if (rcall(t, &r, SYS_rseq, conf.ptr, conf.size, 1 /* RSEQ_FLAG_UNREGISTER */, conf.sig, 0, 0))
			return -1;
		if (r < 0)
			return rst_fail(-r, "unregistering the inherited rseq area %#llx in %d",
					(unsigned long long)conf.ptr, t->tid);
	}
	if (rcall(t, &r, SYS_set_robust_list, 0, 24, 0, 0, 0, 0) || rcall(t, &r, SYS_set_tid_address, 0, 0, 0, 0, 0, 0))
		return -1;
	return 0;
}

struct unmap_ctx {
	struct rst_task *t;
	struct rst_image *img;
	uint64_t keep_start, keep_end;
	struct special found[MAX_SPECIAL];
	int nfound;
	uint64_t *ranges;
	int nranges, cap;
};

static int plan_unmap(void *vctx, uint64_t s, uint64_t e, const char *name)
{
	struct unmap_ctx *c = vctx;

	if (s >= c->keep_start && e <= c->keep_end)
		return 0;
	for (int i = 0; i < c->img->nshared; i++) /* shared memory waiting to be duplicated into place */
		if (c->img->shared[i].addr && s >= c->img->shared[i].addr &&
		    e <= c->img->shared[i].addr + ((c->img->shared[i].size + 4095) & ~4095ull))
			return 0;
	if (!strcmp(name, "[vsyscall]"))
		return 0;
	if (is_special_name(name) && c->nfound < MAX_SPECIAL) {
		snprintf(c->found[c->nfound].name, sizeof c->found[0].name, "%s", name);
		c->found[c->nfound].start = s;
		c->found[c->nfound].end = e;
		c->nfound++;
		return 0;
	}
	if (c->nranges && c->ranges[2 * c->nranges - 1] == s) {
		c->ranges[2 * c->nranges - 1] = e;
		return 0;
	}
	if (c->nranges == c->cap) {
		int cap = c->cap ? c->cap * 2 : 64;
		uint64_t *n = realloc(c->ranges, cap * 2 * sizeof *n);
		if (!n)
			return rst_fail(ENOMEM, "planning unmaps");
		c->ranges = n;
		c->cap = cap;
	}
	c->ranges[2 * c->nranges] = s;
	c->ranges[2 * c->nranges + 1] = e;
	c->nranges++;
	return 0;
}

static int unmap_helper(struct rst_image *img, struct rst_task *t, struct unmap_ctx *c)
{
	long r;
	int rc = -1;

	c->t = t;
	c->img = img;
	c->keep_start = img->tramp;
	c->keep_end = img->tramp + img->tramp_size;
	if (each_map(t->tid, plan_unmap, c))
		goto out;
	for (int i = 0; i < c->nranges; i++) {
		uint64_t s = c->ranges[2 * i], e = c->ranges[2 * i + 1];
		if (rcall(t, &r, SYS_munmap, s, e - s, 0, 0, 0, 0))
			goto out;
		if (r < 0) {
			rst_fail(-r, "munmap %#llx-%#llx of the helper's memory in %d", (unsigned long long)s,
				 (unsigned long long)e, t->tid);
			goto out;
		}
	}
	rc = 0;
out:
	free(c->ranges);
	c->ranges = NULL;
	return rc;
}

static int remap(struct rst_task *t, uint64_t from, uint64_t size, uint64_t to, const char *name)
{
	long r;

	if (from == to)
		return 0;
	if (rcall(t, &r, SYS_mremap, from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to, 0))
		return -1;
	if (r < 0 || (uint64_t)r != to)
		return rst_fail(r < 0 ? -r : 0, "mremap of %s %#llx-%#llx to %#llx in %d", name,
				(unsigned long long)from, (unsigned long long)(from + size), (unsigned long long)to,
				t->tid);
	return 0;
}

/* Moves the running vDSO and its vvar pages to the image's addresses, keeping their relative layout
 * (checked in rst_check_vdso_layout); parks them in the trampoline area first so that no move lands on
 * a special mapping that has not moved yet. */
static int place_vdso(struct rst_image *img, struct rst_proc *p, struct rst_task *t, struct unmap_ctx *c)
{
	struct rst_vma *vd = image_vdso(p);
	const struct special *cur_vdso = NULL;
	uint64_t low = ~0ull, park = img->tramp + PARK_OFFSET;
	long r;

	for (int i = 0; i < c->nfound; i++) {
		if (!strcmp(c->found[i].name, "[vdso]"))
			cur_vdso = &c->found[i];
		if (c->found[i].start < low)
			low = c->found[i].start;
	}
	if (!vd || !cur_vdso) {
		for (int i = 0; i < c->nfound; i++)
			if (rcall(t, &r, SYS_munmap, c->found[i].start, c->found[i].end - c->found[i].start, 0, 0, 0, 0))
				return -1;
		return 0;
	}
	for (int i = 0; i < c->nfound; i++) {
		struct special *s = &c->found[i];
		if (park + (s->end - low) > img->tramp + img->tramp_size)
			return rst_fail(0, "the vDSO and vvar pages do not fit the parking area");
		if (remap(t, s->start, s->end - s->start, park + (s->start - low), s->name))
			return -1;
	}
	for (int i = 0; i < c->nfound; i++) {
		struct special *s = &c->found[i];
		uint64_t to = vd->start + (s->start - cur_vdso->start);
		if (remap(t, park + (s->start - low), s->end - s->start, to, s->name))
			return -1;
	}
	return 0;
}

static int remote_open(struct rst_task *t, const char *path, int flags, const char *why)
{
	size_t len = strlen(path) + 1;
	long r;

	if (len > t->scratch_size)
		return rst_fail(0, "path too long: %s", path);
	if (rst_write_mem(t->tid, t->scratch, path, len))
		return -1;
	if (rcall(t, &r, SYS_openat, (uint64_t)AT_FDCWD, t->scratch, flags | O_CLOEXEC, 0, 0, 0))
		return -1;
	if (r < 0)
		return rst_fail(-r, "open %s for %s in %d", path, why, t->tid);
	return (int)r;
}

static int map_flags(const struct rst_vma *v, int *use_file)
{
	int flags = MAP_FIXED_NOREPLACE;

	*use_file = 0;
	switch (v->kind) {
	case VK_FILE:
		*use_file = 1;
		flags |= v->shared ? MAP_SHARED : MAP_PRIVATE;
		break;
	case VK_SHMEM:
	case VK_MEMFD:
	case VK_DELETED:
		/* the content is in the image; the object itself is not shared with anyone any more */
		flags |= (v->shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS;
		break;
	default:
		flags |= MAP_PRIVATE | MAP_ANONYMOUS;
		break;
	}
	if (v->vmflags & VMF_GD)
		flags |= MAP_GROWSDOWN;
	if (v->vmflags & VMF_NR)
		flags |= MAP_NORESERVE;
	return flags;
}

static int check_mapped(struct rst_proc *p, struct rst_vma *v, long r, const char *what)
{
	if (r < 0 || (uint64_t)r != v->start)
		return rst_fail(r < 0 ? -r : 0, "%s %#llx-%#llx for %s in %d", what, (unsigned long long)v->start,
				(unsigned long long)v->end, v->path ? v->path : v->name ? v->name : "shared memory",
				p->pid);
	return 0;
}

/* A shared object: the memfd by its (inherited) descriptor, or a duplicate of the helper's shared
 * anonymous area (mremap with old_size 0 makes a second mapping of the same pages). */
static int map_shared(struct rst_image *img, struct rst_proc *p, struct rst_task *t, struct rst_vma *v)
{
	struct rst_shared *o = rst_find_shared(img, v->inode);
	int prot = v->prot | (v->needs_write ? PROT_WRITE : 0);
	uint64_t len = v->end - v->start;
	long r;

	if (!o)
		return rst_fail(0, "process %d: no shared object for inode %llu", p->pid, (unsigned long long)v->inode);
	if (o->is_memfd) {
		if (rcall(t, &r, SYS_mmap, v->start, len, prot, MAP_SHARED | MAP_FIXED_NOREPLACE, o->fd, v->offset))
			return -1;
		return check_mapped(p, v, r, "mmap of the memfd");
	}
	if (rcall(t, &r, SYS_mremap, o->addr + v->offset, 0, len, MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0))
		return -1;
	if (check_mapped(p, v, r, "mremap (duplicate) of shared memory"))
		return -1;
	if (rcall(t, &r, SYS_mprotect, v->start, len, prot, 0, 0, 0))
		return -1;
	return r < 0 ? rst_fail(-r, "mprotect of shared memory at %#llx in %d", (unsigned long long)v->start, p->pid) : 0;
}

static int unmap_shared_sources(struct rst_image *img, struct rst_task *t)
{
	long r;

	for (int i = 0; i < img->nshared; i++)
		if (img->shared[i].addr &&
		    rcall(t, &r, SYS_munmap, img->shared[i].addr, (img->shared[i].size + 4095) & ~4095ull, 0, 0, 0, 0))
			return -1;
	return 0;
}

static int map_one(struct rst_proc *p, struct rst_task *t, struct rst_vma *v)
{
	int use_file, flags = map_flags(v, &use_file), fd = -1;
	int prot = v->prot | (v->needs_write ? PROT_WRITE : 0);
	long r;
	const char *what = v->path ? v->path : v->name && *v->name ? v->name : "anonymous memory";

	if (v->vmflags & VMF_SS)
		return rst_fail(0, "process %d: shadow-stack VMA %#llx-%#llx is not restored", p->pid,
				(unsigned long long)v->start, (unsigned long long)v->end);
	if (use_file) {
		int oflags = v->shared && (v->prot & PROT_WRITE) ? O_RDWR : O_RDONLY;
		fd = remote_open(t, v->path, oflags, "a file mapping");
		if (fd < 0)
			return -1;
	}
	if (rcall(t, &r, SYS_mmap, v->start, v->end - v->start, prot, flags, (uint64_t)(int64_t)fd,
		  use_file ? v->offset : 0))
		return -1;
	if (fd >= 0) {
		long ignored;
		if (rcall(t, &ignored, SYS_close, fd, 0, 0, 0, 0, 0))
			return -1;
	}
	if (r < 0 || (uint64_t)r != v->start)
		return rst_fail(r < 0 ? -r : 0, "mmap %#llx-%#llx for %s in %d", (unsigned long long)v->start,
				(unsigned long long)v->end, what, p->pid);
	return 0;
}

/* A ZERO run over a private file mapping means a page copied on write that is all zeros now: the
 * file's bytes must not show through. */
static int zero_file_pages(struct rst_proc *p)
{
	static const unsigned char zeros[65536];

	for (size_t i = 0; i < p->npagemap; i++) {
		struct cryo_pagemap_entry *e = &p->pagemap[i];
		struct rst_vma *v = rst_find_vma(p, e->vaddr);
		uint64_t a = e->vaddr, end = e->vaddr + (uint64_t)e->page_count * 4096;
		if (e->kind != CRYO_PAGE_ZERO || !v || v->kind != VK_FILE)
			continue;
		for (; a < end; a += sizeof zeros) {
			size_t n = end - a < sizeof zeros ? end - a : sizeof zeros;
			if (rst_write_mem(p->pid, a, zeros, n))
				return -1;
		}
	}
	return 0;
}

int rst_rebuild_mm(struct rst_image *img, struct rst_proc *p)
{
	struct rst_task *t = &p->tasks[0];
	struct unmap_ctx c;

	memset(&c, 0, sizeof c);
	if (scrub_inherited(t) || unmap_helper(img, t, &c) || place_vdso(img, p, t, &c))
		return -1;
	for (int i = 0; i < p->nvmas; i++) {
		struct rst_vma *v = &p->vmas[i];
		if (v->kind == VK_VDSO || v->kind == VK_VVAR || v->kind == VK_VSYSCALL)
			continue;
		if (rst_is_shared_vma(v) ? map_shared(img, p, t, v) : map_one(p, t, v))
			return -1;
	}
	return unmap_shared_sources(img, t) || zero_file_pages(p) ? -1 : 0;
}

/* ---- page data ---- */

struct page_batch {
	struct iovec local[1024], remote[1024];
	int n;
	size_t bytes;
};

static int flush_batch(pid_t pid, struct page_batch *b)
{
	ssize_t n;

	if (!b->n)
		return 0;
	n = process_vm_writev(pid, b->local, b->n, b->remote, b->n, 0);
	if (n < 0 || (size_t)n != b->bytes) {
		int e = n < 0 ? errno : 0;
		return rst_fail(e, "process_vm_writev of %zu bytes of page data (%d runs from %p) into %d%s",
				b->bytes, b->n, b->remote[0].iov_base, pid, n >= 0 ? ": short write" : "");
	}
	b->n = 0;
	b->bytes = 0;
	return 0;
}

static int vdso_compare(struct rst_image *img, struct rst_proc *p, uint64_t addr, const unsigned char *page,
			size_t len)
{
	struct rst_vma *vd = image_vdso(p);
	const unsigned char *live = (const unsigned char *)(uintptr_t)(img->vdso_rt + (addr - vd->start));

	if (addr + len > vd->end || memcmp(live, page, len))
		return rst_fail(0, "process %d: the image's vDSO differs from the running kernel's (first "
				"difference in the page at %#llx; image from kernel %s): the restored program's "
				"calls into it would break, refusing", p->pid, (unsigned long long)addr,
				img->kernel ? img->kernel : "?");
	return 0;
}

static int add_piece(struct rst_image *img, struct rst_proc *p, struct page_batch *b, uint64_t addr,
		     const unsigned char *src, size_t len)
{
	struct rst_vma *v = rst_find_vma(p, addr);

	if (v && v->kind == VK_VDSO)
		return vdso_compare(img, p, addr, src, len);
	if (v && v->kind == VK_VVAR)
		return 0;
	if (b->n == 1024 && flush_batch(p->pid, b))
		return -1;
	b->local[b->n].iov_base = (void *)src;
	b->local[b->n].iov_len = len;
	b->remote[b->n].iov_base = (void *)(uintptr_t)addr;
	b->remote[b->n].iov_len = len;
	b->n++;
	b->bytes += len;
	return 0;
}

static size_t first_run(struct rst_proc *p, uint64_t key)
{
	uint64_t lower = key > p->max_run ? key - p->max_run : 0;
	size_t lo = 0, hi = p->nruns;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->runs[mid]->store_index < lower)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int rst_write_pages(struct rst_image *img, struct rst_proc *p, uint64_t key, const unsigned char *buf,
		    size_t len)
{
	uint64_t n = len / 4096, end = key + n;
	struct page_batch *b;
	int rc = -1;

	if (!n || len % 4096)
		return rst_fail(0, "process %d: PAGEDATA at store index %llu is not whole pages", p->pid,
				(unsigned long long)key);
	if (key != p->store_next)
		return rst_fail(0, "process %d: PAGEDATA starts at store index %llu, expected %llu (gap, "
				"overlap or out of order)", p->pid, (unsigned long long)key,
				(unsigned long long)p->store_next);
	p->store_next = end;
	b = malloc(sizeof *b);
	if (!b)
		return rst_fail(ENOMEM, "allocating an iovec batch");
	b->n = 0;
	b->bytes = 0;
	for (size_t i = first_run(p, key); i < p->nruns && p->runs[i]->store_index < end; i++) {
		struct cryo_pagemap_entry *e = p->runs[i];
		uint64_t s = e->store_index > key ? e->store_index : key;
		uint64_t stop = e->store_index + e->page_count < end ? e->store_index + e->page_count : end;
		if (s >= stop)
			continue;
		if (add_piece(img, p, b, e->vaddr + (s - e->store_index) * 4096, buf + (s - key) * 4096,
			      (stop - s) * 4096))
			goto out;
	}
	rc = flush_batch(p->pid, b);
out:
	free(b);
	return rc;
}

/* ---- after the pages ---- */

static int restore_prot(struct rst_proc *p, struct rst_task *t, struct rst_vma *v)
{
	long r;

	if (!v->needs_write || (v->prot & PROT_WRITE))
		return 0;
	if (rcall(t, &r, SYS_mprotect, v->start, v->end - v->start, v->prot, 0, 0, 0))
		return -1;
	if (r < 0)
		return rst_fail(-r, "mprotect %#llx-%#llx back to %d in %d", (unsigned long long)v->start,
				(unsigned long long)v->end, v->prot, p->pid);
	return 0;
}

static int advise(struct rst_proc *p, struct rst_task *t, struct rst_vma *v)
{
	static const struct { unsigned flag; int advice; const char *name; } table[] = {
		{ VMF_DD, MADV_DONTDUMP, "MADV_DONTDUMP" }, { VMF_DC, MADV_DONTFORK, "MADV_DONTFORK" },
		{ VMF_WF, MADV_WIPEONFORK, "MADV_WIPEONFORK" }, { VMF_HG, MADV_HUGEPAGE, "MADV_HUGEPAGE" },
		{ VMF_NH, MADV_NOHUGEPAGE, "MADV_NOHUGEPAGE" }, { VMF_MG, MADV_MERGEABLE, "MADV_MERGEABLE" },
	};
	long r;

	if (v->vmflags & VMF_LO) {
		if (rcall(t, &r, SYS_mlock, v->start, v->end - v->start, 0, 0, 0, 0))
			return -1;
		if (r < 0)
			rst_warn("process %d: mlock of %#llx-%#llx: %s; it stays unlocked", p->pid,
				 (unsigned long long)v->start, (unsigned long long)v->end, rst_errname(-r));
	}
	for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
		if (!(v->vmflags & table[i].flag))
			continue;
		if (rcall(t, &r, SYS_madvise, v->start, v->end - v->start, table[i].advice, 0, 0, 0))
			return -1;
		if (r < 0)
			rst_warn("process %d: %s on %#llx-%#llx: %s", p->pid, table[i].name,
				 (unsigned long long)v->start, (unsigned long long)v->end, rst_errname(-r));
	}
	return 0;
}

static int name_anon(struct rst_proc *p, struct rst_task *t, struct rst_vma *v)
{
	const char *n = v->name;
	const char *prefix = !strncmp(n ? n : "", "[anon:", 6) ? "[anon:" :
			     !strncmp(n ? n : "", "[anon_shmem:", 12) ? "[anon_shmem:" : NULL;
	char name[256];
	long r;

	if (!prefix)
		return 0;
	snprintf(name, sizeof name, "%s", n + strlen(prefix));
	name[strcspn(name, "]")] = 0;
	if (rst_write_mem(t->tid, t->scratch, name, strlen(name) + 1))
		return -1;
	if (rcall(t, &r, SYS_prctl, PR_SET_VMA, PR_SET_VMA_ANON_NAME, v->start, v->end - v->start, t->scratch, 0))
		return -1;
	if (r < 0)
		rst_warn("process %d: naming %#llx-%#llx \"%s\": %s", p->pid, (unsigned long long)v->start,
			 (unsigned long long)v->end, name, rst_errname(-r));
	return 0;
}

/* struct prctl_mm_map of the kernel ABI */
struct mm_map {
	uint64_t f[11];
	uint64_t auxv;
	uint32_t auxv_size;
	uint32_t exe_fd;
};

static int set_mm(struct rst_proc *p, struct rst_task *t)
{
	struct mm_map m;
	size_t auxv_len = p->auxv_len > 52 * 8 ? 52 * 8 : p->auxv_len;
	int exe = -1;
	long r;

	if (!p->has_mm)
		return 0;
	memset(&m, 0, sizeof m);
	memcpy(m.f, p->mm, sizeof m.f);
	m.auxv = t->scratch + 512;
	m.auxv_size = (uint32_t)(auxv_len & ~15ul);
	if (p->exe && (exe = remote_open(t, p->exe, O_RDONLY, "/proc/PID/exe")) < 0) {
		rst_warn("process %d: %s; /proc/%d/exe will point to the helper", p->pid, rst_error(), p->pid);
		rst_error_clear();
		exe = -1;
	}
	m.exe_fd = (uint32_t)exe;
	if (rst_write_mem(t->tid, m.auxv, p->auxv, m.auxv_size) ||
	    rst_write_mem(t->tid, t->scratch + 4096, &m, sizeof m))
		return -1;
	if (rcall(t, &r, SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, t->scratch + 4096, sizeof m, 0, 0))
		return -1;
	if (exe >= 0) {
		long ignored;
		if (rcall(t, &ignored, SYS_close, exe, 0, 0, 0, 0, 0))
			return -1;
	}
	if (r < 0)
		return rst_fail(-r, "PR_SET_MM_MAP (brk %#llx-%#llx, stack %#llx, args %#llx-%#llx) in %d",
				(unsigned long long)p->mm[4], (unsigned long long)p->mm[5],
				(unsigned long long)p->mm[6], (unsigned long long)p->mm[7],
				(unsigned long long)p->mm[8], p->pid);
	return 0;
}

int rst_finish_mm(struct rst_image *img, struct rst_proc *p)
{
	struct rst_task *t = &p->tasks[0];

	(void)img;
	if (p->store_next < p->store_pages)
		return rst_fail(0, "process %d: the image ended after %llu of its %llu stored pages", p->pid,
				(unsigned long long)p->store_next, (unsigned long long)p->store_pages);
	for (int i = 0; i < p->nvmas; i++) {
		struct rst_vma *v = &p->vmas[i];
		if (v->kind == VK_VDSO || v->kind == VK_VVAR || v->kind == VK_VSYSCALL)
			continue;
		if (restore_prot(p, t, v) || advise(p, t, v) || name_anon(p, t, v))
			return -1;
	}
	return set_mm(p, t);
}
