/* Processes: every process of the image gets its original PID through clone3(set_tid), created by its
 * restored parent, so parenthood is right by construction. Each new process first runs the helper's
 * own code: it creates its children, joins its session and process group, rebuilds its descriptors,
 * cwd, root, umask, personality and signal handlers (all signals blocked), reports to the helper over
 * the ready pipe and parks in pause(). The helper then takes it over with ptrace (restore_mem.c,
 * restore_thread.c). Everything done here survives the later replacement of the address space. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "restore.h"

struct ready_msg {
	int32_t pid;
	int32_t ok;
	char text[504];
};

static void read_comm(int pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(buf, len, "?");
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* The thread-group id of a task id, or 0 if no such task exists. */
static int task_tgid(int tid)
{
	char path[64], line[256];
	FILE *f;
	int tgid = 0;

	snprintf(path, sizeof path, "/proc/%d/status", tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

static int pid_taken_error(int want, const char *what, const char *comm)
{
	char holder[64], path[64], stat[512] = "", *rp;
	int tgid = task_tgid(want), zombie = 0;
	FILE *f;

	read_comm(tgid ? tgid : want, holder, sizeof holder);
	snprintf(path, sizeof path, "/proc/%d/stat", tgid ? tgid : want);
	f = fopen(path, "r");
	if (f) {
		if (fgets(stat, sizeof stat, f) && (rp = strrchr(stat, ')')) && rp[1] == ' ' && rp[2] == 'Z')
			zombie = 1;
		fclose(f);
	}
	if (tgid && tgid != want)
		return rst_fail(0, "PID %d (%s %s of the image) is taken by a thread of process %d (%s)%s; "
				"nothing was restored", want, what, comm, tgid, holder,
				zombie ? ", a zombie its parent has not reaped" : "");
	return rst_fail(0, "PID %d (%s %s of the image) is taken by process %d (%s)%s; nothing was restored",
			want, what, comm, want, holder, zombie ? ", a zombie its parent has not reaped" : "");
}

int rst_preflight_pids(struct rst_image *img)
{
	for (int i = 0; i < img->nprocs; i++) {
		struct rst_proc *p = &img->procs[i];
		for (int k = 0; k < p->nthreads; k++) {
			char path[64];
			struct stat st;
			snprintf(path, sizeof path, "/proc/%d", p->threads[k].tid);
			if (stat(path, &st) == 0)
				return pid_taken_error(p->threads[k].tid, k ? "thread of" : "process",
						       p->comm ? p->comm : "?");
		}
	}
	return 0;
}

static pid_t clone_with_pid(pid_t want)
{
	struct clone_args args;

	memset(&args, 0, sizeof args);
	args.exit_signal = SIGCHLD;
	args.set_tid = (uintptr_t)&want;
	args.set_tid_size = 1;
	return (pid_t)syscall(SYS_clone3, &args, sizeof args);
}

static void report(struct rst_image *img, struct rst_proc *p, int ok, const char *text)
{
	struct ready_msg m;

	memset(&m, 0, sizeof m);
	m.pid = p->pid;
	m.ok = ok;
	snprintf(m.text, sizeof m.text, "%s", text ? text : "");
	if (write(img->ready_wr, &m, sizeof m) < 0)
		_exit(1);
}

static void __attribute__((noreturn)) child_fail(struct rst_image *img, struct rst_proc *p, const char *text)
{
	report(img, p, 0, text);
	_exit(1);
}

/* Session and process group: a leader becomes one again; a member joins its group when that group
 * exists in its session. A session or group outside the image is kept from the restorer. */
static void child_session(struct rst_image *img, struct rst_proc *p)
{
	if (p->sid == p->pid) {
		if (setsid() < 0)
			rst_warn("process %d: setsid: %s", p->pid, rst_errname(errno));
	} else if (getsid(0) != p->sid) {
		rst_warn("process %d: its session %d is outside the image; it stays in the restorer's session %d",
			 p->pid, p->sid, getsid(0));
	}
	if (getpgid(0) == p->pgid)
		return;
	/* a group led by a sibling created after this process does not exist yet: the parent tries again
	 * once all its children exist (join_groups) */
	if (setpgid(0, p->pgid == p->pid ? 0 : p->pgid) < 0 && (p->parent < 0 || !rst_find_proc(img, p->pgid)))
		rst_warn("process %d: joining process group %d: %s; it stays in group %d", p->pid, p->pgid,
			 rst_errname(errno), getpgid(0));
}

/* Run by a restored parent once all its children exist: group leaders first (a child may not have
 * got to it yet), then the members, whose group may be led by a sibling created after them. */
static void join_groups(struct rst_image *img, int index)
{
	for (int pass = 0; pass < 2; pass++)
		for (int i = index + 1; i < img->nprocs; i++) {
			struct rst_proc *c = &img->procs[i];
			int leader = c->pgid == c->pid;
			/* a session leader makes its own group with setsid, which fails once it leads a group */
			if (c->parent != index || leader != (pass == 0) || !rst_find_proc(img, c->pgid) ||
			    c->sid == c->pid || getpgid(c->pid) == c->pgid)
				continue;
			if (setpgid(c->pid, c->pgid) < 0 && !(leader && errno == EPERM && getsid(c->pid) == c->pid))
				rst_warn("process %d: joining process group %d: %s; it stays in group %d", c->pid,
					 c->pgid, rst_errname(errno), getpgid(c->pid));
		}
}

struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

static int child_sigactions(struct rst_proc *p, char *err, size_t len)
{
	for (int s = 1; s <= RST_NSIG; s++) {
		struct rst_sigaction *a = &p->sigact[s - 1];
		struct kernel_sigaction k = { a->handler, a->flags, a->restorer, a->mask };
		if (!a->present || s == SIGKILL || s == SIGSTOP)
			continue;
		/* raw rt_sigaction: glibc's sigaction would replace sa_restorer with its own */
		if (syscall(SYS_rt_sigaction, s, &k, NULL, 8) < 0) {
			snprintf(err, len, "rt_sigaction of signal %d: %s", s, rst_errname(errno));
			return -1;
		}
	}
	return 0;
}

static int child_fs(struct rst_proc *p, char *err, size_t len)
{
	if (p->root && strcmp(p->root, "/") && chroot(p->root) < 0) {
		snprintf(err, len, "chroot %s: %s", p->root, rst_errname(errno));
		return -1;
	}
	if (p->cwd && chdir(p->cwd) < 0) {
		snprintf(err, len, "chdir %s: %s", p->cwd, rst_errname(errno));
		return -1;
	}
	umask(p->umask);
	if (personality((unsigned long)p->personality) < 0)
		rst_warn("process %d: personality %#llx: %s", p->pid, (unsigned long long)p->personality,
			 rst_errname(errno));
	return 0;
}

static void __attribute__((noreturn)) child_main(struct rst_image *img, int index, pid_t parent);

static void create_children(struct rst_image *img, int index, char *err, size_t len)
{
	struct rst_proc *p = &img->procs[index];

	for (int i = index + 1; i < img->nprocs; i++) {
		pid_t pid;
		if (img->procs[i].parent != index)
			continue;
		pid = clone_with_pid(img->procs[i].pid);
		if (pid == 0)
			child_main(img, i, p->pid);
		if (pid < 0) {
			int e = errno;
			char holder[64];
			read_comm(img->procs[i].pid, holder, sizeof holder);
			snprintf(err, len, "clone3 with set_tid %d for process %d (%s): %s%s%s", img->procs[i].pid,
				 img->procs[i].pid, img->procs[i].comm ? img->procs[i].comm : "?", rst_errname(e),
				 e == EEXIST ? ", taken by " : "", e == EEXIST ? holder : "");
			child_fail(img, p, err);
		}
	}
	join_groups(img, index);
}

/* Before it opens any path (descriptors, deleted files, cwd, root), a process restored by root takes on
 * the image's filesystem identity: its groups, fsgid and fsuid. The kernel then checks every open
 * against the image's user, and a non-zero fsuid drops the file capabilities (CAP_DAC_OVERRIDE...) from
 * the effective set, while CAP_SETUID, CAP_SYS_ADMIN, CAP_CHECKPOINT_RESTORE... stay for the rest of
 * the restore. A crafted image thus cannot get a descriptor its user could not open. The full
 * credentials follow later (restore_thread.c). A restorer that is not root restores only its own ids
 * (restore.c), so it has nothing to take on. */
static int child_identity(struct rst_proc *p, char *err, size_t len)
{
	int64_t fsuid = p->uid[3] >= 0 ? p->uid[3] : p->uid[1];
	int64_t fsgid = p->gid[3] >= 0 ? p->gid[3] : p->gid[1];
	gid_t *groups;

	if (geteuid() != 0 || fsuid == 0)
		return 0;
	if (fsuid < 0 || fsgid < 0 || fsuid > 0xfffffffeLL || fsgid > 0xfffffffeLL) {
		snprintf(err, len, "the image has no valid uid/gid for its files");
		return -1;
	}
	groups = calloc(p->ngroups ? p->ngroups : 1, sizeof *groups);
	if (!groups) {
		snprintf(err, len, "out of memory for the supplementary groups");
		return -1;
	}
	for (int i = 0; i < p->ngroups; i++)
		groups[i] = (gid_t)p->groups[i];
	if (setgroups((size_t)p->ngroups, groups) < 0) {
		snprintf(err, len, "setgroups to the image's %d groups: %s", p->ngroups, rst_errname(errno));
		free(groups);
		return -1;
	}
	free(groups);
	/* setfsuid/setfsgid return the previous id, never an error: a second call tells what took */
	setfsgid((gid_t)fsgid);
	if ((int64_t)(gid_t)setfsgid((gid_t)-1) != fsgid) {
		snprintf(err, len, "setfsgid %lld did not take", (long long)fsgid);
		return -1;
	}
	setfsuid((uid_t)fsuid);
	if ((int64_t)(uid_t)setfsuid((uid_t)-1) != fsuid) {
		snprintf(err, len, "setfsuid %lld did not take", (long long)fsuid);
		return -1;
	}
	return 0;
}

static void __attribute__((noreturn)) child_main(struct rst_image *img, int index, pid_t parent)
{
	struct rst_proc *p = &img->procs[index];
	char err[480] = "";
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* if the helper (or the restored parent, itself still helper code) dies before it has taken this
	 * process over, this process dies too instead of waiting in pause() forever; the tracer clears it
	 * again (restore_thread.c) */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	child_session(img, p);
	create_children(img, index, err, sizeof err);
	if (child_identity(p, err, sizeof err) || rst_child_fds(img, p, err, sizeof err) ||
	    child_fs(p, err, sizeof err) ||
	    child_sigactions(p, err, sizeof err))
		child_fail(img, p, err);
	report(img, p, 1, NULL);
	/* the helper's other descriptors (memfds among them) stay until the tracer has mapped them; it
	 * closes them from inside (rst_close_helper_fds) */
	close(img->ready_wr);
	for (;;)
		pause();
}

/* Reads one message per process. Returns 0 when all are ready; on the first failure records it. */
static int wait_ready(struct rst_image *img)
{
	int ready = 0;

	while (ready < img->nprocs) {
		struct ready_msg m;
		ssize_t n = read(img->ready_rd, &m, sizeof m);
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof m)
			return rst_fail(n < 0 ? errno : 0, "a restored process died before it was ready "
					"(%d of %d ready)", ready, img->nprocs);
		struct rst_proc *p = rst_find_proc(img, m.pid);
		if (p)
			p->created = 1;
		if (!m.ok)
			return rst_fail(0, "process %d: %s", m.pid, m.text);
		ready++;
	}
	return 0;
}

int rst_create_tree(struct rst_image *img)
{
	int fds[2];
	pid_t pid, self;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return rst_fail(errno, "creating the ready pipe");
	img->ready_rd = fcntl(fds[0], F_DUPFD_CLOEXEC, img->fd_base);
	img->ready_wr = fcntl(fds[1], F_DUPFD_CLOEXEC, img->fd_base);
	close(fds[0]);
	close(fds[1]);
	if (img->ready_rd < 0 || img->ready_wr < 0)
		return rst_fail(errno, "moving the ready pipe above fd %d", img->fd_base);
	fflush(NULL);
	self = getpid();
	pid = clone_with_pid(img->procs[0].pid);
	if (pid == 0)
		child_main(img, 0, self);
	if (pid < 0) {
		int e = errno;
		close(img->ready_wr);
		if (e == EEXIST)
			return pid_taken_error(img->procs[0].pid, "process", img->procs[0].comm);
		if (e == EPERM)
			return rst_fail(e, "clone3 with set_tid %d for the root process (choosing a PID needs "
					"CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)", img->procs[0].pid);
		return rst_fail(e, "clone3 with set_tid %d for the root process", img->procs[0].pid);
	}
	img->procs[0].created = 1;
	close(img->ready_wr);
	img->ready_wr = -1;
	return wait_ready(img);
}

/* Whether pid descends from the helper (so it is ours to kill). */
static int is_descendant(int pid)
{
	int self = getpid();

	for (int depth = 0; depth < 64 && pid > 1; depth++) {
		char path[64], buf[512], *rp;
		FILE *f;
		int ppid = 0;
		snprintf(path, sizeof path, "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			return 0;
		rp = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		if (!rp || sscanf(rp + 2, "%*c %d", &ppid) != 1)
			return 0;
		if (ppid == self)
			return 1;
		pid = ppid;
	}
	return 0;
}

void rst_kill_all(struct rst_image *img)
{
	for (int i = img->nprocs - 1; i >= 0; i--)
		if (is_descendant(img->procs[i].pid))
			kill(img->procs[i].pid, SIGKILL);
}

/* Reaps every child and tracee until none is left (the helper is a subreaper, so orphans of the
 * restored tree come to it). */
int rst_reap_all(void)
{
	int st, n = 0;

	for (;;) {
		pid_t r = waitpid(-1, &st, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n++;
	}
	return n;
}
