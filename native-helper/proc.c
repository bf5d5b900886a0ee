/* See proc.h. */
#include "proc.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"

int proc_read(const char *path, char **buf, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *p = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return cryo_fail(errno, "open %s", path);
	for (;;) {
		if (!p || n + 1 >= cap) {
			char *q = realloc(p, p ? cap *= 2 : cap);
			if (!q) {
				cryo_fail(ENOMEM, "read %s", path);
				goto fail;
			}
			p = q;
		}
		ssize_t r = read(fd, p + n, cap - n - 1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			cryo_fail(errno, "read %s", path);
			goto fail;
		}
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	p[n] = 0;
	*buf = p;
	if (len)
		*len = n;
	return 0;
fail:
	close(fd);
	free(p);
	return -1;
}

int proc_readf(char **buf, size_t *len, const char *fmt, ...)
{
	char path[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof path, fmt, ap);
	va_end(ap);
	return proc_read(path, buf, len);
}

int proc_readlink(const char *path, char **target)
{
	size_t cap = 256;

	for (;;) {
		char *p = malloc(cap);
		if (!p)
			return cryo_fail(ENOMEM, "readlink %s", path);
		ssize_t r = readlink(path, p, cap);
		if (r < 0) {
			int err = errno;
			free(p);
			return cryo_fail(err, "readlink %s", path);
		}
		if ((size_t)r < cap) {
			p[r] = 0;
			*target = p;
			return 0;
		}
		free(p);
		cap *= 4;
	}
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

int proc_list_numbers(const char *dir, long **out, size_t *n)
{
	DIR *d = opendir(dir);
	long *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *e;

	if (!d)
		return cryo_fail(errno, "open %s", dir);
	errno = 0;
	while ((e = readdir(d))) {
		char *end;
		long x = strtol(e->d_name, &end, 10);
		if (!isdigit((unsigned char)e->d_name[0]) || *end)
			continue;
		if (cnt == cap) {
			long *q = realloc(v, (cap = cap ? cap * 2 : 32) * sizeof *v);
			if (!q) {
				closedir(d);
				free(v);
				return cryo_fail(ENOMEM, "list %s", dir);
			}
			v = q;
		}
		v[cnt++] = x;
	}
	if (errno) {
		int err = errno;
		closedir(d);
		free(v);
		return cryo_fail(err, "read directory %s", dir);
	}
	closedir(d);
	qsort(v, cnt, sizeof *v, cmp_long);
	*out = v;
	*n = cnt;
	return 0;
}

int proc_children(pid_t pid, pid_t tid, pid_t **out, size_t *n)
{
	char *text, *p;
	pid_t *v = NULL;
	size_t cnt = 0, cap = 0;

	if (proc_readf(&text, NULL, "/proc/%d/task/%d/children", pid, tid))
		return -1;
	for (p = text; *p;) {
		char *end;
		long x = strtol(p, &end, 10);
		if (end == p)
			break;
		if (cnt == cap) {
			pid_t *q = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof *v);
			if (!q) {
				free(text);
				free(v);
				return cryo_fail(ENOMEM, "list children of %d", pid);
			}
			v = q;
		}
		v[cnt++] = (pid_t)x;
		p = end;
	}
	free(text);
	*out = v;
	*n = cnt;
	return 0;
}

static int stat_path(char *path, size_t size, pid_t pid, pid_t tid)
{
	if (tid)
		return snprintf(path, size, "/proc/%d/task/%d/stat", pid, tid);
	return snprintf(path, size, "/proc/%d/stat", pid);
}

/* Fields after the comm, which ends at the *last* ')' (comm may contain spaces and parentheses).
 * Field numbers are those of proc(5): 3 = state. */
int proc_stat(pid_t pid, pid_t tid, struct proc_stat *st)
{
	char path[64], *text, *p;
	unsigned long long f[53] = { 0 };

	stat_path(path, sizeof path, pid, tid);
	if (proc_read(path, &text, NULL))
		return -1;
	p = strrchr(text, ')');
	if (!p || p[1] != ' ' || !p[2]) {
		free(text);
		return cryo_fail(0, "parse %s: no ') ' after the command name", path);
	}
	memset(st, 0, sizeof *st);
	st->state = p[2];
	p += 3;
	for (int i = 4; i <= 52 && *p; i++) {
		char *end;
		while (*p == ' ')
			p++;
		f[i] = strtoull(p, &end, 10);
		if (*p == '-')
			f[i] = (unsigned long long)strtoll(p, &end, 10);
		if (end == p)
			break;
		p = end;
	}
	st->ppid = (pid_t)f[4];
	st->pgrp = (pid_t)f[5];
	st->session = (pid_t)f[6];
	st->start_code = f[26];
	st->end_code = f[27];
	st->start_stack = f[28];
	st->start_data = f[45];
	st->end_data = f[46];
	st->start_brk = f[47];
	st->arg_start = f[48];
	st->arg_end = f[49];
	st->env_start = f[50];
	st->env_end = f[51];
	free(text);
	return 0;
}

int proc_state(pid_t pid, pid_t tid, char *state)
{
	struct proc_stat st;

	if (proc_stat(pid, tid, &st))
		return -1;
	*state = st.state;
	return 0;
}

const char *proc_field(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (!strncmp(p, key, klen) && p[klen] == ':') {
			p += klen + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			return p;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return NULL;
}

static int parse_ids(const char *text, const char *key, unsigned v[4])
{
	const char *p = proc_field(text, key);

	return p && sscanf(p, "%u %u %u %u", &v[0], &v[1], &v[2], &v[3]) == 4 ? 0 : -1;
}

static uint64_t hex_field(const char *text, const char *key)
{
	const char *p = proc_field(text, key);

	return p ? strtoull(p, NULL, 16) : 0;
}

static int parse_groups(const char *text, struct proc_status *st)
{
	const char *p = proc_field(text, "Groups");

	st->groups = NULL;
	st->ngroups = 0;
	while (p && *p && *p != '\n') {
		char *end;
		unsigned long g = strtoul(p, &end, 10);
		if (end == p)
			break;
		unsigned *q = realloc(st->groups, (st->ngroups + 1) * sizeof *q);
		if (!q)
			return -1;
		st->groups = q;
		st->groups[st->ngroups++] = (unsigned)g;
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	return 0;
}

int proc_status(pid_t pid, struct proc_status *st)
{
	char *text;
	const char *p;

	memset(st, 0, sizeof *st);
	if (proc_readf(&text, NULL, "/proc/%d/status", pid))
		return -1;
	if (parse_ids(text, "Uid", st->uid) || parse_ids(text, "Gid", st->gid)) {
		free(text);
		return cryo_fail(0, "parse /proc/%d/status: no Uid/Gid lines", pid);
	}
	if (parse_groups(text, st)) {
		free(text);
		return cryo_fail(ENOMEM, "parse groups of /proc/%d/status", pid);
	}
	st->cap_inh = hex_field(text, "CapInh");
	st->cap_prm = hex_field(text, "CapPrm");
	st->cap_eff = hex_field(text, "CapEff");
	st->cap_bnd = hex_field(text, "CapBnd");
	st->cap_amb = hex_field(text, "CapAmb");
	p = proc_field(text, "NoNewPrivs");
	st->no_new_privs = p ? atoi(p) : 0;
	p = proc_field(text, "Seccomp");
	st->seccomp = p ? atoi(p) : 0;
	p = proc_field(text, "Umask");
	st->umask = p ? (int)strtol(p, NULL, 8) : -1;
	free(text);
	return 0;
}

void proc_status_free(struct proc_status *st)
{
	free(st->groups);
	st->groups = NULL;
}
