// SPDX-License-Identifier: GPL-2.0
/*
 * vtpm_stress: stress, fault and fuzz lanes for the vTPM proxy driver.
 * Run as root where the driver is loaded (in a test guest); see print_usage().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vtpm_stress.h"

static const struct {
	const char *name;
	int (*run)(const struct lane_options *options);
	unsigned long default_count;
} lanes[] = {
	{ "cycles", lane_cycles, 10000 },
	{ "kill", lane_kill, 1000 },
	{ "threads", lane_threads, 2000 },
	{ "rmmod", lane_rmmod, 2000 },
	{ "fuzz", lane_fuzz, 10000 },
	{ "probe", lane_probe, 1 },
};

#define NR_LANES ARRAY_SIZE(lanes)

static void print_usage(FILE *out)
{
	fprintf(out,
		"Usage: vtpm_stress LANE [-n COUNT] [-s SEED] [-f FIRST] [-m MODULE.ko] [-v]\n"
		"\n"
		"  cycles   COUNT create-and-close cycles, TPM 2.0 and 1.2 mixed,\n"
		"           some closed before registration finishes (10000)\n"
		"  kill     COUNT emulators killed with SIGKILL at a random point,\n"
		"           with clients blocked on /dev/tpmN and /dev/tpmrmN (1000)\n"
		"  threads  COUNT device lives made by 8 threads while others use\n"
		"           /dev/tpmrmN, sysfs and /dev/hwrng (2000)\n"
		"  rmmod    COUNT device lives while delete_module() runs in a\n"
		"           loop; needs -m, the .ko to load again (2000)\n"
		"  fuzz     COUNT device lives of an emulator that answers with\n"
		"           random lengths, bytes and return codes (10000)\n"
		"  probe    the next device is /dev/tpm0 and works\n"
		"\n"
		"  -n COUNT   size of the lane (default in brackets above)\n"
		"  -s SEED    seed of the random choices; the lane prints the seed\n"
		"             it used, and the same seed repeats the same choices\n"
		"  -f FIRST   fuzz: start at device life FIRST (replays one life\n"
		"             with -n 1)\n"
		"  -m MODULE  rmmod: tpm_vtpm_proxy.ko to load after an unload\n"
		"  -v         print a line per cycle or device life\n"
		"\n"
		"Prints \"ok - BEHAVIOUR\" or \"not ok - BEHAVIOUR\" per behaviour\n"
		"checked; exits 1 when one failed, 2 on a usage error.\n");
}

static int parse_number(const char *text, unsigned long long *value)
{
	char *end;

	errno = 0;
	*value = strtoull(text, &end, 0);
	return errno || end == text || *end ? -EINVAL : 0;
}

/* A seed from the clock and the process id, when none was given. */
static __u64 fresh_seed(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return ((__u64)now.tv_sec * 1000000000ULL + now.tv_nsec) ^
	       ((__u64)getpid() << 32);
}

int main(int argc, char **argv)
{
	struct lane_options options = { 0 };
	unsigned long long value;
	bool seed_given = false;
	size_t lane;
	int opt, status;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		print_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (lane = 0; lane < NR_LANES; lane++)
		if (!strcmp(argv[1], lanes[lane].name))
			break;
	if (lane == NR_LANES) {
		fprintf(stderr, "vtpm_stress: unknown lane '%s'\n", argv[1]);
		print_usage(stderr);
		return 2;
	}
	options.count = lanes[lane].default_count;

	optind = 2;
	while ((opt = getopt(argc, argv, "n:s:f:m:v")) != -1) {
		switch (opt) {
		case 'n':
		case 's':
		case 'f':
			if (parse_number(optarg, &value)) {
				fprintf(stderr,
					"vtpm_stress: invalid -%c '%s': expected a number\n",
					opt, optarg);
				return 2;
			}
			if (opt == 'n')
				options.count = value;
			else if (opt == 'f')
				options.first = value;
			else
				options.seed = value;
			seed_given |= opt == 's';
			break;
		case 'm':
			options.module = optarg;
			break;
		case 'v':
			options.verbose = true;
			break;
		default:
			print_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "vtpm_stress: unexpected argument '%s'\n",
			argv[optind]);
		return 2;
	}
	if (!seed_given)
		options.seed = fresh_seed();

	/* Output goes to a file or pipe: keep lines in order with stderr. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# lane %s: count %lu, seed %llu (-s %llu repeats it)\n",
	       lanes[lane].name, options.count,
	       (unsigned long long)options.seed,
	       (unsigned long long)options.seed);
	status = lanes[lane].run(&options);
	if (stress_is_stuck()) {
		/* The process cannot exit while that thread is stuck. */
		printf("# giving up: a thread is stuck in the kernel\n");
		fflush(stdout);
		_exit(1);
	}
	return status;
}
