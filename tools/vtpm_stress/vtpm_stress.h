/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Stress, fault and fuzz lanes for the vTPM proxy driver (tpm_vtpm_proxy).
 * One program, vtpm_stress, runs one lane per invocation. The lanes share
 * the helpers declared here: result bookkeeping, a seeded random number
 * generator, and proxy devices served by the test emulator of
 * tools/testing/selftests/vtpm_proxy/.
 *
 * Every lane prints one line per behaviour it checks, "ok - BEHAVIOUR" or
 * "not ok - BEHAVIOUR", with details on lines that start with "#", and
 * exits 1 when a check failed.
 */
#ifndef VTPM_STRESS_H
#define VTPM_STRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#include "vtpm_emulator.h"

/*
 * __printf() is the format attribute, defined by the Makefile as in the
 * kernel, so that the compiler checks the format strings below.
 */

/*
 * Bound on any single wait for the driver or the TPM core, in
 * milliseconds. The driver promises teardown "within a second"; this
 * leaves room for a debug kernel (KASAN, lockdep) under TCG emulation.
 */
#define STRESS_WAIT_MS		20000

#define ARRAY_SIZE(array)	(sizeof(array) / sizeof((array)[0]))

/* Failures of a check that its report shows. */
#define STRESS_EXAMPLES		3

/* Bytes a client asks for in TPM2_GetRandom or TPM_GetRandom. */
#define STRESS_RANDOM_BYTES	8

/**
 * struct stress_check - one behaviour a lane checks, many times over
 * @name:          the behaviour, as a sentence
 * @optional:      the situation may not arise in a run; a check that
 *                 is not optional fails when it never ran
 * @runs:          times it was checked
 * @failures:      times it did not hold
 * @examples:      what happened the first STRESS_EXAMPLES times it did
 *                 not hold
 *
 * The fields are protected by a lock inside the helpers, so that threads
 * can record results at the same time.
 */
struct stress_check {
	const char *name;
	bool optional;
	unsigned long runs;
	unsigned long failures;
	char examples[STRESS_EXAMPLES][512];
};

void check_pass(struct stress_check *check);
__printf(2, 3)
void check_fail(struct stress_check *check, const char *fmt, ...);
__printf(3, 4)
bool check_true(struct stress_check *check, bool ok, const char *fmt, ...);
unsigned long check_report(struct stress_check *checks, size_t nr_checks);
__printf(3, 4)
void stress_give_up(struct stress_check *checks, size_t nr_checks,
		    const char *fmt, ...);
void stress_mark_stuck(void);
void stress_progress(unsigned long done, unsigned long total);
bool stress_is_stuck(void);
__printf(1, 2) void stress_info(const char *fmt, ...);

/**
 * struct stress_random - a reproducible stream of random numbers
 * @state: splitmix64 state
 */
struct stress_random {
	__u64 state;
};

void random_init(struct stress_random *random, __u64 seed, __u64 stream);
__u64 random_next(struct stress_random *random);
unsigned int random_below(struct stress_random *random, unsigned int bound);
bool random_percent(struct stress_random *random, unsigned int percent);

__u64 now_ms(void);
void sleep_ms(unsigned int ms);

/**
 * struct stress_dev - a proxy device and the emulator that serves it
 * @fd:       the server fd, non-blocking; -1 once closed
 * @num:      N of /dev/tpmN
 * @tpm2:     a TPM 2.0 device; otherwise TPM 1.2
 * @commands: commands answered so far
 * @emu:      the test emulator that builds the responses
 */
struct stress_dev {
	int fd;
	unsigned int num;
	bool tpm2;
	unsigned long commands;
	struct vtpm_emulator emu;
};

int vtpmx_open(void);
int stress_dev_create(int vtpmx, bool tpm2, struct stress_dev *dev);
void stress_dev_close(struct stress_dev *dev);
int stress_dev_serve(struct stress_dev *dev, int timeout_ms);
int stress_dev_register(struct stress_dev *dev, int timeout_ms);
bool stress_dev_has_nodes(const struct stress_dev *dev);
bool tpm_nodes_gone(unsigned int num);
void tpm_path(char *path, size_t size, const char *kind, unsigned int num);

size_t tpm_getrandom_command(bool tpm2, unsigned int bytes, __u8 *command);
bool tpm_getrandom_response_ok(bool tpm2, const __u8 *response,
			       ssize_t length);
int tpm_client_transact(int fd, bool tpm2, struct stress_dev *server);

int kmsg_open(void);
__printf(2, 3)
bool kmsg_contains(int kmsg, const char *fmt, ...);

/**
 * struct lane_options - the command line of a lane
 * @count:   how many cycles, device lives or attempts the lane runs
 * @seed:    seed of every random choice the lane makes
 * @first:   the first device life to run (fuzz), so that one life can be
 *           replayed on its own
 * @module:  the driver's .ko file, for the rmmod lane to load it again
 * @verbose: print a line per cycle
 */
struct lane_options {
	unsigned long count;
	__u64 seed;
	unsigned long first;
	const char *module;
	bool verbose;
};

/* The lanes; each prints its results and returns the exit status. */
int lane_cycles(const struct lane_options *options);
int lane_kill(const struct lane_options *options);
int lane_threads(const struct lane_options *options);
int lane_rmmod(const struct lane_options *options);
int lane_fuzz(const struct lane_options *options);
int lane_probe(const struct lane_options *options);

#endif /* VTPM_STRESS_H */
