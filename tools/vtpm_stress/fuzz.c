// SPDX-License-Identifier: GPL-2.0
/*
 * Lane "fuzz": device lives whose emulator answers the start-up commands
 * and the clients' commands with random lengths, random bytes and random
 * return codes, and misuses the server fd on the way: short reads, a
 * second response to one command, oversized responses, and closing the
 * server fd at any moment. Clients send valid and random commands through
 * /dev/tpmN and /dev/tpmrmN of the devices that register.
 *
 * Each life draws its choices from its own stream of the seed, so that
 * "-s SEED -f LIFE -n 1" replays the life LIFE of a run alone (as far as
 * the kernel's timing allows). A well-behaved device, the witness, lives
 * through the whole lane and must keep answering.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtpm_stress.h"

/* How often the witness device is asked for random bytes, in lives. */
#define WITNESS_EVERY		50
/*
 * How long a TPM 2.0 may show /dev/tpmN without /dev/tpmrmN before the
 * lane takes it for a chip in field upgrade mode, in milliseconds.
 */
#define TPM_UPGRADE_WAIT_MS	500
/* Maximum length of a random command from a client. */
#define MAX_CLIENT_COMMAND	64

enum {
	CHECK_CREATE,
	CHECK_NUMBER,
	CHECK_READ,
	CHECK_SHORT_READ,
	CHECK_WRITE_ACCEPTED,
	CHECK_OVERSIZED_WRITE,
	CHECK_SECOND_WRITE,
	CHECK_DEAD_EPIPE,
	CHECK_REGISTRATION_ENDS,
	CHECK_CLIENT_RETURNS,
	CHECK_CLIENT_ERRNO,
	CHECK_REMOVED,
	CHECK_WITNESS,
	NR_CHECKS,
};

static struct stress_check checks[NR_CHECKS] = {
	[CHECK_CREATE] = {
		"VTPM_PROXY_IOC_NEW_DEV creates a device for every life",
	},
	[CHECK_NUMBER] = {
		"every fuzzed device gets chip number 1 (the witness holds 0): no chip leaks",
	},
	[CHECK_READ] = {
		"read() of a polled server fd returns a command, EAGAIN once it is withdrawn, or EPIPE",
	},
	[CHECK_SHORT_READ] = {
		"read() with a buffer smaller than the command fails with EIO (or EAGAIN, EPIPE)",
	},
	[CHECK_WRITE_ACCEPTED] = {
		"a response of at most 4096 bytes is accepted whole, whatever its bytes (or EPIPE)",
	},
	[CHECK_OVERSIZED_WRITE] = {
		"a response over 4096 bytes fails with EIO (or EPIPE)",
	},
	[CHECK_SECOND_WRITE] = {
		"a second response to one command fails with EIO (or EPIPE)",
	},
	[CHECK_DEAD_EPIPE] = {
		"after POLLHUP, read() and write() of the server fd fail with EPIPE",
	},
	[CHECK_REGISTRATION_ENDS] = {
		"registration ends, registered or failed, within 20 s whatever the answers",
	},
	[CHECK_CLIENT_RETURNS] = {
		"a client command on a fuzzed device returns within 20 s",
	},
	[CHECK_CLIENT_ERRNO] = {
		"a failed client command reports an errno of the TPM core or the driver",
	},
	[CHECK_REMOVED] = {
		"closing the server fd removes /dev/tpmN, /dev/tpmrmN and /sys/class/tpm/tpmN",
	},
	[CHECK_WITNESS] = {
		"the witness device keeps answering TPM2_GetRandom through /dev/tpmrm0",
	},
};

/* Ways to spoil a response. */
enum spoil {
	SPOIL_RANDOM_BYTES,
	SPOIL_RETURN_CODE,
	SPOIL_LENGTH_FIELD,
	SPOIL_TRUNCATE,
	SPOIL_PAD,
	SPOIL_HEADER_ONLY,
	SPOIL_EMPTY,
	SPOIL_CONSISTENT_GARBAGE,
	NR_SPOILS,
};

