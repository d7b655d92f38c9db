// SPDX-License-Identifier: GPL-2.0
/*
 * Lane "cycles": create and close devices one after another, TPM 2.0 and
 * TPM 1.2 mixed. Most devices complete their registration, some serve a
 * client command, and the others are closed at a random point of their
 * registration: before the registration work runs, after some start-up
 * commands were answered, or with a start-up command read but not
 * answered. Only one device exists at a time, so every new device must
 * get chip number 0 back.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vtpm_stress.h"

/* The point of its life at which a cycle closes the device. */
enum close_point {
	CLOSE_REGISTERED,
	CLOSE_AT_ONCE,
	CLOSE_AFTER_ANSWERS,
	CLOSE_COMMAND_READ,
};

static const char * const close_point_names[] = {
	[CLOSE_REGISTERED] = "registered",
	[CLOSE_AT_ONCE] = "at once",
	[CLOSE_AFTER_ANSWERS] = "after answers",
	[CLOSE_COMMAND_READ] = "command read",
};

enum {
	CHECK_CREATE,
	CHECK_NUMBER_ZERO,
	CHECK_REGISTERS,
	CHECK_VERSION,
	CHECK_COMMAND,
	CHECK_CLOSE_RETURNS,
	CHECK_REMOVED,
	NR_CHECKS,
};

static struct stress_check checks[NR_CHECKS] = {
	[CHECK_CREATE] = {
		"VTPM_PROXY_IOC_NEW_DEV creates a device in every cycle",
	},
	[CHECK_NUMBER_ZERO] = {
		"every new device gets chip number 0 once the previous one is closed",
	},
	[CHECK_REGISTERS] = {
		"a served device registers: /dev/tpmN (and /dev/tpmrmN for TPM 2.0) appear",
	},
	[CHECK_VERSION] = {
		"sysfs tpm_version_major matches the flags of the ioctl",
	},
	[CHECK_COMMAND] = {
		"a GetRandom through /dev/tpmN or /dev/tpmrmN of a registered device succeeds",
	},
	[CHECK_CLOSE_RETURNS] = {
		"close() of the server fd returns, at any point of registration",
	},
	[CHECK_REMOVED] = {
		"closing the server fd removes /dev/tpmN, /dev/tpmrmN and /sys/class/tpm/tpmN at once",
	},
};

static enum close_point pick_close_point(struct stress_random *random)
{
	unsigned int roll = random_below(random, 100);

	if (roll < 75)
		return CLOSE_REGISTERED;
	if (roll < 83)
		return CLOSE_AT_ONCE;
	if (roll < 94)
		return CLOSE_AFTER_ANSWERS;
	return CLOSE_COMMAND_READ;
}

static void check_version(struct stress_dev *dev)
{
	char path[64], value[8] = "";
	int fd;

	snprintf(path, sizeof(path), "/sys/class/tpm/tpm%u/tpm_version_major",
		 dev->num);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, value, sizeof(value) - 1) < 0)
			value[0] = '\0';
		close(fd);
	}
	check_true(&checks[CHECK_VERSION], value[0] == (dev->tpm2 ? '2' : '1'),
		   "%s reads '%s' for a TPM %s", path, value,
		   dev->tpm2 ? "2.0" : "1.2");
}

/* Send one command from a client of /dev/tpmN or /dev/tpmrmN. */
static void check_command(struct stress_dev *dev, struct stress_random *random)
{
	const char *kind = dev->tpm2 && random_percent(random, 50) ?
			   "tpmrm" : "tpm";
	char path[64];
	int client, rc;

	tpm_path(path, sizeof(path), kind, dev->num);
	client = open(path, O_RDWR | O_CLOEXEC);
	if (client < 0) {
		rc = -errno;
	} else {
		rc = tpm_client_transact(client, dev->tpm2, dev);
		close(client);
	}
	check_true(&checks[CHECK_COMMAND], rc == 0, "%s: %s", path,
		   strerror(-rc));
}

/*
 * Answer @answers start-up commands, then, with @read_one, read one more
 * without answering it. Stops early when the device dies or stays idle.
 */
static void serve_partly(struct stress_dev *dev, unsigned int answers,
			 bool read_one)
{
	struct pollfd pfd = { .fd = dev->fd, .events = POLLIN };
	__u8 command[VTPM_BUFSIZE];
	unsigned int answered = 0;
	int idle = 0;
	int rc;

	while (answered < answers && idle < 50) {
		rc = stress_dev_serve(dev, 20);
		if (rc < 0)
			return;
		answered += rc;
		idle = rc ? 0 : idle + 1;
	}
	if (read_one && poll(&pfd, 1, 1000) > 0 && (pfd.revents & POLLIN) &&
	    read(dev->fd, command, sizeof(command)) < 0)
		return;
}

