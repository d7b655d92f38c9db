// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers shared by the lanes of vtpm_stress: result bookkeeping, random
 * numbers, proxy devices served by the test emulator, and client commands.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vtpm_stress.h"

/* Protects every struct stress_check and the output lines. */
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

void check_pass(struct stress_check *check)
{
	pthread_mutex_lock(&report_lock);
	check->runs++;
	pthread_mutex_unlock(&report_lock);
}

static void check_vfail(struct stress_check *check, const char *fmt,
			va_list args)
{
	pthread_mutex_lock(&report_lock);
	check->runs++;
	if (check->failures < STRESS_EXAMPLES)
		vsnprintf(check->examples[check->failures],
			  sizeof(check->examples[0]), fmt, args);
	check->failures++;
	pthread_mutex_unlock(&report_lock);
}

/* Record that @check did not hold; @fmt describes what happened instead. */
void check_fail(struct stress_check *check, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	check_vfail(check, fmt, args);
	va_end(args);
}

/* Record @ok for @check, with @fmt as the failure detail; returns @ok. */
bool check_true(struct stress_check *check, bool ok, const char *fmt, ...)
{
	va_list args;

	if (ok) {
		check_pass(check);
		return true;
	}
	va_start(args, fmt);
	check_vfail(check, fmt, args);
	va_end(args);
	return false;
}

/*
 * Print one result line per check and return how many failed. A check
 * that never ran fails, unless it is optional: the lane did not exercise
 * what it claims.
 */
unsigned long check_report(struct stress_check *checks, size_t nr_checks)
{
	unsigned long failed = 0, j;
	size_t i;

	pthread_mutex_lock(&report_lock);
	for (i = 0; i < nr_checks; i++) {
		struct stress_check *check = &checks[i];

		if (!check->runs && check->optional) {
			printf("ok - %s (did not occur)\n", check->name);
		} else if (!check->runs) {
			printf("not ok - %s\n# never checked\n", check->name);
			failed++;
		} else if (check->failures) {
			printf("not ok - %s (%lu of %lu failed)\n",
			       check->name, check->failures, check->runs);
			for (j = 0; j < check->failures && j < STRESS_EXAMPLES;
			     j++)
				printf("# failure: %s\n", check->examples[j]);
			failed++;
		} else {
			printf("ok - %s (%lu checked)\n", check->name,
			       check->runs);
		}
	}
	fflush(stdout);
	pthread_mutex_unlock(&report_lock);
	return failed;
}

/* Set once a thread of the program is left stuck in the kernel. */
static int stuck;

/* Record that a thread was left behind, stuck in the kernel. */
void stress_mark_stuck(void)
{
	__atomic_store_n(&stuck, 1, __ATOMIC_RELEASE);
}

bool stress_is_stuck(void)
{
	return __atomic_load_n(&stuck, __ATOMIC_ACQUIRE);
}

/*
 * Stop the lane because a thread or process is stuck in the kernel:
 * print the results so far and a line "# giving up: WHY", then end the
 * process. The process may never finish exiting while one of its threads
 * sleeps uninterruptibly, so scripts/stress-in-guest.sh takes that line
 * as the end of the program's output.
 */
void stress_give_up(struct stress_check *checks, size_t nr_checks,
		    const char *fmt, ...)
{
	char why[512];
	va_list args;

	va_start(args, fmt);
	vsnprintf(why, sizeof(why), fmt, args);
	va_end(args);

	check_report(checks, nr_checks);
	printf("# giving up: %s\n", why);
	fflush(stdout);
	_exit(1);
}

/*
 * Print "# progress: DONE of TOTAL" at most once a minute, and only when
 * DONE moved: scripts/stress-in-guest.sh takes 10 minutes without a line
 * of output for a program that is stuck. Call it from one thread only.
 */
void stress_progress(unsigned long done, unsigned long total)
{
	static unsigned long last_done;
	static __u64 last_ms;
	__u64 now = now_ms();

	if (!last_ms)
		last_ms = now;
	if (now - last_ms < 60000 || done == last_done)
		return;
	last_ms = now;
	last_done = done;
	stress_info("progress: %lu of %lu", done, total);
}

/* Print a "#" comment line, complete, even with other threads printing. */
void stress_info(const char *fmt, ...)
{
	char line[1024];
	va_list args;

	va_start(args, fmt);
	vsnprintf(line, sizeof(line), fmt, args);
	va_end(args);

	pthread_mutex_lock(&report_lock);
	printf("# %s\n", line);
	fflush(stdout);
	pthread_mutex_unlock(&report_lock);
}

/*
 * splitmix64: small, fast and good enough to pick test actions. Each
 * (seed, stream) pair gives its own sequence, so a lane can hand one
 * stream to each thread or device life and still replay any of them.
 */
void random_init(struct stress_random *random, __u64 seed, __u64 stream)
{
	random->state = seed ^ (stream * 0xd1b54a32d192ed03ULL);
	random_next(random);
}