/* Return codes worth trying, besides random ones. */
static const __u32 tpm2_return_codes[] = {
	TPM2_RC_SUCCESS, TPM2_RC_INITIALIZE, TPM2_RC_FAILURE,
	TPM2_RC_COMMAND_CODE, 0x0922 /* RETRY */, 0x090a /* TESTING */,
	0x0101 | TSS2_RESMGR_TPM_RC_LAYER, 0x0084 /* VALUE */,
};

/* As many as tpm2_return_codes: the two are picked from alike. */
static const __u32 tpm1_return_codes[] = {
	TPM_SUCCESS, TPM_BAD_PARAMETER, TPM_FAIL, TPM_INVALID_POSTINIT,
	6 /* DEACTIVATED */, 7 /* DISABLED */, 0x0802 /* DOING_SELFTEST */,
	0x0800 /* RETRY */,
};

static_assert(ARRAY_SIZE(tpm1_return_codes) == ARRAY_SIZE(tpm2_return_codes),
	      "random_return_code() picks from both lists alike");

/*
 * Errors that the TPM core and the driver give a client: the errno
 * values that tpm-dev-common.c, tpm-interface.c, tpm2-space.c and the
 * driver return on the command path of Linux 6.1 and 6.12.
 */
static bool client_errno_known(int error)
{
	switch (error) {
	case EINVAL:	/* shorter than its header or its length field */
	case E2BIG:	/* over 4096 bytes, or length field too large */
	case EBUSY:	/* a response not read yet */
	case EFAULT:	/* response length mismatch, SET_LOCALITY */
	case ENODATA:	/* length field 0 */
	case EPIPE:	/* the device is gone */
	case EIO:	/* driver: no response stored */
	case ETIME:	/* the command's duration ran out */
	case ECANCELED:
	case ENOMEM:	/* resource manager: no room for a context */
	case ENOENT:	/* resource manager: a context did not load */
		return true;
	default:
		return false;
	}
}

/**
 * struct fuzz_life - one device life
 * @index:        the life's number, which is also its random stream
 * @random:       the stream
 * @dev:          the device
 * @spoil_percent: chance that a response is spoiled
 * @exit_permille: chance per command that the emulator closes the fd
 * @closed:       the emulator closed the server fd
 */
struct fuzz_life {
	unsigned long index;
	struct stress_random random;
	struct stress_dev dev;
	unsigned int spoil_percent;
	unsigned int exit_permille;
	bool closed;
};

/**
 * struct fuzz_stats - what the lives did, for the lane's summary
 * @registered:     lives whose device registered
 * @upgrade_mode:   of those, TPM 2.0 chips that the TPM core took for
 *                  chips in field upgrade mode
 * @failed:         lives whose registration failed
 * @exits:          lives that the emulator ended by closing the fd
 * @spoiled:        responses spoiled
 * @answered:       responses sent
 * @client_commands: client commands sent
 * @client_errors:  client commands that failed
 */
struct fuzz_stats {
	unsigned long registered;
	unsigned long upgrade_mode;
	unsigned long failed;
	unsigned long exits;
	unsigned long spoiled;
	unsigned long answered;
	unsigned long client_commands;
	unsigned long client_errors;
};

static struct fuzz_stats stats;

static void fill_random(struct stress_random *random, __u8 *bytes,
			size_t length)
{
	size_t i;

	for (i = 0; i < length; i++)
		bytes[i] = (__u8)random_next(random);
}

static void store_be32(__u8 *where, __u32 value)
{
	where[0] = value >> 24;
	where[1] = value >> 16;
	where[2] = value >> 8;
	where[3] = value;
}

/* A length, mostly small, sometimes up to the maximum. */
static size_t random_length(struct stress_random *random, size_t max)
{
	if (random_percent(random, 70))
		return random_below(random, max < 64 ? max + 1 : 65);
	return random_below(random, max + 1);
}

static __u32 random_return_code(struct fuzz_life *life)
{
	const __u32 *codes = life->dev.tpm2 ? tpm2_return_codes :
					      tpm1_return_codes;

	if (random_percent(&life->random, 20))
		return (__u32)random_next(&life->random);
	return codes[random_below(&life->random,
				  ARRAY_SIZE(tpm2_return_codes))];
}

