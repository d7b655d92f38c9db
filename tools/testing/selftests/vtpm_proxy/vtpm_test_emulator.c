// SPDX-License-Identifier: GPL-2.0
/*
 * vtpm_test_emulator: create vTPM proxy devices (or serve server fds that
 * were passed in) and respond to their commands as a minimal TPM, for
 * benchmarks and stress tests. See print_usage() for the options.
 *
 * Once each created device is registered, its /dev/tpmN path is printed
 * on a line of its own on stdout. The program then serves until SIGINT,
 * SIGTERM or SIGHUP, until --seconds have passed, or until every device
 * is dead, and prints how many commands each device received on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "vtpm_emulator.h"

#define DEFAULT_WAIT_SECONDS	30
/*
 * Devices created and registered together. Registrations run in parallel
 * in our driver, and hundreds at once starve the emulator threads of CPU
 * time on a small machine, so that the TPM core's 750 ms TPM 2.0
 * durations run out.
 */
#define DEFAULT_BATCH		25
#define WAIT_STEP_MS		10

struct options {
	bool tpm2;
	unsigned long nr_devices;
	unsigned long batch;
	int *fds;
	size_t nr_fds;
	struct vtpm_fault faults[VTPM_MAX_FAULTS];
	unsigned int nr_faults;
	__u32 durations_us[3];
	bool set_durations;
	FILE *log;
	bool wait;
	unsigned long wait_seconds;
	unsigned long seconds;
};

static void print_usage(FILE *out)
{
	fprintf(out,
		"usage: vtpm_test_emulator [OPTION]...\n"
		"Create vTPM proxy devices through /dev/vtpmx, or serve server fds passed\n"
		"in, and respond to their commands as a minimal TPM.\n"
		"\n"
		"  --tpm2              emulate TPM 2.0 chips (the default)\n"
		"  --tpm12             emulate TPM 1.2 chips\n"
		"  --devices N         create N devices (default 1, or 0 with --fd)\n"
		"  --batch N           create and register devices N at a time, each batch\n"
		"                      served by its own thread (default %d)\n"
		"  --fd FD             also serve the inherited server fd FD; repeatable\n"
		"  --fault SPEC        misbehave on every device; repeatable. SPEC is\n"
		"                      KIND[,ordinal=N][,index=N][,code=N][,delay=MS]\n"
		"                      with KIND one of error, bad-length, garbage,\n"
		"                      truncate, split, delay, stall, hang, exit; index\n"
		"                      counts matching commands from 0; exit ends the\n"
		"                      whole program\n"
		"  --durations S,M,L   TPM 1.2 short, medium and long command durations\n"
		"                      to report, in microseconds\n"
		"  --log FILE          print every command received to FILE (- for stderr)\n"
		"  --no-wait           print the device paths at once, not after\n"
		"                      registration\n"
		"  --wait-seconds N    how long to wait for registration (default %d)\n"
		"  --seconds N         serve for N seconds, then exit (default: until a\n"
		"                      signal or until every device is dead)\n"
		"  -h, --help          print this help\n"
		"\n"
		"Exit status: 0 when served to the end, 1 on an error, 2 on bad usage.\n",
		DEFAULT_BATCH, DEFAULT_WAIT_SECONDS);
}

static int parse_durations(const char *text, __u32 durations_us[3])
{
	unsigned long a, b, c;
	char extra;

	if (sscanf(text, "%lu,%lu,%lu%c", &a, &b, &c, &extra) != 3)
		return -EINVAL;
	durations_us[0] = a;
	durations_us[1] = b;
	durations_us[2] = c;
	return 0;
}

static int parse_unsigned(const char *text, unsigned long *value)
{
	char *end;

	errno = 0;
	*value = strtoul(text, &end, 0);
	return errno || end == text || *end ? -EINVAL : 0;
}