__u64 random_next(struct stress_random *random)
{
	__u64 z = (random->state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A number in [0, @bound); @bound must not be 0. */
unsigned int random_below(struct stress_random *random, unsigned int bound)
{
	return (unsigned int)(random_next(random) % bound);
}

bool random_percent(struct stress_random *random, unsigned int percent)
{
	return random_below(random, 100) < percent;
}

__u64 now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (__u64)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void sleep_ms(unsigned int ms)
{
	struct timespec delay = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	while (nanosleep(&delay, &delay) && errno == EINTR)
		;
}

/* Open /dev/vtpmx close-on-exec; returns the fd or -errno. */
int vtpmx_open(void)
{
	int fd = open("/dev/vtpmx", O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

void tpm_path(char *path, size_t size, const char *kind, unsigned int num)
{
	snprintf(path, size, "/dev/%s%u", kind, num);
}

static bool path_exists(const char *kind, unsigned int num)
{
	char path[64];

	tpm_path(path, sizeof(path), kind, num);
	return access(path, F_OK) == 0;
}

/*
 * Create a device and prepare its emulator. The server fd is made
 * non-blocking, so that a command withdrawn between poll() and read()
 * gives EAGAIN instead of a read that sleeps. Returns 0 or -errno of
 * the ioctl.
 */
int stress_dev_create(int vtpmx, bool tpm2, struct stress_dev *dev)
{
	struct vtpm_proxy_new_dev request = {
		.flags = tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0,
	};
	int flags;

	memset(dev, 0, sizeof(*dev));
	dev->fd = -1;
	if (ioctl(vtpmx, VTPM_PROXY_IOC_NEW_DEV, &request) < 0)
		return -errno;

	dev->fd = request.fd;
	dev->num = request.tpm_num;
	dev->tpm2 = tpm2;
	flags = fcntl(dev->fd, F_GETFL);
	fcntl(dev->fd, F_SETFL, flags | O_NONBLOCK);
	vtpm_emulator_init(&dev->emu, tpm2);
	snprintf(dev->emu.name, sizeof(dev->emu.name), "tpm%u", dev->num);
	return 0;
}

/* Close the server fd, which tears the device down, and free the emulator. */
void stress_dev_close(struct stress_dev *dev)
{
	if (dev->fd >= 0)
		close(dev->fd);
	dev->fd = -1;
	vtpm_emulator_destroy(&dev->emu);
}

/*
 * Wait up to @timeout_ms for a command and send the correct response.
 * Returns 1 when a command was answered, 0 when none came (or the TPM
 * core withdrew it before the read), -EPIPE once the device is dead, or
 * another -errno of poll(), read() or write().
 */
int stress_dev_serve(struct stress_dev *dev, int timeout_ms)
{
	static __thread __u8 command[VTPM_BUFSIZE];
	static __thread __u8 response[VTPM_BUFSIZE];
	struct pollfd pfd = { .fd = dev->fd, .events = POLLIN };
	ssize_t length, written;
	size_t response_length;
	int n;

	n = poll(&pfd, 1, timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (n == 0)
		return 0;
	if (pfd.revents & POLLHUP)
		return -EPIPE;

	length = read(dev->fd, command, sizeof(command));
	if (length < 0)
		return errno == EAGAIN ? 0 : -errno;

	response_length = vtpm_emulator_respond(&dev->emu, command, length,
						response);
	written = write(dev->fd, response, response_length);
	if (written < 0)
		return -errno;
	if ((size_t)written != response_length)
		return -EIO;
	dev->commands++;
	return 1;
}

/* /dev/tpmN exists, and /dev/tpmrmN too for a TPM 2.0. */
bool stress_dev_has_nodes(const struct stress_dev *dev)
{
	return path_exists("tpm", dev->num) &&
	       (!dev->tpm2 || path_exists("tpmrm", dev->num));
}

/* Neither /dev/tpmN, /dev/tpmrmN nor /sys/class/tpm/tpmN exists. */
bool tpm_nodes_gone(unsigned int num)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/class/tpm/tpm%u", num);
	return !path_exists("tpm", num) && !path_exists("tpmrm", num) &&
	       access(path, F_OK) != 0;
}

/*
 * Answer the TPM core's start-up commands until the device's nodes
 * appear. The nodes appear after the last start-up command, so they are
 * looked for whenever no command is waiting. Returns 0 once registered,
 * -EPIPE when the driver gave up on the device, -ETIMEDOUT after
 * @timeout_ms, or another -errno from stress_dev_serve().
 */
int stress_dev_register(struct stress_dev *dev, int timeout_ms)
{
	__u64 deadline = now_ms() + timeout_ms;
	unsigned int served = 0;
	int rc;

	for (;;) {
		rc = stress_dev_serve(dev, 2);
		if (rc < 0)
			return rc;
		if ((rc == 0 || ++served % 16 == 0) &&
		    stress_dev_has_nodes(dev))
			return 0;
		if (now_ms() > deadline)
			return -ETIMEDOUT;
	}
}

static void put_be16(__u8 *where, __u16 value)
{
	where[0] = value >> 8;
	where[1] = value;
}

static void put_be32(__u8 *where, __u32 value)
{
	where[0] = value >> 24;
	where[1] = value >> 16;
	where[2] = value >> 8;
	where[3] = value;
}

static __u32 get_be32(const __u8 *where)
{
	return (__u32)where[0] << 24 | (__u32)where[1] << 16 |
	       (__u32)where[2] << 8 | where[3];
}

/*
 * Build TPM2_GetRandom or TPM_GetRandom for @bytes bytes into @command
 * (at least 14 bytes). Returns its length.
 */
size_t tpm_getrandom_command(bool tpm2, unsigned int bytes, __u8 *command)
{
	if (tpm2) {
		put_be16(command, TPM2_ST_NO_SESSIONS);
		put_be32(command + 2, 12);
		put_be32(command + 6, TPM2_CC_GET_RANDOM);
		put_be16(command + 10, bytes);
		return 12;
	}
	put_be16(command, TPM_TAG_RQU_COMMAND);
	put_be32(command + 2, 14);
	put_be32(command + 6, TPM_ORD_GET_RANDOM);
	put_be32(command + 10, bytes);
	return 14;
}

/*
 * A successful GetRandom response: the header's length matches what was
 * read, the return code is 0, and the size field matches the bytes.
 */
bool tpm_getrandom_response_ok(bool tpm2, const __u8 *response,
			       ssize_t length)
{
	size_t size_field = tpm2 ? 2 : 4;
	__u32 bytes;

	if (length < TPM_HEADER_SIZE + (ssize_t)size_field ||
	    get_be32(response + 2) != (__u32)length ||
	    get_be32(response + 6) != 0)
		return false;
	if (tpm2)
		bytes = (__u32)response[10] << 8 | response[11];
	else
		bytes = get_be32(response + 10);
	return bytes == length - TPM_HEADER_SIZE - size_field;
}

/**
 * struct client_command - a GetRandom sent by a helper thread
 * @fd:       the client's fd, blocking
 * @tpm2:     the device is a TPM 2.0
 * @result:   0 for a well-formed successful response, -EBADMSG for
 *            another response, or -errno of write() or read()
 * @done:     the thread finished; read with __atomic_load_n()
 */
struct client_command {
	int fd;
	bool tpm2;
	int result;
	int done;
};

static void *client_command_main(void *arg)
{
	struct client_command *client = arg;
	__u8 command[16], response[VTPM_BUFSIZE];
	size_t length;
	ssize_t n;

	length = tpm_getrandom_command(client->tpm2, STRESS_RANDOM_BYTES,
				       command);
	if (write(client->fd, command, length) != (ssize_t)length) {
		client->result = -errno;
	} else {
		n = read(client->fd, response, sizeof(response));
		if (n < 0)
			client->result = -errno;
		else if (!tpm_getrandom_response_ok(client->tpm2, response, n))
			client->result = -EBADMSG;
	}
	__atomic_store_n(&client->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Send GetRandom through the blocking client fd @fd from a helper thread
 * and answer the device's commands on @server in this one until the
 * helper is done. Returns 0 for a well-formed successful response,
 * -EBADMSG for another response, -ETIMEDOUT when the helper did not
 * finish within STRESS_WAIT_MS, or the -errno of the client's write() or
 * read() or of serving.
 */
int tpm_client_transact(int fd, bool tpm2, struct stress_dev *server)
{
	__u64 deadline = now_ms() + STRESS_WAIT_MS;
	struct client_command *client;
	pthread_t thread;
	int rc = 0;

	client = calloc(1, sizeof(*client));
	if (!client)
		return -ENOMEM;
	client->fd = fd;
	client->tpm2 = tpm2;
	if (pthread_create(&thread, NULL, client_command_main, client)) {
		free(client);
		return -EAGAIN;
	}

	while (!__atomic_load_n(&client->done, __ATOMIC_ACQUIRE)) {
		if (now_ms() > deadline) {
			/* The helper hangs in the kernel: leave it be. */
			pthread_detach(thread);
			stress_mark_stuck();
			return -ETIMEDOUT;
		}
		rc = stress_dev_serve(server, 5);
		if (rc == -EPIPE)
			sleep_ms(1);
		else if (rc < 0)
			break;
	}
	pthread_join(thread, NULL);
	if (rc >= 0 || rc == -EPIPE)
		rc = client->result;
	free(client);
	return rc;
}

/*
 * Open the kernel log for reading from its current end, non-blocking.
 * Returns the fd or -errno.
 */
int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	lseek(fd, 0, SEEK_END);
	return fd;
}

/*
 * Read the kernel log records that arrived since the last call and tell
 * whether one of them contains the text that @fmt formats. Records lost
 * to an overrun of the kernel's buffer are skipped.
 */
bool kmsg_contains(int kmsg, const char *fmt, ...)
{
	char text[256], record[2048];
	bool found = false;
	va_list args;
	ssize_t n;

	va_start(args, fmt);
	vsnprintf(text, sizeof(text), fmt, args);
	va_end(args);

	for (;;) {
		n = read(kmsg, record, sizeof(record) - 1);
		if (n < 0 && errno == EPIPE)
			continue;
		if (n <= 0)
			break;
		record[n] = '\0';
		if (strstr(record, text))
			found = true;
	}
	return found;
}
