/* One error message per run. The first failure is the most specific one (the syscall that failed and
 * what it was for); callers further up only propagate -1, so the user sees exactly one clear line. */
#ifndef CRYO_ERRMSG_H
#define CRYO_ERRMSG_H

/* Records "what: ERRNAME (description)" unless a message is already recorded; returns -1.
 * Pass err = 0 for failures that have no errno. errno is preserved. */
int cryo_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Non-fatal notice on stderr ("cryo-helper: warning: ..."). */
void cryo_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The recorded message, or NULL. */
const char *cryo_error(void);

/* Forget the recorded message (used when a failure is tolerated and handled). */
void cryo_error_clear(void);

/* errno as its symbolic name ("ENOENT"), falling back to the number. */
const char *cryo_errname(int err);

#endif