static int parse_options(int argc, char **argv, struct options *opts)
{
	static const struct option long_options[] = {
		{ "tpm2", no_argument, NULL, '2' },
		{ "tpm12", no_argument, NULL, '1' },
		{ "devices", required_argument, NULL, 'n' },
		{ "batch", required_argument, NULL, 'b' },
		{ "fd", required_argument, NULL, 'f' },
		{ "fault", required_argument, NULL, 'F' },
		{ "durations", required_argument, NULL, 'd' },
		{ "log", required_argument, NULL, 'l' },
		{ "no-wait", no_argument, NULL, 'W' },
		{ "wait-seconds", required_argument, NULL, 'w' },
		{ "seconds", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool devices_given = false;
	unsigned long value;
	int c;

	memset(opts, 0, sizeof(*opts));
	opts->tpm2 = true;
	opts->nr_devices = 1;
	opts->batch = DEFAULT_BATCH;
	opts->wait = true;
	opts->wait_seconds = DEFAULT_WAIT_SECONDS;

	while ((c = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (c) {
		case '2':
			opts->tpm2 = true;
			break;
		case '1':
			opts->tpm2 = false;
			break;
		case 'n':
			if (parse_unsigned(optarg, &opts->nr_devices)) {
				fprintf(stderr, "invalid --devices '%s': expected a number\n",
					optarg);
				return -EINVAL;
			}
			devices_given = true;
			break;
		case 'b':
			if (parse_unsigned(optarg, &opts->batch) || !opts->batch) {
				fprintf(stderr, "invalid --batch '%s': expected a number above 0\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'f':
			if (parse_unsigned(optarg, &value) || value > INT_MAX) {
				fprintf(stderr, "invalid --fd '%s': expected an fd number\n",
					optarg);
				return -EINVAL;
			}
			opts->fds = realloc(opts->fds, (opts->nr_fds + 1) *
					    sizeof(*opts->fds));
			if (!opts->fds)
				return -ENOMEM;
			opts->fds[opts->nr_fds++] = value;
			break;
		case 'F':
			if (opts->nr_faults == VTPM_MAX_FAULTS) {
				fprintf(stderr, "too many --fault options: at most %d\n",
					VTPM_MAX_FAULTS);
				return -EINVAL;
			}
			if (vtpm_fault_parse(optarg,
					     &opts->faults[opts->nr_faults])) {
				fprintf(stderr, "invalid --fault '%s'; see --help\n",
					optarg);
				return -EINVAL;
			}
			opts->nr_faults++;
			break;
		case 'd':
			if (parse_durations(optarg, opts->durations_us)) {
				fprintf(stderr, "invalid --durations '%s': expected S,M,L in us\n",
					optarg);
				return -EINVAL;
			}
			opts->set_durations = true;
			break;
		case 'l':
			opts->log = strcmp(optarg, "-") ? fopen(optarg, "w") :
							  stderr;
			if (!opts->log) {
				fprintf(stderr, "cannot open log file %s: %s\n",
					optarg, strerror(errno));
				return -EINVAL;
			}
			break;
		case 'W':
			opts->wait = false;
			break;
		case 'w':
			if (parse_unsigned(optarg, &opts->wait_seconds)) {
				fprintf(stderr, "invalid --wait-seconds '%s'\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 's':
			if (parse_unsigned(optarg, &opts->seconds)) {
				fprintf(stderr, "invalid --seconds '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			print_usage(stdout);
			exit(0);
		default:
			print_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "unexpected argument '%s'; see --help\n",
			argv[optind]);
		return -EINVAL;
	}
	if (opts->nr_fds && !devices_given)
		opts->nr_devices = 0;
	if (!opts->nr_fds && !opts->nr_devices) {
		fprintf(stderr, "nothing to serve: give --devices N or --fd FD\n");
		return -EINVAL;
	}
	return 0;
}

static void setup_emulator(struct vtpm_emulator *emu,
			   const struct options *opts)
{
	unsigned int i;

	vtpm_emulator_init(emu, opts->tpm2);
	emu->exit_process = true;
	emu->log = opts->log;
	if (opts->set_durations)
		memcpy(emu->durations_us, opts->durations_us,
		       sizeof(emu->durations_us));
	for (i = 0; i < opts->nr_faults; i++)
		vtpm_emulator_add_fault(emu, &opts->faults[i]);
}

/*
 * Make room for a server fd per device, and an epoll fd and a pipe per
 * server thread, as far as the hard limit allows (root may raise it).
 */
static void raise_fd_limit(unsigned long nr_devices)
{
	rlim_t needed = 2 * nr_devices + 64;
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit))
		return;
	if (limit.rlim_cur >= needed)
		return;
	limit.rlim_cur = needed;
	if (limit.rlim_max < limit.rlim_cur)
		limit.rlim_max = limit.rlim_cur;
	if (setrlimit(RLIMIT_NOFILE, &limit))
		fprintf(stderr, "cannot raise the open file limit to %lu: %s\n",
			(unsigned long)limit.rlim_cur, strerror(errno));
}

static int create_device(int vtpmx, struct vtpm_emulator *emu, bool tpm2)
{
	struct vtpm_proxy_new_dev dev = {
		.flags = tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0,
	};

	if (ioctl(vtpmx, VTPM_PROXY_IOC_NEW_DEV, &dev)) {
		fprintf(stderr, "VTPM_PROXY_IOC_NEW_DEV failed: %s\n",
			strerror(errno));
		return -1;
	}
	emu->fd = dev.fd;
	snprintf(emu->name, sizeof(emu->name), "tpm%u", dev.tpm_num);
	return 0;
}

/* Wait until /dev/NAME exists; false on timeout or if the device died. */
static bool wait_registered(struct vtpm_emulator *emu, unsigned long seconds)
{
	const struct timespec step = { 0, WAIT_STEP_MS * 1000000L };
	unsigned long waited_ms = 0;
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/dev/%s", emu->name);
	while (stat(path, &st)) {
		if (vtpm_emulator_is_dead(emu) || waited_ms >= seconds * 1000)
			return false;
		nanosleep(&step, NULL);
		waited_ms += WAIT_STEP_MS;
	}
	return true;
}

static bool all_dead(struct vtpm_emulator *emus, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!vtpm_emulator_is_dead(&emus[i]))
			return false;
	return true;
}

/* Serve until a signal, the time limit, or the death of every device. */
static void serve(struct vtpm_emulator *emus, size_t n, const sigset_t *stop,
		  unsigned long seconds)
{
	const struct timespec step = { 0, 200 * 1000000L };
	struct timespec start, now;
	siginfo_t info;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (sigtimedwait(stop, &info, &step) > 0)
			return;
		if (all_dead(emus, n)) {
			fprintf(stderr, "every device is dead; exiting\n");
			return;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (seconds && (unsigned long)(now.tv_sec - start.tv_sec) >=
			       seconds)
			return;
	}
}

/* Start one more server thread for @n emulators. */
static int start_server(struct vtpm_server *servers, size_t *nr_servers,
			struct vtpm_emulator *emus, size_t n)
{
	struct vtpm_emulator **list;
	size_t i;
	int rc;

	list = calloc(n, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		list[i] = &emus[i];
	rc = vtpm_server_start(&servers[*nr_servers], list, n);
	free(list);
	if (rc) {
		fprintf(stderr, "cannot start a server thread: %s\n",
			strerror(-rc));
		return rc;
	}
	(*nr_servers)++;
	return 0;
}

/*
 * Create devices [@first, @first + @n), serve them, and print their nodes
 * once they are registered (at once with --no-wait).
 */
static int create_batch(int vtpmx, struct vtpm_emulator *emus, size_t first,
			size_t n, const struct options *opts,
			struct vtpm_server *servers, size_t *nr_servers)
{
	size_t i;

	for (i = first; i < first + n; i++)
		if (create_device(vtpmx, &emus[i], opts->tpm2))
			return -1;
	if (start_server(servers, nr_servers, emus + first, n))
		return -1;

	for (i = first; i < first + n; i++) {
		if (opts->wait && !wait_registered(&emus[i], opts->wait_seconds)) {
			fprintf(stderr, "/dev/%s was not registered within %lu s%s\n",
				emus[i].name, opts->wait_seconds,
				vtpm_emulator_is_dead(&emus[i]) ?
				": the device died" : "");
			return -1;
		}
		printf("/dev/%s\n", emus[i].name);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	struct vtpm_server *servers;
	struct vtpm_emulator *emus;
	size_t n, i, first, nr_servers = 0;
	int vtpmx = -1, status = 0;
	struct options opts;
	sigset_t stop;

	if (parse_options(argc, argv, &opts))
		return 2;

	/* The server threads inherit the mask; only sigtimedwait() takes them. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	n = opts.nr_devices + opts.nr_fds;
	emus = calloc(n, sizeof(*emus));
	servers = calloc(opts.nr_devices / opts.batch + 2, sizeof(*servers));
	if (!emus || !servers) {
		fprintf(stderr, "out of memory for %zu emulators\n", n);
		return 1;
	}
	raise_fd_limit(n);
	for (i = 0; i < n; i++)
		setup_emulator(&emus[i], &opts);

	/* The inherited server fds come after the devices we create. */
	for (i = 0; i < opts.nr_fds; i++) {
		struct vtpm_emulator *emu = &emus[opts.nr_devices + i];

		emu->fd = opts.fds[i];
		snprintf(emu->name, sizeof(emu->name), "fd%d", emu->fd);
	}
	if (opts.nr_fds && start_server(servers, &nr_servers,
					emus + opts.nr_devices, opts.nr_fds))
		return 1;

	if (opts.nr_devices) {
		vtpmx = open("/dev/vtpmx", O_RDWR | O_CLOEXEC);
		if (vtpmx < 0) {
			perror("cannot open /dev/vtpmx (load tpm_vtpm_proxy, run as root)");
			return 1;
		}
	}
	for (first = 0; first < opts.nr_devices; first += opts.batch) {
		size_t count = opts.nr_devices - first;

		if (count > opts.batch)
			count = opts.batch;
		if (create_batch(vtpmx, emus, first, count, &opts, servers,
				 &nr_servers)) {
			status = 1;
			break;
		}
	}
	if (vtpmx >= 0)
		close(vtpmx);

	if (!status)
		serve(emus, n, &stop, opts.seconds);

	for (i = 0; i < nr_servers; i++)
		vtpm_server_stop(&servers[i]);
	for (i = 0; i < n; i++) {
		fprintf(stderr, "%s: %zu commands received\n", emus[i].name,
			vtpm_emulator_count(&emus[i], VTPM_ANY_ORDINAL));
		vtpm_emulator_destroy(&emus[i]);
	}
	free(servers);
	free(emus);
	free(opts.fds);
	if (opts.log && opts.log != stderr)
		fclose(opts.log);
	return status;
}
