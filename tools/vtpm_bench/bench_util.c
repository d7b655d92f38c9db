// SPDX-License-Identifier: GPL-2.0
/*
 * vtpm_bench: clock, sample arrays, the TPM2_GetRandom command, messages
 * and samples.csv.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include "vtpm_bench.h"

__u64 now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

void samples_add(struct samples *s, double value)
{
	if (s->count == s->size) {
		size_t size = s->size ? 2 * s->size : 256;
		double *values = realloc(s->values, size * sizeof(*values));

		if (!values)
			fail("out of memory for %zu samples", size);
		s->values = values;
		s->size = size;
	}
	s->values[s->count++] = value;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void samples_sort(struct samples *s)
{
	qsort(s->values, s->count, sizeof(*s->values), compare_doubles);
}

/*
 * The nearest-rank percentile of sorted samples: the smallest value that
 * at least @fraction of the samples do not exceed. NAN without samples.
 */
double samples_percentile(const struct samples *s, double fraction)
{
	size_t rank;

	if (!s->count)
		return NAN;
	rank = (size_t)ceil(fraction * s->count);
	if (rank < 1)
		rank = 1;
	if (rank > s->count)
		rank = s->count;
	return s->values[rank - 1];
}

/* The median, the mean of the middle two for an even count; sorts @s. */
double samples_median(struct samples *s)
{
	size_t middle = s->count / 2;

	if (!s->count)
		return NAN;
	samples_sort(s);
	if (s->count % 2)
		return s->values[middle];
	return (s->values[middle - 1] + s->values[middle]) / 2;
}

/* The sum of the samples; NAN without samples. */
double samples_sum(const struct samples *s)
{
	double sum = 0;
	size_t i;

	if (!s->count)
		return NAN;
	for (i = 0; i < s->count; i++)
		sum += s->values[i];
	return sum;
}

void samples_free(struct samples *s)
{
	free(s->values);
	memset(s, 0, sizeof(*s));
}

static void store_be16(__u8 *where, __u16 value)
{
	where[0] = value >> 8;
	where[1] = value;
}

static void store_be32(__u8 *where, __u32 value)
{
	where[0] = value >> 24;
	where[1] = value >> 16;
	where[2] = value >> 8;
	where[3] = value;
}

static __u32 load_be32(const __u8 *where)
{
	return (__u32)where[0] << 24 | (__u32)where[1] << 16 |
	       (__u32)where[2] << 8 | where[3];
}

/* TPM2_GetRandom for GETRANDOM_BYTES bytes; see build_getrandom(). */
__u8 getrandom_command[GETRANDOM_CMD_SIZE];

/* Fill getrandom_command; call once before any measurement. */
void build_getrandom(void)
{
	store_be16(getrandom_command, TPM2_ST_NO_SESSIONS);
	store_be32(getrandom_command + 2, GETRANDOM_CMD_SIZE);
	store_be32(getrandom_command + 6, TPM2_CC_GET_RANDOM);
	store_be16(getrandom_command + 10, GETRANDOM_BYTES);
}

/*
 * Check a TPM2_GetRandom response of @length bytes: success and
 * GETRANDOM_BYTES random bytes. Returns 0 or -EBADMSG.
 */
int check_getrandom(const __u8 *response, ssize_t length)
{
	if (length != GETRANDOM_RSP_SIZE ||
	    load_be32(response + 2) != GETRANDOM_RSP_SIZE ||
	    load_be32(response + 6) != TPM2_RC_SUCCESS ||
	    response[10] != 0 || response[11] != GETRANDOM_BYTES)
		return -EBADMSG;
	return 0;
}

/* Allow @count open files; root may raise the hard limit. */
int raise_fd_limit(unsigned int count)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit))
		return -errno;
	if (limit.rlim_cur >= count)
		return 0;
	limit.rlim_cur = count;
	if (limit.rlim_max < count)
		limit.rlim_max = count;
	if (setrlimit(RLIMIT_NOFILE, &limit))
		return -errno;
	return 0;
}

/* Print an error and end the program with status 1. */
void fail(const char *fmt, ...)
{
	va_list args;

	fflush(stdout);
	fputs("vtpm_bench: error: ", stderr);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fputc('\n', stderr);
	exit(1);
}

/*
 * Print a progress message on stdout, with the time since boot as the
 * kernel log shows it, to match the two.
 */
void note(const char *fmt, ...)
{
	va_list args;
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	printf("[%5ld.%06ld] vtpm_bench: ", (long)ts.tv_sec,
	       ts.tv_nsec / 1000);
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
	fputc('\n', stdout);
	fflush(stdout);
}

/* Append one row "driver,pass,slot,metric,value" to samples.csv. */
void record(struct bench_run *run, const char *driver, const char *metric,
	    double value)
{
	fprintf(run->csv, "%s,%u,%u,%s,%.3f\n", driver, run->opt->pass,
		run->opt->slot, metric, value);
}

void record_samples(struct bench_run *run, const char *driver,
		    const char *metric, const struct samples *s)
{
	size_t i;

	for (i = 0; i < s->count; i++)
		record(run, driver, metric, s->values[i]);
	if (fflush(run->csv))
		fail("writing samples.csv failed: %s", strerror(errno));
}
