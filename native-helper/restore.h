/* The restore side of cryo-helper: the decoded image model and the interfaces between the restore_*.c
 * files. restore.c orchestrates; restore_model.c decodes metadata; restore_proc.c creates the process
 * tree; restore_files.c rebuilds descriptors; restore_remote.c runs syscalls inside stopped tracees;
 * restore_mem.c rebuilds address spaces; restore_thread.c does threads, registers and signals. */
#ifndef CRYO_RESTORE_H
#define CRYO_RESTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"
#include "image_read.h"
#include "msgpack_read.h"

#define RST_NSIG 64
#define RST_NRLIMIT 16
#define RST_REGS_WORDS 27

/* Error reporting: the first failure is the most precise one; later ones only add nothing. */
int rst_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rst_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void rst_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *rst_error(void);
void rst_error_clear(void);     /* after a failure that is only warned about */
const char *rst_errname(int err);
extern int rst_verbose;

enum rst_vma_kind { VK_ANON, VK_HEAP, VK_STACK, VK_FILE, VK_SHMEM, VK_MEMFD, VK_DELETED, VK_VDSO,
		    VK_VVAR, VK_VSYSCALL, VK_UNKNOWN };

/* VmFlags of smaps that change how a VMA is mapped or advised */
enum {
	VMF_GD = 1 << 0,  /* grows down */
	VMF_NR = 1 << 1,  /* no reserve */
	VMF_DD = 1 << 2,  /* don't dump */
	VMF_DC = 1 << 3,  /* don't copy on fork */
	VMF_WF = 1 << 4,  /* wipe on fork */
	VMF_HG = 1 << 5,  /* huge page advised */
	VMF_NH = 1 << 6,  /* no huge page advised */
	VMF_MG = 1 << 7,  /* mergeable */
	VMF_LO = 1 << 8,  /* locked */
	VMF_SS = 1 << 9,  /* shadow stack */
};

struct rst_vma {
	uint64_t start, end, offset, inode;
	uint32_t dev_major, dev_minor;
	int prot, shared, kind;
	unsigned vmflags;
	char *name, *path;
	int needs_write;            /* pages of the image go here: map writable until they are in */
};

struct rst_thread {
	int tid;
	char comm[16];
	uint64_t regs[RST_REGS_WORDS];
	char restart[16];
	unsigned char *xstate;
	size_t xstate_len;
	uint64_t xfeatures;
	uint64_t fs_base, gs_base;
	uint64_t sigmask;
	const unsigned char **pending; /* 128-byte siginfo each */
	int npending;
	uint64_t clear_child_tid;
	uint64_t robust_head, robust_len;
	int has_rseq;
	uint64_t rseq_ptr, rseq_size, rseq_sig;
	uint64_t ss_sp, ss_size;
	int64_t ss_flags;
};

enum rst_fd_action { FA_OPEN, FA_DIR, FA_PIPE, FA_FIFO, FA_GHOST, FA_INHERIT, FA_NULL, FA_MEMFD, FA_EVENTFD,
		     FA_SIGNALFD, FA_TIMERFD, FA_EPOLL, FA_SOCKET };

struct rst_fd {
	int fd;
	char *type;
	char *path;
	int flags, cloexec;
	int64_t pos;
	uint64_t mode, size, inode;
	int deleted;
	int64_t content_blob;       /* -1: none */
	int is_pipe;
	uint64_t pipe_inode;
	int64_t pipe_blob;          /* -1: none */
	uint64_t pipe_len;          /* dataLength */
	char *socket_desc;
	const struct mp_node *fdinfo; /* remaining fdinfo lines, name -> text */
	const struct mp_node *fdinfo_parent; /* the whole descriptor map */
	int action;
	int pipe_slot;              /* index into image pipes for FA_PIPE */
	int shared_slot;            /* index into image shared objects for FA_MEMFD */
	int socket_slot;            /* index into image sockets for FA_SOCKET */
};

struct rst_sigaction {
	int present;
	uint64_t handler, flags, restorer, mask;
};

