/* Reading and parsing /proc/PID/... files. Every function records an error message naming the file on
 * failure and returns -1 (errno preserved). */
#ifndef CRYO_PROC_H
#define CRYO_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Whole file into a NUL-terminated malloc'd buffer (procfs files report size 0, so read to EOF). */
int proc_read(const char *path, char **buf, size_t *len);
/* Same, path built from a format. */
int proc_readf(char **buf, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* readlink into a malloc'd string. */
int proc_readlink(const char *path, char **target);

/* Sorted numeric entries of a /proc directory (task lists, fd lists). */
int proc_list_numbers(const char *dir, long **out, size_t *n);

/* The integers listed in /proc/PID/task/TID/children (needs CONFIG_PROC_CHILDREN). */
int proc_children(pid_t pid, pid_t tid, pid_t **out, size_t *n);

struct proc_stat {
	char state;
	pid_t ppid, pgrp, session;
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
};
/* /proc/PID/stat (tid 0) or /proc/PID/task/TID/stat. */
int proc_stat(pid_t pid, pid_t tid, struct proc_stat *st);
/* Just the state letter; returns 0 and sets *state, or -1 if the task is gone. */
int proc_state(pid_t pid, pid_t tid, char *state);

struct proc_status {
	unsigned uid[4], gid[4];
	unsigned *groups;
	size_t ngroups;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int seccomp;
	int umask;            /* -1 if the kernel does not print it */
};
int proc_status(pid_t pid, struct proc_status *st);
void proc_status_free(struct proc_status *st);

/* The value after "Key:" in a status-style text, or NULL. Points into text; ends at a newline. */
const char *proc_field(const char *text, const char *key);

#endif
