/* See pagewriter.h. */
#include "pagewriter.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "errmsg.h"
#include "format.h"

#define SECTION_BYTES CRYO_MAX_DATA_SECTION
#define SECTION_PAGES (SECTION_BYTES / CRYO_PAGE_SIZE)
/* Sections per batch the caller may hand over at once. */
#define MAX_SECTIONS 64

struct job {
	const unsigned char *buf;
	size_t pages;
	uint64_t first_index;
	uint32_t crc[MAX_SECTIONS];
};

struct page_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct image_writer *w;
	uint32_t owner;
	struct job job;
	int has_job;   /* job is waiting for, or being written by, the thread */
	int quit;
	int failed;
};

static int write_job(struct page_writer *pw, const struct job *j)
{
	for (size_t s = 0; s * SECTION_PAGES < j->pages; s++) {
		size_t done = s * SECTION_PAGES;
		size_t n = j->pages - done < SECTION_PAGES ? j->pages - done : SECTION_PAGES;
		if (iw_section_crc(pw->w, CRYO_SEC_PAGEDATA, pw->owner, j->first_index + done,
				   j->buf + done * CRYO_PAGE_SIZE, n * CRYO_PAGE_SIZE, j->crc[s]))
			return -1;
	}
	return 0;
}

static void *run(void *arg)
{
	struct page_writer *pw = arg;

	pthread_mutex_lock(&pw->lock);
	for (;;) {
		while (!pw->has_job && !pw->quit)
			pthread_cond_wait(&pw->cond, &pw->lock);
		if (!pw->has_job)
			break;
		struct job j = pw->job;
		pthread_mutex_unlock(&pw->lock);
		int rc = pw->failed ? -1 : write_job(pw, &j);
		pthread_mutex_lock(&pw->lock);
		if (rc)
			pw->failed = 1;
		pw->has_job = 0;
		pthread_cond_broadcast(&pw->cond);
	}
	pthread_mutex_unlock(&pw->lock);
	return NULL;
}

int pw_start(struct page_writer **out, struct image_writer *w, uint32_t owner)
{
	struct page_writer *pw = calloc(1, sizeof *pw);
	int err;

	if (!pw)
		return cryo_fail(ENOMEM, "allocate the page writer");
	pw->w = w;
	pw->owner = owner;
	pthread_mutex_init(&pw->lock, NULL);
	pthread_cond_init(&pw->cond, NULL);
	err = pthread_create(&pw->thread, NULL, run, pw);
	if (err) {
		pthread_cond_destroy(&pw->cond);
		pthread_mutex_destroy(&pw->lock);
		free(pw);
		return cryo_fail(err, "start the page writer thread");
	}
	*out = pw;
	return 0;
}

/* Until the thread has taken the previous job off our hands. Called with the lock held. */
static void wait_idle(struct page_writer *pw)
{
	while (pw->has_job)
		pthread_cond_wait(&pw->cond, &pw->lock);
}

int pw_submit(struct page_writer *pw, const unsigned char *buf, size_t pages, uint64_t first_index)
{
	struct job j = { .buf = buf, .pages = pages, .first_index = first_index };
	int failed;

	if (pages > MAX_SECTIONS * SECTION_PAGES)
		return cryo_fail(0, "page batch of %zu pages is over %d sections", pages, MAX_SECTIONS);
	/* Checksums are computed in the caller's thread, while the writer writes the previous batch. */
	for (size_t s = 0; s * SECTION_PAGES < pages; s++) {
		size_t done = s * SECTION_PAGES;
		size_t n = pages - done < SECTION_PAGES ? pages - done : SECTION_PAGES;
		j.crc[s] = crc32c_update(0, buf + done * CRYO_PAGE_SIZE, n * CRYO_PAGE_SIZE);
	}
	pthread_mutex_lock(&pw->lock);
	wait_idle(pw);
	failed = pw->failed;
	if (!failed) {
		pw->job = j;
		pw->has_job = 1;
		pthread_cond_broadcast(&pw->cond);
	}
	pthread_mutex_unlock(&pw->lock);
	return failed ? -1 : 0;
}

int pw_finish(struct page_writer *pw)
{
	int failed;

	pthread_mutex_lock(&pw->lock);
	wait_idle(pw);
	pw->quit = 1;
	pthread_cond_broadcast(&pw->cond);
	pthread_mutex_unlock(&pw->lock);
	pthread_join(pw->thread, NULL);
	failed = pw->failed;
	pthread_cond_destroy(&pw->cond);
	pthread_mutex_destroy(&pw->lock);
	free(pw);
	return failed ? -1 : 0;
}
