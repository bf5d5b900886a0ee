/* See memory.h. */
#include "memory.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "errmsg.h"
#include "format.h"
#include "pagewriter.h"
#include "proc.h"

#define PAGE CRYO_PAGE_SIZE
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE    (1ull << 61)
#define PM_PFN     ((1ull << 55) - 1)
/* pagemap entries read per pread (512 KiB of entries, 256 MiB of address space). */
#define PAGEMAP_BATCH 65536
/* Pages read per process_vm_readv: 8 MiB, cut into 1 MiB PAGEDATA sections. */
#define READ_BATCH 2048
#define MAX_IOV 1024

/* Which pages of a VMA the image stores (FORMAT.md §5.3). */
enum policy {
	STORE_NOTHING,
	STORE_ALL,        /* [vdso]: every page, present or not */
	STORE_PRESENT,    /* anonymous memory, [heap], [stack]: present or swapped pages */
	STORE_COPIED,     /* private file mappings: pages no longer backed by the file */
	STORE_OBJECT,     /* shmem, memfd, deleted files: present pages and every page holding data in
			   * the backing object (its only copy may be in there, not in our page tables) */
};

/* ---------------------------------------------------------------- VMAs */

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static const char *vma_kind(const struct vma *v)
{
	const char *n = v->name;

	if (!strcmp(n, "[heap]"))
		return "heap";
	if (!strcmp(n, "[stack]"))
		return "stack";
	if (!strcmp(n, "[vdso]"))
		return "vdso";
	if (!strcmp(n, "[vvar]") || !strcmp(n, "[vvar_vclock]"))
		return "vvar";
	if (!strcmp(n, "[vsyscall]"))
		return "vsyscall";
	if (!strncmp(n, "/memfd:", 7))
		return "memfd";
	/* Shared anonymous memory is a deleted /dev/zero inode; SysV segments are /SYSV<key>. */
	if (!strncmp(n, "[anon_shmem:", 12) || !strncmp(n, "/SYSV", 5) ||
	    (v->shared && !strcmp(n, "/dev/zero (deleted)")))
		return "shmem";
	if (n[0] == '/' && ends_with(n, " (deleted)"))
		return "deleted";
	if (n[0] == '/')
		return "file";
	return "anon";
}

static int has_vmflag(const struct vma *v, const char *flag)
{
	for (const char *p = v->vmflags; p && *p; p += strspn(p, " ")) {
		size_t len = strcspn(p, " ");
		if (len == strlen(flag) && !strncmp(p, flag, len))
			return 1;
		p += len;
	}
	return 0;
}

static enum policy vma_policy(const struct vma *v)
{
	const char *k = v->kind;

	/* Device memory (VM_IO / VM_PFNMAP) cannot be read back as pages. */
	if (has_vmflag(v, "io") || has_vmflag(v, "pf"))
		return STORE_NOTHING;
	if (!strcmp(k, "vvar") || !strcmp(k, "vsyscall"))
		return STORE_NOTHING;
	if (!strcmp(k, "vdso"))
		return STORE_ALL;
	if (!strcmp(k, "file"))
		return v->shared ? STORE_NOTHING : STORE_COPIED;
	if (!strcmp(k, "shmem") || !strcmp(k, "memfd") || !strcmp(k, "deleted"))
		return STORE_OBJECT;
	return STORE_PRESENT;
}

static int parse_vma_header(const char *line, struct vma *v)
{
	unsigned long long start, end, offset, inode;
	char perms[8];
	int name_at = 0;

	memset(v, 0, sizeof *v);
	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &offset, &v->dev_major,
		   &v->dev_minor, &inode, &name_at) < 7 || !name_at)
		return -1;
	v->start = start, v->end = end, v->offset = offset, v->inode = inode;
	v->prot = (perms[0] == 'r') | (perms[1] == 'w') << 1 | (perms[2] == 'x') << 2;
	v->shared = perms[3] == 's';
	const char *name = line + name_at;
	v->name = strndup(name, strcspn(name, "\n"));
	if (!v->name)
		return -1;
	v->kind = vma_kind(v);
	if (v->name[0] == '/') {
		size_t len = strlen(v->name);
		if (ends_with(v->name, " (deleted)"))
			len -= strlen(" (deleted)");
		v->path = strndup(v->name, len);
		if (!v->path)
			return -1;
	}
	return 0;
}