struct rst_proc {
	int pid, ppid, pgid, sid;
	char *comm, *exe, *cwd, *root;
	int umask;
	char state;                 /* letter of /proc/PID/stat before the freeze */
	int64_t personality;
	int64_t uid[4], gid[4];
	int64_t *groups;
	int ngroups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int64_t seccomp;
	int has_rlimit[RST_NRLIMIT];
	uint64_t rlim[RST_NRLIMIT][2];
	uint64_t mm[11];            /* prctl_mm_map order: see restore_model.c */
	int has_mm;
	const unsigned char *auxv;
	size_t auxv_len;
	struct rst_sigaction sigact[RST_NSIG];
	const unsigned char **pending_shared;
	int npending_shared;
	struct rst_thread *threads;
	int nthreads;
	struct rst_vma *vmas;
	int nvmas;
	struct rst_fd *fds;
	int nfds;
	struct cryo_pagemap_entry *pagemap;
	size_t npagemap;
	struct cryo_pagemap_entry **runs; /* DATA runs sorted by store index */
	size_t nruns;
	uint64_t store_pages;       /* N: one past the highest store index referenced */
	uint64_t store_next;        /* next PAGEDATA key expected while streaming */
	uint64_t max_run;           /* longest DATA run, pages */
	int parent;                 /* index of the parent in image procs, -1 for a root */
	/* kept alive: strings and bins above point into these */
	unsigned char *meta_buf;
	struct mp_node *meta;
	/* runtime */
	int created;
	struct rst_task *tasks;     /* one per thread once seized/created */
	int ntasks;
};

struct rst_blob {
	uint64_t id;
	unsigned char *data;
	size_t len;
};

struct rst_pipe {
	uint64_t inode;
	const char *fifo;           /* a named FIFO: its path (its bytes go in through a helper end) */
	int64_t blob;
	int readers, writers;
	int fds[2];                 /* in the helper, above every image fd */
};

/* A shared memory object (shared anonymous memory or a memfd) that several VMAs or descriptors, in one
 * or several processes, refer to by inode: created once in the helper so that every user shares it. */
struct rst_shared {
	uint64_t inode;
	int is_memfd;
	char name[64];
	uint64_t size;
	int64_t blob;               /* memfd content, if a descriptor carried it */
	int fd;                     /* memfd: in the helper, above every image fd */
	uint64_t addr;              /* shared anonymous memory: mapped in the helper (inherited) */
};

/* A listening or unconnected socket, made once in the helper and inherited (restore_socket.c). */
struct rst_sock {
	uint64_t inode;
	int fd;                     /* in the helper, above every image fd */
	const struct rst_fd *first; /* the descriptor it is made from */
};

struct rst_skip {
	int pid;                    /* 0: any process */
	int fd;
};

struct rst_options {
	const char *input;
	int detach;
	struct rst_skip *skips;
	int nskips;
};

struct rst_image {
	int root_pid;
	char *kernel;
	int *pids;
	int npids;
	struct rst_proc *procs;
	int nprocs;
	struct rst_blob *blobs;
	int nblobs;
	struct rst_pipe *pipes;
	int npipes;
	struct rst_shared *shared;
	int nshared;
	struct rst_sock *sockets;
	int nsockets;
	unsigned char *meta_buf;
	struct mp_node *meta;
	/* helper-side resources */
	int fd_base;                /* every helper fd the children inherit is >= this */
	int stdio_fd[3];            /* the restorer's stdio, kept for FA_INHERIT */
	int null_fd;
	int ready_rd, ready_wr;     /* children report readiness or an error here */
	uint64_t tramp;             /* trampoline + scratch area, inherited by every child */
	size_t tramp_size;
	uint64_t vdso_rt, vdso_rt_size;  /* the helper's own [vdso] */
	const struct rst_options *opts;
};

/* restore_model.c */
int rst_load_meta(struct rst_image *img, const struct img_section *s, unsigned char *buf);
int rst_load_process(struct rst_image *img, const struct img_section *s, unsigned char *buf);
int rst_load_pagemap(struct rst_image *img, const struct img_section *s, const unsigned char *buf);
int rst_load_blob(struct rst_image *img, const struct img_section *s, unsigned char *buf);
int rst_check_model(struct rst_image *img);
struct rst_proc *rst_find_proc(struct rst_image *img, int pid);
struct rst_blob *rst_find_blob(struct rst_image *img, int64_t id);
struct rst_vma *rst_find_vma(struct rst_proc *p, uint64_t addr);
void rst_free_image(struct rst_image *img);