/**
 * struct cycle_stats - what the cycles did, for the lane's summary
 * @closed_at:     cycles per close point
 * @slowest_close: longest close() of a server fd, in milliseconds
 * @registration_ms: time spent in registrations, in milliseconds
 * @close_ms:      time spent in close() of server fds, in milliseconds
 */
struct cycle_stats {
	unsigned long closed_at[CLOSE_COMMAND_READ + 1];
	__u64 slowest_close;
	__u64 registration_ms;
	__u64 close_ms;
};

static void run_cycle(int vtpmx, unsigned long cycle,
		      struct stress_random *random, struct cycle_stats *stats,
		      bool verbose)
{
	__u64 start, elapsed;
	bool tpm2 = random_percent(random, 50);
	enum close_point point = pick_close_point(random);
	unsigned int answers = random_below(random, 6);
	struct stress_dev dev;
	int rc;

	rc = stress_dev_create(vtpmx, tpm2, &dev);
	if (!check_true(&checks[CHECK_CREATE], rc == 0, "cycle %lu: %s",
			cycle, strerror(-rc)))
		return;
	check_true(&checks[CHECK_NUMBER_ZERO], dev.num == 0,
		   "cycle %lu got tpm_num %u", cycle, dev.num);

	switch (point) {
	case CLOSE_REGISTERED:
		start = now_ms();
		rc = stress_dev_register(&dev, STRESS_WAIT_MS);
		stats->registration_ms += now_ms() - start;
		if (!check_true(&checks[CHECK_REGISTERS], rc == 0,
				"cycle %lu, TPM %s tpm%u: %s", cycle,
				tpm2 ? "2.0" : "1.2", dev.num,
				strerror(-rc)))
			break;
		check_version(&dev);
		if (random_percent(random, 10))
			check_command(&dev, random);
		break;
	case CLOSE_AT_ONCE:
		break;
	case CLOSE_AFTER_ANSWERS:
		serve_partly(&dev, answers, false);
		break;
	case CLOSE_COMMAND_READ:
		serve_partly(&dev, answers, true);
		break;
	}

	start = now_ms();
	stress_dev_close(&dev);
	elapsed = now_ms() - start;
	stats->close_ms += elapsed;
	check_true(&checks[CHECK_CLOSE_RETURNS], elapsed < STRESS_WAIT_MS,
		   "cycle %lu (%s): close() took %llu ms", cycle,
		   close_point_names[point], (unsigned long long)elapsed);
	if (elapsed > stats->slowest_close)
		stats->slowest_close = elapsed;
	stats->closed_at[point]++;
	check_true(&checks[CHECK_REMOVED], tpm_nodes_gone(dev.num),
		   "cycle %lu (%s, TPM %s): tpm%u still present", cycle,
		   close_point_names[point], tpm2 ? "2.0" : "1.2", dev.num);
	if (verbose)
		stress_info("cycle %lu: TPM %s tpm%u closed %s after %lu commands",
			    cycle, tpm2 ? "2.0" : "1.2", dev.num,
			    close_point_names[point], dev.commands);
}

int lane_cycles(const struct lane_options *options)
{
	struct cycle_stats stats;
	struct stress_random random;
	unsigned long cycle;
	__u64 start;
	int vtpmx;

	vtpmx = vtpmx_open();
	if (vtpmx < 0) {
		stress_info("opening /dev/vtpmx failed: %s", strerror(-vtpmx));
		return 1;
	}
	memset(&stats, 0, sizeof(stats));
	random_init(&random, options->seed, 0);

	start = now_ms();
	for (cycle = 0; cycle < options->count; cycle++) {
		run_cycle(vtpmx, cycle, &random, &stats, options->verbose);
		stress_progress(cycle + 1, options->count);
	}
	close(vtpmx);

	stress_info("time in registrations %llu ms, in close() %llu ms",
		    (unsigned long long)stats.registration_ms,
		    (unsigned long long)stats.close_ms);
	stress_info("%lu cycles in %llu ms; closed registered %lu, at once %lu, after answers %lu, with a command read %lu; slowest close %llu ms",
		    options->count, (unsigned long long)(now_ms() - start),
		    stats.closed_at[CLOSE_REGISTERED],
		    stats.closed_at[CLOSE_AT_ONCE],
		    stats.closed_at[CLOSE_AFTER_ANSWERS],
		    stats.closed_at[CLOSE_COMMAND_READ],
		    (unsigned long long)stats.slowest_close);
	return check_report(checks, NR_CHECKS) ? 1 : 0;
}