static int add_vma(struct memory *m, const struct vma *v, size_t *cap)
{
	if (m->nvmas == *cap) {
		struct vma *p = realloc(m->vmas, (*cap = *cap ? *cap * 2 : 64) * sizeof *p);
		if (!p)
			return -1;
		m->vmas = p;
	}
	m->vmas[m->nvmas++] = *v;
	return 0;
}

static int is_vma_header(const char *line)
{
	const char *p = line;
	while ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))
		p++;
	return p > line && *p == '-';
}

/* smaps has the maps lines, each followed by "Key: value" lines, VmFlags among them. */
static int read_vmas(struct memory *m)
{
	char *text, *line, *next;
	size_t cap = 0;
	struct vma *cur = NULL;

	if (proc_readf(&text, NULL, "/proc/%d/smaps", m->pid))
		return -1;
	for (line = text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		if (is_vma_header(line)) {
			struct vma v;
			if (parse_vma_header(line, &v) || add_vma(m, &v, &cap)) {
				free(v.name);
				free(v.path);
				free(text);
				return cryo_fail(0, "parse /proc/%d/smaps line \"%s\"", m->pid, line);
			}
			cur = &m->vmas[m->nvmas - 1];
		} else if (cur && !strncmp(line, "VmFlags:", 8)) {
			const char *p = line + 8;
			p += strspn(p, " ");
			cur->vmflags = strdup(p);
			size_t n = cur->vmflags ? strlen(cur->vmflags) : 0;
			while (n && cur->vmflags[n - 1] == ' ')
				cur->vmflags[--n] = 0;
		}
	}
	free(text);
	return 0;
}

/* ---------------------------------------------------------------- pagemap */

static uint64_t read_own_pfn(int fd, const volatile char *p)
{
	uint64_t entry;

	(void)p[0];
	if (pread(fd, &entry, 8, (off_t)((uintptr_t)p / PAGE * 8)) != 8 || !(entry & PM_PRESENT))
		return 0;
	return entry & PM_PFN;
}

/* The PFN of the shared zero page: never-written anonymous pages that were only read map it, and
 * pages of the target mapped to it are recorded as ZERO runs instead of being stored. It is only
 * trusted when two separate read-faulted pages of ours show the same PFN (a kernel may give each
 * read fault a page of its own, and a PFN freed by us could later hold the target's data). 0 when
 * unknown, which disables the detection (PFNs also read as 0 without CAP_SYS_ADMIN). */
static uint64_t zero_pfn(void)
{
	static int done;
	static uint64_t pfn;

	if (done)
		return pfn;
	done = 1;
	char *p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		uint64_t a = read_own_pfn(fd, p), b = read_own_pfn(fd, p + PAGE);
		if (a && a == b)
			pfn = a;
		close(fd);
	}
	munmap(p, 2 * PAGE);
	return pfn;
}

/* new_vma: the page starts a VMA. Runs never cross a VMA boundary, so that each run belongs to one
 * VMA (and one protection) for readers and restorers. */
static int push_run(struct memory *m, uint64_t vaddr, uint16_t kind, int new_vma)
{
	struct page_run *last = m->nruns && !new_vma ? &m->runs[m->nruns - 1] : NULL;

	/* Extend the previous run when this page continues it (DATA store indices are consecutive
	 * because they are handed out in address order). */
	if (last && last->kind == kind && last->vaddr + (uint64_t)last->count * PAGE == vaddr &&
	    last->count < UINT32_MAX) {
		last->count++;
	} else {
		if (m->nruns == m->runs_cap) {
			size_t cap = m->runs_cap ? m->runs_cap * 2 : 256;
			struct page_run *p = realloc(m->runs, cap * sizeof *p);
			if (!p)
				return cryo_fail(ENOMEM, "grow the page map of process %d", m->pid);
			m->runs = p;
			m->runs_cap = cap;
		}
		m->runs[m->nruns++] = (struct page_run){
			.vaddr = vaddr,
			.store_index = kind == CRYO_PAGE_DATA ? m->store_pages : 0,
			.count = 1,
			.kind = kind,
		};
	}
	if (kind == CRYO_PAGE_DATA)
		m->store_pages++;
	else
		m->zero_pages++;
	return 0;
}

