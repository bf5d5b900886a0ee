/* See errmsg.h. */
#include "errmsg.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char message[1024];
static int have_message;
/* The page writer thread (pagewriter.c) may fail while the main thread does. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const char *cryo_errname(int err)
{
	static char buf[16];
	const char *name = strerrorname_np(err);

	if (name)
		return name;
	snprintf(buf, sizeof buf, "errno %d", err);
	return buf;
}

int cryo_fail(int err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	pthread_mutex_lock(&lock);
	if (!have_message) {
		va_start(ap, fmt);
		int n = vsnprintf(message, sizeof message, fmt, ap);
		va_end(ap);
		if (n < 0)
			n = 0;
		if (err && (size_t)n < sizeof message)
			snprintf(message + n, sizeof message - n, ": %s (%s)", cryo_errname(err), strerror(err));
		have_message = 1;
	}
	pthread_mutex_unlock(&lock);
	errno = saved;
	return -1;
}

void cryo_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("cryo-helper: warning: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const char *cryo_error(void)
{
	return have_message ? message : NULL;
}

void cryo_error_clear(void)
{
	have_message = 0;
	message[0] = 0;
}