/* Spoil the correct response of @length bytes; returns the new length. */
static size_t spoil_response(struct fuzz_life *life, __u8 *response,
			     size_t length)
{
	struct stress_random *random = &life->random;
	size_t extra;

	switch (random_below(random, NR_SPOILS)) {
	case SPOIL_RANDOM_BYTES:
		length = random_length(random, VTPM_BUFSIZE);
		fill_random(random, response, length);
		return length;
	case SPOIL_RETURN_CODE:
		store_be32(response + 6, random_return_code(life));
		return length;
	case SPOIL_LENGTH_FIELD:
		store_be32(response + 2,
			   random_percent(random, 50) ?
			   (__u32)random_next(random) :
			   (__u32)(length + random_below(random, 9)) - 4);
		return length;
	case SPOIL_TRUNCATE:
		return random_below(random, length);
	case SPOIL_PAD:
		extra = random_length(random, VTPM_BUFSIZE - length);
		fill_random(random, response + length, extra);
		return length + extra;
	case SPOIL_HEADER_ONLY:
		store_be32(response + 2, TPM_HEADER_SIZE);
		response[0] = (__u8)random_next(random);
		response[1] = (__u8)random_next(random);
		store_be32(response + 6, random_return_code(life));
		return TPM_HEADER_SIZE;
	case SPOIL_EMPTY:
		return 0;
	default:
		/* A well-formed header over random parameters. */
		length = TPM_HEADER_SIZE +
			 random_length(random, VTPM_BUFSIZE - TPM_HEADER_SIZE);
		fill_random(random, response + TPM_HEADER_SIZE,
			    length - TPM_HEADER_SIZE);
		store_be32(response + 2, length);
		store_be32(response + 6, random_percent(random, 70) ? 0 :
					 random_return_code(life));
		return length;
	}
}

static bool errno_is(ssize_t result, int error1, int error2)
{
	return result < 0 && (errno == error1 || errno == error2);
}

/* A read() with a buffer too small for the command; EIO is expected. */
static void try_short_read(struct fuzz_life *life)
{
	__u8 small[TPM_HEADER_SIZE];
	ssize_t n;

	n = read(life->dev.fd, small,
		 random_below(&life->random, TPM_HEADER_SIZE));
	check_true(&checks[CHECK_SHORT_READ],
		   errno_is(n, EIO, EAGAIN) || errno_is(n, EPIPE, EPIPE),
		   "life %lu: read() returned %zd (%s)", life->index, n,
		   n < 0 ? strerror(errno) : "no error");
}

static void try_oversized_write(struct fuzz_life *life)
{
	static __thread __u8 big[2 * VTPM_BUFSIZE];
	size_t length = VTPM_BUFSIZE + 1 +
			random_below(&life->random, VTPM_BUFSIZE);
	ssize_t n;

	n = write(life->dev.fd, big, length);
	check_true(&checks[CHECK_OVERSIZED_WRITE], errno_is(n, EIO, EPIPE),
		   "life %lu: write() of %zu bytes returned %zd (%s)",
		   life->index, length, n,
		   n < 0 ? strerror(errno) : "no error");
}

/* Send the (maybe spoiled) response, and maybe a second one after it. */
static void answer(struct fuzz_life *life, const __u8 *command,
		   size_t length)
{
	static __thread __u8 response[VTPM_BUFSIZE];
	size_t response_length;
	ssize_t n;

	if (random_percent(&life->random, 3))
		try_oversized_write(life);

	response_length = vtpm_emulator_respond(&life->dev.emu, command,
						length, response);
	if (random_percent(&life->random, life->spoil_percent)) {
		response_length = spoil_response(life, response,
						 response_length);
		stats.spoiled++;
	}
	n = write(life->dev.fd, response, response_length);
	check_true(&checks[CHECK_WRITE_ACCEPTED],
		   n == (ssize_t)response_length || errno_is(n, EPIPE, EPIPE),
		   "life %lu: write() of %zu bytes returned %zd (%s)",
		   life->index, response_length, n,
		   n < 0 ? strerror(errno) : "no error");
	stats.answered++;

	if (random_percent(&life->random, 5)) {
		n = write(life->dev.fd, response, response_length);
		check_true(&checks[CHECK_SECOND_WRITE], errno_is(n, EIO, EPIPE),
			   "life %lu: second write() returned %zd (%s)",
			   life->index, n,
			   n < 0 ? strerror(errno) : "no error");
	}
}