/* Returns -1 (not stored), CRYO_PAGE_DATA or CRYO_PAGE_ZERO for one pagemap entry. */
static int classify(enum policy pol, uint64_t e, uint64_t zpfn)
{
	int present = (e & PM_PRESENT) != 0, swapped = (e & PM_SWAPPED) != 0;

	switch (pol) {
	case STORE_ALL:
		return CRYO_PAGE_DATA;
	case STORE_OBJECT:
	case STORE_PRESENT:
		if (present && zpfn && (e & PM_PFN) == zpfn && !(e & PM_FILE))
			return CRYO_PAGE_ZERO;
		return present || swapped ? CRYO_PAGE_DATA : -1;
	case STORE_COPIED:
		/* A page copied on write is anonymous: present without the file bit, or swapped out. */
		return (present && !(e & PM_FILE)) || swapped ? CRYO_PAGE_DATA : -1;
	case STORE_NOTHING:
		break;
	}
	return -1;
}

/* The byte ranges of a VMA's backing object (shmem segment, memfd, deleted file) that hold data,
 * as file offsets, clipped to the file size and to the part the VMA maps. Found by SEEK_DATA /
 * SEEK_HOLE on the object itself, opened through /proc/PID/map_files (needs CAP_SYS_ADMIN). */
struct object_data {
	uint64_t *start, *end;
	size_t n;
	int known;   /* 0: the object could not be examined; only present pages are stored */
};

static int add_range(struct object_data *od, uint64_t start, uint64_t end)
{
	uint64_t *s = realloc(od->start, (od->n + 1) * sizeof *s);
	if (s)
		od->start = s;
	uint64_t *e = realloc(od->end, (od->n + 1) * sizeof *e);
	if (e)
		od->end = e;
	if (!s || !e)
		return cryo_fail(ENOMEM, "list the data ranges of a mapping");
	od->start[od->n] = start;
	od->end[od->n++] = end;
	return 0;
}

static int object_ranges(pid_t pid, const struct vma *v, struct object_data *od)
{
	char path[96];
	struct stat st;
	int rc = 0;

	memset(od, 0, sizeof *od);
	snprintf(path, sizeof path, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, v->start, v->end);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME);
	if (fd < 0)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		cryo_warn("open %s: %s; storing only the present pages of %s", path, cryo_errname(errno), v->name);
		if (fd >= 0)
			close(fd);
		return 0;
	}
	uint64_t limit = v->offset + (v->end - v->start);
	if ((uint64_t)st.st_size < limit)
		limit = (uint64_t)st.st_size;
	for (uint64_t off = v->offset; off < limit && !rc;) {
		off_t data = lseek(fd, (off_t)off, SEEK_DATA);
		if (data < 0 || (uint64_t)data >= limit)
			break; /* ENXIO: no data after off */
		off_t hole = lseek(fd, data, SEEK_HOLE);
		uint64_t end = hole < 0 || (uint64_t)hole > limit ? limit : (uint64_t)hole;
		rc = add_range(od, (uint64_t)data, end);
		off = end;
	}
	close(fd);
	od->known = 1;
	return rc;
}

static int in_object(const struct object_data *od, size_t *cursor, uint64_t off)
{
	while (*cursor < od->n && od->end[*cursor] <= off)
		(*cursor)++;
	return *cursor < od->n && od->start[*cursor] <= off + PAGE - 1 && off < od->end[*cursor];
}

static int scan_vma(struct memory *m, int fd, const struct vma *v, uint64_t *entries)
{
	enum policy pol = vma_policy(v);
	uint64_t zpfn = zero_pfn();
	struct object_data od = { 0 };
	size_t cursor = 0;
	int rc = -1;

	if (pol == STORE_NOTHING)
		return 0;
	if (pol == STORE_OBJECT && object_ranges(m->pid, v, &od))
		return -1;
	for (uint64_t addr = v->start; addr < v->end;) {
		size_t n = (v->end - addr) / PAGE;
		if (n > PAGEMAP_BATCH)
			n = PAGEMAP_BATCH;
		if (pol != STORE_ALL) {
			ssize_t r = pread(fd, entries, n * 8, (off_t)(addr / PAGE * 8));
			if (r != (ssize_t)(n * 8)) {
				cryo_fail(r < 0 ? errno : EIO, "read /proc/%d/pagemap at 0x%" PRIx64, m->pid, addr);
				goto out;
			}
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t page = addr + i * PAGE;
			int kind = classify(pol, pol == STORE_ALL ? 0 : entries[i], zpfn);
			if (kind < 0 && od.known && in_object(&od, &cursor, v->offset + (page - v->start)))
				kind = CRYO_PAGE_DATA;
			if (kind >= 0 && push_run(m, page, (uint16_t)kind, page == v->start))
				goto out;
		}
		addr += n * PAGE;
	}
	rc = 0;
out:
	free(od.start);
	free(od.end);
	return rc;
}

