/* Shared memory objects (FORMAT.md §6.4 kinds `shmem` and `memfd`, §6.5 type `memfd`). Processes of a
 * tree that shared memory must share it again, and a memfd descriptor must reach the object that its
 * mappings show. Each object, known by its inode, is made once in the helper before the tree exists:
 * a memfd (filled from the descriptor's content blob, if any) or, for shared anonymous memory, a
 * MAP_SHARED|MAP_ANONYMOUS area. Every restored process inherits both; restore_mem.c maps the memfd by
 * descriptor and duplicates the anonymous area to each VMA's address (mremap with old_size 0), so the
 * object stays "/dev/zero (deleted)" shared memory. The page data of every process then lands in the
 * same pages. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "restore.h"

int rst_is_shared_vma(const struct rst_vma *v)
{
	return v->shared && (v->kind == VK_SHMEM || v->kind == VK_MEMFD);
}

struct rst_shared *rst_find_shared(struct rst_image *img, uint64_t inode)
{
	for (int i = 0; i < img->nshared; i++)
		if (img->shared[i].inode == inode)
			return &img->shared[i];
	return NULL;
}

static struct rst_shared *add_shared(struct rst_image *img, uint64_t inode, int is_memfd, const char *path)
{
	struct rst_shared *o = rst_find_shared(img, inode), *n;
	const char *name = path && !strncmp(path, "/memfd:", 7) ? path + 7 : "cryo-shmem";

	if (o)
		return o;
	n = realloc(img->shared, (img->nshared + 1) * sizeof *n);
	if (!n) {
		rst_fail(ENOMEM, "allocating shared memory objects");
		return NULL;
	}
	img->shared = n;
	o = &n[img->nshared++];
	memset(o, 0, sizeof *o);
	o->inode = inode;
	o->is_memfd = is_memfd;
	o->fd = -1;
	o->blob = -1;
	snprintf(o->name, sizeof o->name, "%s", name);
	o->name[strcspn(o->name, " ")] = 0; /* " (deleted)" */
	return o;
}

int rst_plan_shared(struct rst_image *img)
{
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		for (int k = 0; k < p->nvmas; k++) {
			struct rst_vma *v = &p->vmas[k];
			struct rst_shared *o;
			if (!rst_is_shared_vma(v))
				continue;
			o = add_shared(img, v->inode, v->kind == VK_MEMFD, v->path);
			if (!o)
				return -1;
			if (v->offset + (v->end - v->start) > o->size)
				o->size = v->offset + (v->end - v->start);
		}
		for (int k = 0; k < p->nfds; k++) {
			struct rst_fd *f = &p->fds[k];
			struct rst_shared *o;
			if (strcmp(f->type, "memfd") || f->action == FA_NULL)
				continue;
			o = add_shared(img, f->inode, 1, f->path);
			if (!o)
				return -1;
			if (f->size > o->size)
				o->size = f->size;
			if (f->content_blob >= 0)
				o->blob = f->content_blob;
			f->action = FA_MEMFD;
			f->shared_slot = (int)(o - img->shared);
		}
	}
	return 0;
}

static int fill_memfd(struct rst_image *img, struct rst_shared *o)
{
	struct rst_blob *b = o->blob >= 0 ? rst_find_blob(img, o->blob) : NULL;
	size_t done = 0;

	while (b && done < b->len) {
		ssize_t n = pwrite(o->fd, b->data + done, b->len - done, done);
		if (n < 0)
			return rst_fail(errno, "writing %zu bytes of content into memfd %s", b->len, o->name);
		done += n;
	}
	return 0;
}

static int make_memfd(struct rst_image *img, struct rst_shared *o)
{
	int fd = memfd_create(o->name, MFD_CLOEXEC);

	if (fd < 0)
		return rst_fail(errno, "memfd_create %s", o->name);
	o->fd = fcntl(fd, F_DUPFD_CLOEXEC, img->fd_base);
	close(fd);
	if (o->fd < 0)
		return rst_fail(errno, "moving memfd %s above fd %d", o->name, img->fd_base);
	if (ftruncate(o->fd, (off_t)o->size) < 0)
		return rst_fail(errno, "sizing memfd %s to %llu bytes", o->name, (unsigned long long)o->size);
	return fill_memfd(img, o);
}

int rst_prepare_shared(struct rst_image *img)
{
	for (int i = 0; i < img->nshared; i++) {
		struct rst_shared *o = &img->shared[i];
		size_t size = (o->size + 4095) & ~4095ull;
		if (o->is_memfd) {
			if (make_memfd(img, o))
				return -1;
			continue;
		}
		/* at an address no image VMA uses, so that it survives until every process has its copy */
		if (rst_map_free_area(img, size ? size : 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
				      &o->addr))
			return -1;
	}
	return 0;
}

void rst_release_shared(struct rst_image *img)
{
	for (int i = 0; i < img->nshared; i++) {
		struct rst_shared *o = &img->shared[i];
		if (o->fd >= 0)
			close(o->fd);
		o->fd = -1;
		if (o->addr)
			munmap((void *)(uintptr_t)o->addr, (o->size + 4095) & ~4095ull);
		o->addr = 0;
	}
}