/*
 * Serve one command the fuzzing way. Returns 1 when a command was
 * handled, 0 when none came, -EPIPE once the device is dead, or
 * -ECONNRESET when the emulator closed the server fd.
 */
static int fuzz_serve(struct fuzz_life *life, int timeout_ms)
{
	static __thread __u8 command[VTPM_BUFSIZE];
	struct pollfd pfd = { .fd = life->dev.fd, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	if (pfd.revents & POLLHUP)
		return -EPIPE;

	if (random_percent(&life->random, 5))
		try_short_read(life);
	n = read(life->dev.fd, command, sizeof(command));
	if (n < 0) {
		int error = errno;

		check_true(&checks[CHECK_READ], error == EAGAIN ||
			   error == EPIPE, "life %lu: read() failed: %s",
			   life->index, strerror(error));
		return error == EAGAIN ? 0 : -EPIPE;
	}
	check_pass(&checks[CHECK_READ]);

	if (random_below(&life->random, 1000) < life->exit_permille) {
		stress_dev_close(&life->dev);
		life->closed = true;
		stats.exits++;
		return -ECONNRESET;
	}
	answer(life, command, n);
	return 1;
}

/* After POLLHUP, the server fd fails every call with EPIPE. */
static void check_dead(struct fuzz_life *life)
{
	__u8 byte = 0;
	ssize_t n;

	n = read(life->dev.fd, &byte, 1);
	check_true(&checks[CHECK_DEAD_EPIPE], errno_is(n, EPIPE, EPIPE),
		   "life %lu: read() returned %zd (%s)", life->index, n,
		   n < 0 ? strerror(errno) : "no error");
	n = write(life->dev.fd, &byte, 1);
	check_true(&checks[CHECK_DEAD_EPIPE], errno_is(n, EPIPE, EPIPE),
		   "life %lu: write() returned %zd (%s)", life->index, n,
		   n < 0 ? strerror(errno) : "no error");
}

/*
 * Serve start-up commands until the device registers (returns 0), dies
 * (-EPIPE), is closed by the emulator (-ECONNRESET), or the time runs
 * out (-ETIMEDOUT).
 *
 * A TPM 2.0 whose start-up answers make the TPM core believe that it is
 * in field upgrade mode registers with /dev/tpmN only, without
 * /dev/tpmrmN. Both nodes appear together otherwise, so /dev/tpmN alone
 * for TPM_UPGRADE_WAIT_MS means that mode; *@upgrade_mode is set then.
 */
static int fuzz_register(struct fuzz_life *life, bool *upgrade_mode)
{
	__u64 deadline = now_ms() + STRESS_WAIT_MS, tpm_seen = 0;
	char path[64];
	int rc;

	*upgrade_mode = false;
	tpm_path(path, sizeof(path), "tpm", life->dev.num);
	for (;;) {
		rc = fuzz_serve(life, 2);
		if (rc < 0)
			return rc;
		if (rc == 0 && stress_dev_has_nodes(&life->dev))
			return 0;
		if (rc == 0 && !tpm_seen && !access(path, F_OK))
			tpm_seen = now_ms();
		if (tpm_seen && now_ms() - tpm_seen > TPM_UPGRADE_WAIT_MS) {
			*upgrade_mode = true;
			return 0;
		}
		if (now_ms() > deadline)
			return -ETIMEDOUT;
	}
}

/**
 * struct fuzz_client - a client command run by a helper thread
 * @path:        the node it opens
 * @command:     the command bytes
 * @length:      their count
 * @open_error:  errno of open(), or 0
 * @result:      what write() returned
 * @error:       errno of a failed write() or read()
 * @done:        the thread finished; read with __atomic_load_n()
 */
struct fuzz_client {
	char path[64];
	__u8 command[VTPM_BUFSIZE + 1];
	size_t length;
	int open_error;
	ssize_t result;
	int error;
	int done;
};

static void *fuzz_client_main(void *arg)
{
	struct fuzz_client *client = arg;
	__u8 response[VTPM_BUFSIZE];
	int fd;

	fd = open(client->path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		client->open_error = errno;
	} else {
		client->result = write(fd, client->command, client->length);
		if (client->result >= 0 &&
		    read(fd, response, sizeof(response)) < 0)
			client->result = -1;
		client->error = client->result < 0 ? errno : 0;
		/* Closing /dev/tpmrmN flushes its contexts: more commands. */
		close(fd);
	}
	__atomic_store_n(&client->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A valid GetRandom, a command with a valid header, or random bytes. */
static void make_client_command(struct fuzz_life *life,
				struct fuzz_client *client)
{
	struct stress_random *random = &life->random;
	unsigned int roll = random_below(random, 100);
	__u8 *command = client->command;

	if (roll < 50) {
		client->length = tpm_getrandom_command(life->dev.tpm2,
						       STRESS_RANDOM_BYTES,
						       command);
	} else if (roll < 80) {
		client->length = TPM_HEADER_SIZE +
				 random_below(random, MAX_CLIENT_COMMAND);
		fill_random(random, command, client->length);
		store_be32(command + 2, client->length);
	} else if (roll < 97) {
		client->length = random_below(random, MAX_CLIENT_COMMAND);
		fill_random(random, command, client->length);
	} else {
		client->length = VTPM_BUFSIZE + 1;
		fill_random(random, command, client->length);
	}
}

/*
 * Run one client command, serving the device until it returns. Without
 * @tpmrm, the command goes to /dev/tpmN.
 */
static void client_command(struct fuzz_life *life, bool tpmrm)
{
	struct fuzz_client *client;
	__u64 deadline = now_ms() + STRESS_WAIT_MS;
	pthread_t thread;
	int rc = 0;

	client = calloc(1, sizeof(*client));
	if (!client)
		return;
	tpm_path(client->path, sizeof(client->path),
		 tpmrm && random_percent(&life->random, 70) ? "tpmrm" : "tpm",
		 life->dev.num);
	make_client_command(life, client);
	if (pthread_create(&thread, NULL, fuzz_client_main, client)) {
		free(client);
		return;
	}

	while (!__atomic_load_n(&client->done, __ATOMIC_ACQUIRE)) {
		if (now_ms() > deadline) {
			check_fail(&checks[CHECK_CLIENT_RETURNS],
				   "life %lu: a command of %zu bytes on %s did not return",
				   life->index, client->length, client->path);
			stress_give_up(checks, NR_CHECKS,
				       "a client of %s hangs in the kernel",
				       client->path);
		}
		if (life->closed || rc < 0) {
			sleep_ms(1);
			continue;
		}
		rc = fuzz_serve(life, 5);
	}
	pthread_join(thread, NULL);
	check_pass(&checks[CHECK_CLIENT_RETURNS]);

	stats.client_commands++;
	if (client->result < 0) {
		stats.client_errors++;
		check_true(&checks[CHECK_CLIENT_ERRNO],
			   client_errno_known(client->error),
			   "life %lu: a command of %zu bytes on %s failed with %s (errno %d)",
			   life->index, client->length, client->path,
			   strerror(client->error), client->error);
	}
	free(client);
}

static void run_life(int vtpmx, unsigned long index, __u64 seed,
		     bool verbose)
{
	static const unsigned int spoil_percents[] = { 0, 2, 10, 30, 70 };
	struct fuzz_life life = { .index = index };
	__u64 start = now_ms();
	unsigned int commands;
	bool upgrade_mode;
	int rc;

	random_init(&life.random, seed, index);
	life.spoil_percent = spoil_percents[random_below(&life.random, 5)];
	life.exit_permille = random_below(&life.random, 20);

	rc = stress_dev_create(vtpmx, random_percent(&life.random, 50),
			       &life.dev);
	if (!check_true(&checks[CHECK_CREATE], rc == 0, "life %lu: %s",
			index, strerror(-rc)))
		return;
	check_true(&checks[CHECK_NUMBER], life.dev.num == 1,
		   "life %lu got tpm_num %u", index, life.dev.num);

	rc = fuzz_register(&life, &upgrade_mode);
	check_true(&checks[CHECK_REGISTRATION_ENDS], rc != -ETIMEDOUT,
		   "life %lu (seed %llu): tpm%u neither registered nor failed",
		   index, (unsigned long long)seed, life.dev.num);
	if (rc == 0) {
		stats.registered++;
		stats.upgrade_mode += upgrade_mode;
		for (commands = random_below(&life.random, 5);
		     commands && !life.closed; commands--)
			client_command(&life, life.dev.tpm2 && !upgrade_mode);
	} else if (rc == -EPIPE) {
		stats.failed++;
		check_dead(&life);
	}

	if (!life.closed)
		stress_dev_close(&life.dev);
	check_true(&checks[CHECK_REMOVED], tpm_nodes_gone(life.dev.num),
		   "life %lu: tpm%u still present", index, life.dev.num);
	if (verbose)
		stress_info("life %lu: TPM %s tpm%u, %u%% spoiled: %s%s, %llu ms",
			    index, life.dev.tpm2 ? "2.0" : "1.2",
			    life.dev.num, life.spoil_percent,
			    rc == 0 ? "registered" : strerror(-rc),
			    upgrade_mode ? " in upgrade mode" : "",
			    (unsigned long long)(now_ms() - start));
}

/* The witness: a correct emulator served by its own thread. */
static struct stress_dev witness;
static int witness_stopping;

static void *witness_main(void *arg)
{
	while (!__atomic_load_n(&witness_stopping, __ATOMIC_ACQUIRE))
		if (stress_dev_serve(&witness, 20) < 0)
			sleep_ms(20);
	return NULL;
}

static void check_witness(void)
{
	__u8 command[16], response[VTPM_BUFSIZE];
	char path[64];
	size_t length;
	ssize_t n = -1;
	int fd;

	tpm_path(path, sizeof(path), "tpmrm", witness.num);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		length = tpm_getrandom_command(true, STRESS_RANDOM_BYTES,
					       command);
		n = write(fd, command, length);
		if (n == (ssize_t)length)
			n = read(fd, response, sizeof(response));
		close(fd);
	}
	check_true(&checks[CHECK_WITNESS],
		   n > 0 && tpm_getrandom_response_ok(true, response, n),
		   "%s: %s", path, n < 0 ? strerror(errno) : "bad response");
}

int lane_fuzz(const struct lane_options *options)
{
	unsigned long life, end = options->first + options->count;
	pthread_t witness_thread;
	__u64 start;
	int vtpmx, rc;

	vtpmx = vtpmx_open();
	if (vtpmx < 0) {
		stress_info("opening /dev/vtpmx failed: %s", strerror(-vtpmx));
		return 1;
	}
	rc = stress_dev_create(vtpmx, true, &witness);
	if (!rc)
		rc = stress_dev_register(&witness, STRESS_WAIT_MS);
	if (rc || witness.num != 0) {
		stress_info("the witness device did not register as tpm0: %s",
			    strerror(-rc));
		return 1;
	}
	if (pthread_create(&witness_thread, NULL, witness_main, NULL)) {
		perror("pthread_create");
		return 1;
	}

	start = now_ms();
	for (life = options->first; life < end; life++) {
		run_life(vtpmx, life, options->seed, options->verbose);
		if ((life - options->first) % WITNESS_EVERY == 0)
			check_witness();
		stress_progress(life + 1 - options->first, options->count);
	}
	check_witness();

	__atomic_store_n(&witness_stopping, 1, __ATOMIC_RELEASE);
	pthread_join(witness_thread, NULL);
	stress_dev_close(&witness);
	close(vtpmx);

	stress_info("%lu lives in %llu ms: %lu registered (%lu in field upgrade mode), %lu failed registration, %lu ended by the emulator",
		    options->count, (unsigned long long)(now_ms() - start),
		    stats.registered, stats.upgrade_mode, stats.failed,
		    stats.exits);
	stress_info("%lu responses, %lu spoiled; %lu client commands, %lu failed",
		    stats.answered, stats.spoiled, stats.client_commands,
		    stats.client_errors);
	if (check_report(checks, NR_CHECKS)) {
		stress_info("failed with seed %llu; repeat with -s %llu, or one life with -s %llu -f LIFE -n 1",
			    (unsigned long long)options->seed,
			    (unsigned long long)options->seed,
			    (unsigned long long)options->seed);
		return 1;
	}
	return 0;
}