int memory_scan(pid_t pid, struct memory *m)
{
	char path[64];
	uint64_t *entries = NULL;
	int fd = -1, rc = -1;

	memset(m, 0, sizeof *m);
	m->pid = pid;
	if (read_vmas(m))
		return -1;
	snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cryo_fail(errno, "open %s", path);
		goto out;
	}
	entries = malloc(PAGEMAP_BATCH * sizeof *entries);
	if (!entries) {
		cryo_fail(ENOMEM, "allocate pagemap buffer");
		goto out;
	}
	for (size_t i = 0; i < m->nvmas; i++)
		if (scan_vma(m, fd, &m->vmas[i], entries))
			goto out;
	rc = 0;
out:
	free(entries);
	if (fd >= 0)
		close(fd);
	return rc;
}

void memory_free(struct memory *m)
{
	for (size_t i = 0; i < m->nvmas; i++) {
		free(m->vmas[i].name);
		free(m->vmas[i].path);
		free(m->vmas[i].vmflags);
	}
	free(m->vmas);
	free(m->runs);
	memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- metadata */

static void encode_vmflags(struct mpw *w, const char *flags)
{
	mpw_array(w);
	for (const char *p = flags; p && *p;) {
		size_t len = strcspn(p, " ");
		if (len)
			mpw_text(w, p, len);
		p += len;
		p += strspn(p, " ");
	}
	mpw_end(w);
}

void memory_encode_vmas(struct mpw *w, const struct memory *m)
{
	mpw_array(w);
	for (size_t i = 0; i < m->nvmas; i++) {
		const struct vma *v = &m->vmas[i];
		mpw_map(w);
		mpw_kuint(w, "start", v->start);
		mpw_kuint(w, "end", v->end);
		mpw_kint(w, "prot", v->prot);
		mpw_kbool(w, "shared", v->shared);
		mpw_kuint(w, "offset", v->offset);
		mpw_str(w, "dev");
		mpw_array(w);
		mpw_uint(w, v->dev_major);
		mpw_uint(w, v->dev_minor);
		mpw_end(w);
		mpw_kuint(w, "inode", v->inode);
		mpw_ktext(w, "name", v->name);
		mpw_ktext(w, "path", v->path);
		mpw_kstr(w, "kind", v->kind);
		mpw_str(w, "vmFlags");
		encode_vmflags(w, v->vmflags);
		mpw_end(w);
	}
	mpw_end(w);
}

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

int memory_pagemap_payload(const struct memory *m, unsigned char **buf, size_t *len)
{
	*buf = NULL;
	*len = 0;
	if (!m->nruns)
		return 0;
	unsigned char *p = calloc(m->nruns, CRYO_PAGEMAP_ENTRY_SIZE);
	if (!p)
		return cryo_fail(ENOMEM, "build the page map of process %d", m->pid);
	for (size_t i = 0; i < m->nruns; i++) {
		unsigned char *e = p + i * CRYO_PAGEMAP_ENTRY_SIZE;
		put_le(e, m->runs[i].vaddr, 8);
		put_le(e + 8, m->runs[i].count, 4);
		put_le(e + 12, m->runs[i].kind, 2);
		put_le(e + 14, 0, 2);
		put_le(e + 16, m->runs[i].store_index, 8);
	}
	*buf = p;
	*len = m->nruns * CRYO_PAGEMAP_ENTRY_SIZE;
	return 0;
}

/* ---------------------------------------------------------------- page contents */

/* A batch: up to READ_BATCH store pages, as pieces of DATA runs. */
struct batch {
	struct iovec local[MAX_IOV], remote[MAX_IOV];
	int n;
	size_t pages;
};

/* Reads what process_vm_readv could not (pages of unreadable VMAs: PROT_NONE, exec-only), through
 * /proc/PID/mem, which uses FOLL_FORCE. */
static int read_fallback(int *memfd, pid_t pid, struct iovec *local, const struct iovec *remote, size_t skip)
{
	char path[64];
	char *dst = (char *)local->iov_base + skip;
	uint64_t src = (uint64_t)(uintptr_t)remote->iov_base + skip;
	size_t left = remote->iov_len - skip;

	if (*memfd < 0) {
		snprintf(path, sizeof path, "/proc/%d/mem", pid);
		*memfd = open(path, O_RDONLY | O_CLOEXEC);
		if (*memfd < 0)
			return cryo_fail(errno, "open %s", path);
	}
	while (left) {
		ssize_t r = pread(*memfd, dst, left, (off_t)src);
		if (r <= 0)
			return cryo_fail(r < 0 ? errno : EIO, "read page 0x%" PRIx64 " of process %d", src, pid);
		dst += r, src += r, left -= r;
	}
	return 0;
}

static int read_batch(pid_t pid, struct batch *b, int *memfd)
{
	int first = 0;

	while (first < b->n) {
		ssize_t r = process_vm_readv(pid, b->local + first, b->n - first, b->remote + first, b->n - first, 0);
		if (r < 0 && errno != EFAULT && errno != EPERM && errno != ENOMEM)
			return cryo_fail(errno, "process_vm_readv pages of process %d", pid);
		size_t got = r < 0 ? 0 : (size_t)r;
		/* Skip the pieces read in full; the first short one is finished through /proc/PID/mem. */
		while (first < b->n && got >= b->local[first].iov_len)
			got -= b->local[first++].iov_len;
		if (first == b->n)
			break;
		if (read_fallback(memfd, pid, &b->local[first], &b->remote[first], got))
			return -1;
		first++;
	}
	return 0;
}

/* Two buffers: the page writer writes one while we read into the other. */
struct page_buffers {
	struct batch *b;
	unsigned char *buf[2];
	int cur;
	int memfd;
	uint64_t next_index;
	struct page_writer *pw;
};

/* Read the batch gathered in the current buffer, hand it to the writer, switch buffers. */
static int flush_batch(const struct memory *m, struct page_buffers *pb)
{
	struct batch *b = pb->b;

	if (!b->pages)
		return 0;
	if (read_batch(m->pid, b, &pb->memfd) || pw_submit(pb->pw, pb->buf[pb->cur], b->pages, pb->next_index))
		return -1;
	pb->next_index += b->pages;
	pb->cur ^= 1;
	b->n = 0, b->pages = 0;
	return 0;
}

static int gather_run(const struct memory *m, struct page_buffers *pb, const struct page_run *run)
{
	struct batch *b = pb->b;

	for (uint32_t used = 0; used < run->count;) {
		size_t n = run->count - used;
		if (n > READ_BATCH - b->pages)
			n = READ_BATCH - b->pages;
		b->local[b->n] = (struct iovec){ pb->buf[pb->cur] + b->pages * PAGE, n * PAGE };
		b->remote[b->n] = (struct iovec){ (void *)(uintptr_t)(run->vaddr + (uint64_t)used * PAGE), n * PAGE };
		b->n++;
		b->pages += n;
		used += n;
		if ((b->pages == READ_BATCH || b->n == MAX_IOV) && flush_batch(m, pb))
			return -1;
	}
	return 0;
}

int memory_write_pages(struct image_writer *w, const struct memory *m)
{
	struct page_buffers pb = { .memfd = -1 };
	int rc = -1;

	if (!m->store_pages)
		return 0;
	pb.b = calloc(1, sizeof *pb.b);
	pb.buf[0] = malloc((size_t)READ_BATCH * PAGE);
	pb.buf[1] = malloc((size_t)READ_BATCH * PAGE);
	if (!pb.b || !pb.buf[0] || !pb.buf[1]) {
		cryo_fail(ENOMEM, "allocate page buffers");
		goto out;
	}
	if (pw_start(&pb.pw, w, (uint32_t)m->pid))
		goto out;
	rc = 0;
	for (size_t i = 0; i < m->nruns && !rc; i++)
		if (m->runs[i].kind == CRYO_PAGE_DATA)
			rc = gather_run(m, &pb, &m->runs[i]);
	if (!rc)
		rc = flush_batch(m, &pb);
	if (pw_finish(pb.pw))
		rc = -1;
	if (!rc && pb.next_index != m->store_pages)
		rc = cryo_fail(0, "process %d: wrote %" PRIu64 " pages, page map has %" PRIu64, m->pid,
			       pb.next_index, m->store_pages);
out:
	if (pb.memfd >= 0)
		close(pb.memfd);
	free(pb.buf[0]);
	free(pb.buf[1]);
	free(pb.b);
	return rc;
}