/* restore_files.c */
int rst_plan_fds(struct rst_image *img);          /* before anything is created */
int rst_prepare_pipes(struct rst_image *img);     /* in the helper, before the tree is created */
int rst_child_fds(struct rst_image *img, struct rst_proc *p, char *err, size_t errlen);
void rst_close_pipes(struct rst_image *img);
struct rst_task;
int rst_close_helper_fds(struct rst_image *img, struct rst_task *t);

/* restore_anonfd.c */
int rst_anonfd_action(const struct rst_fd *f);      /* FA_* or -1 */
int rst_anonfd_open(const struct rst_fd *f, char *err, size_t len);
int rst_epoll_watches(const struct rst_fd *f, char *err, size_t len);

/* restore_socket.c */
int rst_socket_restorable(const struct rst_fd *f, const char **why);
int rst_socket_slot(struct rst_image *img, const struct rst_fd *f);
int rst_prepare_sockets(struct rst_image *img);
void rst_close_sockets(struct rst_image *img);

/* restore_shared.c */
int rst_plan_shared(struct rst_image *img);         /* before anything is created */
int rst_prepare_shared(struct rst_image *img);      /* in the helper, before the tree is created */
struct rst_shared *rst_find_shared(struct rst_image *img, uint64_t inode);
int rst_is_shared_vma(const struct rst_vma *v);
void rst_release_shared(struct rst_image *img);
int rst_map_free_area(struct rst_image *img, size_t size, int prot, int flags, int fd, uint64_t *out);

/* restore_proc.c */
int rst_preflight_pids(struct rst_image *img);
int rst_create_tree(struct rst_image *img);
void rst_kill_all(struct rst_image *img);
int rst_reap_all(void);

/* restore_remote.c: one stopped thread of a restored process, and syscalls run inside it through
 * the trampoline page (syscall instruction at img->tramp) by remote_run (remote.c). */
struct rst_task {
	pid_t tid;
	uint64_t tramp;             /* address of the `syscall` instruction */
	uint64_t scratch;           /* scratch area for syscall arguments */
	size_t scratch_size;
	uint64_t stack_top;         /* rsp while running injected syscalls */
	int attached;
	unsigned long long base_regs[RST_REGS_WORDS];
};

int rst_task_seize(struct rst_task *t, pid_t tid, const struct rst_image *img);
int rst_task_wait_new(struct rst_task *t, pid_t tid, const struct rst_image *img);
/* Runs syscall nr in the tracee; *ret gets its raw return (-errno on failure). -1 only if ptrace
 * itself failed (message recorded). */
int rst_syscall(struct rst_task *t, long *ret, long nr, uint64_t a1, uint64_t a2, uint64_t a3,
		uint64_t a4, uint64_t a5, uint64_t a6);
/* The same, for clone3 of a thread: also returns the new thread's tid via *ret. */
int rst_write_mem(pid_t pid, uint64_t addr, const void *buf, size_t len);
int rst_read_mem(pid_t pid, uint64_t addr, void *buf, size_t len);
int rst_task_detach(struct rst_task *t);

/* restore_mem.c */
int rst_check_vdso_layout(struct rst_image *img);   /* before anything is created */
int rst_rebuild_mm(struct rst_image *img, struct rst_proc *p);
int rst_write_pages(struct rst_image *img, struct rst_proc *p, uint64_t key, const unsigned char *buf,
		    size_t len);
int rst_finish_mm(struct rst_image *img, struct rst_proc *p);
int rst_check_file_vmas(struct rst_image *img);      /* before anything is created */
int rst_precheck_vdso(struct rst_image *img, struct img_reader *r); /* the same, for a regular file */

/* restore_thread.c */
int rst_check_cpu(struct rst_image *img);            /* before anything is created */
int rst_finish_process(struct rst_image *img, struct rst_proc *p);
int rst_detach_process(struct rst_image *img, struct rst_proc *p);

#endif
