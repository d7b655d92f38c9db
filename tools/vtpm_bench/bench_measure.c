// SPDX-License-Identifier: GPL-2.0
/*
 * vtpm_bench: the measurements of one run. Each one appends its samples
 * to samples.csv under a metric name that bench_report.c reads:
 *
 *   rtt_pipe, rtt_{tpm,tpmrm}_{trivial,swtpm}  round trips, ns
 *   create_ready, close_gone                   per device, ns
 *   scale_*                                    many devices at once
 *   tput_N                                     commands/s with N devices
 *                                              (or N pipe pairs)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vtpm_bench.h"

/* Round trips made before the measured ones, so that caches are warm. */
#define WARMUP_COMMANDS		50
/* Pause before reading /proc/meminfo, so that freed memory settles. */
#define SETTLE_SECONDS		1.0
/* Tries to bring up devices whose registration fails under load. */
#define MAX_ATTEMPTS		3

/* Set to end the throughput clients' loops; read with __atomic. */
static int clients_stop;

/**
 * struct client - a thread that sends commands as fast as it can
 * @end:      its channel
 * @start:    all clients and the timer start together
 * @commands: round trips completed
 * @error:    -errno of the round trip that failed, or 0
 * @thread:   the thread
 */
struct client {
	const struct endpoint *end;
	pthread_barrier_t *start;
	__u64 commands;
	int error;
	pthread_t thread;
};

/* The kernel memory counters of /proc/meminfo that we compare, in KiB. */
struct meminfo {
	long long available;
	long long slab;
	long long kernel_stack;
};

static void *zalloc(size_t count, size_t size)
{
	void *p = calloc(count, size);

	if (!p)
		fail("out of memory for %zu entries of %zu bytes", count, size);
	return p;
}

static void sleep_seconds(double seconds)
{
	struct timespec ts = {
		.tv_sec = (time_t)seconds,
		.tv_nsec = (long)((seconds - (time_t)seconds) * NSEC_PER_SEC),
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Measure @count round trips on one channel; fails the program on error. */
static void measure_round_trips(int wfd, int rfd, unsigned int count,
				struct samples *s, const char *what)
{
	__u8 response[VTPM_BUFSIZE];
	unsigned int i;
	__u64 start;
	int rc;

	for (i = 0; i < WARMUP_COMMANDS + count; i++) {
		start = now_ns();
		rc = round_trip(wfd, rfd, response);
		if (rc)
			fail("round trip %u through %s failed: %s", i, what,
			     strerror(-rc));
		if (i >= WARMUP_COMMANDS)
			samples_add(s, now_ns() - start);
	}
}

static void *client_main(void *arg)
{
	struct client *client = arg;
	__u8 response[VTPM_BUFSIZE];

	/* One round trip first: the clock starts when all are running. */
	client->error = round_trip(client->end->client_write,
				   client->end->client_read, response);
	pthread_barrier_wait(client->start);
	while (!client->error &&
	       !__atomic_load_n(&clients_stop, __ATOMIC_RELAXED)) {
		client->error = round_trip(client->end->client_write,
					   client->end->client_read, response);
		if (!client->error)
			client->commands++;
	}
	return NULL;
}

/*
 * Run one client thread per channel for @seconds and return the commands
 * per second that all of them completed together.
 */
static double run_clients(const struct endpoint *ends, unsigned int count,
			  double seconds, const char *what)
{
	struct client *clients = zalloc(count, sizeof(*clients));
	pthread_barrier_t start;
	__u64 total = 0, begin;
	unsigned int i;

	pthread_barrier_init(&start, NULL, count + 1);
	__atomic_store_n(&clients_stop, 0, __ATOMIC_RELAXED);
	for (i = 0; i < count; i++) {
		clients[i].end = &ends[i];
		clients[i].start = &start;
		if (pthread_create(&clients[i].thread, NULL, client_main,
				   &clients[i]))
			fail("cannot start client thread %u", i);
	}

	pthread_barrier_wait(&start);
	begin = now_ns();
	sleep_seconds(seconds);
	__atomic_store_n(&clients_stop, 1, __ATOMIC_RELAXED);
	for (i = 0; i < count; i++)
		pthread_join(clients[i].thread, NULL);
	seconds = (double)(now_ns() - begin) / NSEC_PER_SEC;
	pthread_barrier_destroy(&start);

	for (i = 0; i < count; i++) {
		if (clients[i].error)
			fail("a client of %s failed: %s", what,
			     strerror(-clients[i].error));
		total += clients[i].commands;
	}
	free(clients);
	return total / seconds;
}

static void open_pipe_pair(struct endpoint *end)
{
	int request[2], response[2];

	if (pipe2(request, O_CLOEXEC) || pipe2(response, O_CLOEXEC))
		fail("pipe2 failed: %s", strerror(errno));
	end->client_write = request[1];
	end->server_read = request[0];
	end->server_write = response[1];
	end->client_read = response[0];
}

static void close_client_ends(struct endpoint *ends, unsigned int count)
{
	unsigned int i;

	for (i = 0; i < count; i++) {
		if (ends[i].client_write >= 0)
			close(ends[i].client_write);
		if (ends[i].client_read != ends[i].client_write &&
		    ends[i].client_read >= 0)
			close(ends[i].client_read);
	}
}

static double pipe_throughput(struct bench_run *run, unsigned int count)
{
	struct endpoint *ends = zalloc(count, sizeof(*ends));
	struct server_child child;
	unsigned int i;
	double rate;

	for (i = 0; i < count; i++)
		open_pipe_pair(&ends[i]);
	spawn_servers(ends, count, true, &child);
	rate = run_clients(ends, count, run->opt->seconds, "the pipe floor");
	close_client_ends(ends, count);
	stop_servers(&child);
	free(ends);
	return rate;
}

/* @base with the suffix of the run's current placement, into @name. */
static void placed_metric(const struct bench_run *run, char *name,
			  size_t size, const char *base)
{
	snprintf(name, size, "%s%s", base, run->placement);
}

/*
 * The floor: the same request and response bytes between two processes
 * over a pair of pipes, with the same trivial emulator on the other end.
 */
void measure_pipe_round_trips(struct bench_run *run)
{
	struct samples s = { 0 };
	struct server_child child;
	struct endpoint end;
	char metric[32];

	note("pipe floor: %u round trips%s", run->opt->commands,
	     run->placement_note);
	open_pipe_pair(&end);
	spawn_servers(&end, 1, true, &child);
	measure_round_trips(end.client_write, end.client_read,
			    run->opt->commands, &s, "a pipe pair");
	close_client_ends(&end, 1);
	stop_servers(&child);
	placed_metric(run, metric, sizeof(metric), "rtt_pipe");
	record_samples(run, DRIVER_PIPE, metric, &s);
	samples_free(&s);
}

void measure_pipe_throughput(struct bench_run *run)
{
	const struct bench_options *opt = run->opt;
	char metric[32];
	unsigned int i;

	for (i = 0; i < opt->nr_parallel; i++) {
		note("pipe floor: throughput with %u pairs", opt->parallel[i]);
		snprintf(metric, sizeof(metric), "tput_%u", opt->parallel[i]);
		record(run, DRIVER_PIPE, metric,
		       pipe_throughput(run, opt->parallel[i]));
	}
}

/* Wait until /dev/tpmN and /dev/tpmrmN of a closed device are gone. */
static void wait_device_gone(struct bench_run *run, unsigned int num)
{
	static const char * const kinds[] = { "tpm", "tpmrm" };
	char path[32];
	unsigned int i;

	for (i = 0; i < 2; i++) {
		device_node(path, sizeof(path), kinds[i], num);
		if (wait_node(run, path, false))
			fail("%s still exists after its server fd was closed",
			     path);
	}
}

/* Close the clients, end the serving child, wait for the nodes to go. */
static void stop_trivial_devices(struct bench_run *run,
				 struct server_child *child,
				 const struct bench_device *devs,
				 struct endpoint *ends, unsigned int count)
{
	unsigned int i;

	close_client_ends(ends, count);
	stop_servers(child);
	for (i = 0; i < count; i++)
		wait_device_gone(run, devs[i].num);
}

/*
 * Create @count devices served by a child process with the trivial
 * emulator, and open each /dev/tpmN once it responds. Fills @devs, @ends
 * and @child. Returns 0, or -EPIPE when a registration failed; then
 * everything is torn down again.
 */
static int start_trivial_devices(struct bench_run *run,
				 struct bench_device *devs,
				 struct endpoint *ends, unsigned int count,
				 struct server_child *child)
{
	unsigned int i;
	int rc = 0, fd;

	for (i = 0; i < count; i++) {
		rc = device_create(run, &devs[i]);
		if (rc)
			fail("VTPM_PROXY_IOC_NEW_DEV failed: %s", strerror(-rc));
		ends[i].server_read = devs[i].fd;
		ends[i].server_write = devs[i].fd;
		ends[i].client_write = -1;
		ends[i].client_read = -1;
	}
	/*
	 * This process keeps its server fds until each device responds, to
	 * see a failed registration as a hang-up. The child must not get
	 * more than these: a server fd that another process still has open
	 * keeps its device alive after the child closes it.
	 */
	spawn_servers(ends, count, false, child);

	for (i = 0; i < count && !rc; i++) {
		fd = open_when_ready(run, devs[i].num, devs[i].fd);
		if (fd == -EPIPE) {
			run->registration_failures++;
			rc = fd;
		} else if (fd < 0) {
			fail("/dev/tpm%u did not respond: %s", devs[i].num,
			     strerror(-fd));
		} else {
			ends[i].client_write = fd;
			ends[i].client_read = fd;
		}
	}

	for (i = 0; i < count; i++) {
		close(devs[i].fd);
		devs[i].fd = -1;
	}
	if (rc)
		stop_trivial_devices(run, child, devs, ends, count);
	return rc;
}

/*
 * Start trivial devices, again when a registration fails: a module may
 * fail one when the emulator is not scheduled within a command's
 * duration.
 */
static void start_trivial_devices_retrying(struct bench_run *run,
					   struct bench_device *devs,
					   struct endpoint *ends,
					   unsigned int count,
					   struct server_child *child)
{
	unsigned int attempt;

	for (attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
		if (!start_trivial_devices(run, devs, ends, count, child))
			return;
		note("%s: a registration failed; creating the devices again",
		     run->opt->driver);
	}
	fail("registrations failed in %d tries in a row", MAX_ATTEMPTS);
}

/* Round trips through /dev/tpmN and /dev/tpmrmN of one device. */
static void measure_device_round_trips(struct bench_run *run, int tpm_fd,
				       unsigned int num, const char *emulator)
{
	const char *driver = run->opt->driver;
	struct samples s = { 0 };
	char path[32], base[32], metric[32];
	int fd;

	device_node(path, sizeof(path), "tpm", num);
	measure_round_trips(tpm_fd, tpm_fd, run->opt->commands, &s, path);
	snprintf(base, sizeof(base), "rtt_tpm_%s", emulator);
	placed_metric(run, metric, sizeof(metric), base);
	record_samples(run, driver, metric, &s);
	samples_free(&s);

	device_node(path, sizeof(path), "tpmrm", num);
	if (wait_node(run, path, true))
		fail("%s did not appear", path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail("cannot open %s: %s", path, strerror(errno));
	measure_round_trips(fd, fd, run->opt->commands, &s, path);
	close(fd);
	snprintf(base, sizeof(base), "rtt_tpmrm_%s", emulator);
	placed_metric(run, metric, sizeof(metric), base);
	record_samples(run, driver, metric, &s);
	samples_free(&s);
}

void measure_trivial_round_trips(struct bench_run *run)
{
	struct server_child child;
	struct bench_device dev;
	struct endpoint end;

	note("%s: %u round trips with the trivial emulator%s",
	     run->opt->driver, run->opt->commands, run->placement_note);
	start_trivial_devices_retrying(run, &dev, &end, 1, &child);
	measure_device_round_trips(run, end.client_write, dev.num, "trivial");
	stop_trivial_devices(run, &child, &dev, &end, 1);
}

void measure_swtpm_round_trips(struct bench_run *run)
{
	char state_dir[64], path[32];
	unsigned int num, attempt;
	pid_t pid = -1;
	int fd;

	note("%s: %u round trips with swtpm%s", run->opt->driver,
	     run->opt->commands, run->placement_note);
	for (attempt = 1; attempt <= MAX_ATTEMPTS && pid < 0; attempt++) {
		pid = swtpm_start(run, state_dir, sizeof(state_dir), &num);
		if (pid < 0) {
			run->registration_failures++;
			note("%s: the registration of swtpm's device failed",
			     run->opt->driver);
		}
	}
	if (pid < 0)
		fail("swtpm's device failed to register %d times in a row",
		     MAX_ATTEMPTS);

	device_node(path, sizeof(path), "tpm", num);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail("cannot open %s: %s", path, strerror(errno));
	measure_device_round_trips(run, fd, num, "swtpm");
	close(fd);
	swtpm_stop(run, pid, state_dir, num);
}

/*
 * Create devices one after the other. create_ready runs from the ioctl
 * until a TPM2_GetRandom through /dev/tpmN succeeds; close_gone from
 * closing the server fd until /dev/tpmN no longer exists.
 */
void measure_create_close(struct bench_run *run)
{
	unsigned int failures = 0, max_failures = run->opt->devices / 10;
	struct samples ready = { 0 }, gone = { 0 };
	char path[32], metric[32];
	struct epoll_server server;
	struct bench_device dev;
	__u64 start;
	int rc, fd;

	note("%s: creating and closing %u devices%s", run->opt->driver,
	     run->opt->devices, run->placement_note);
	rc = epoll_server_start(&server, run);
	if (rc)
		fail("cannot start the epoll server: %s", strerror(-rc));

	while (ready.count < run->opt->devices) {
		trivial_emulator_init(&dev.emu);
		rc = epoll_server_create(&server, &dev, 1);
		if (rc)
			fail("VTPM_PROXY_IOC_NEW_DEV failed: %s", strerror(-rc));
		fd = open_when_ready(run, dev.num, dev.fd);
		if (fd >= 0) {
			samples_add(&ready, now_ns() - dev.created_ns);
			close(fd);
		} else if (fd == -EPIPE) {
			run->registration_failures++;
			if (++failures > max_failures + MAX_ATTEMPTS)
				fail("%u registrations failed", failures);
		} else {
			fail("/dev/tpm%u did not respond: %s", dev.num,
			     strerror(-fd));
		}

		epoll_server_remove(&server, &dev);
		device_node(path, sizeof(path), "tpm", dev.num);
		start = now_ns();
		close(dev.fd);
		if (wait_node(run, path, false))
			fail("%s still exists after its server fd was closed",
			     path);
		if (fd >= 0)
			samples_add(&gone, now_ns() - start);
		wait_device_gone(run, dev.num);
		vtpm_emulator_destroy(&dev.emu);
	}
	epoll_server_stop(&server);

	placed_metric(run, metric, sizeof(metric), "create_ready");
	record_samples(run, run->opt->driver, metric, &ready);
	placed_metric(run, metric, sizeof(metric), "close_gone");
	record_samples(run, run->opt->driver, metric, &gone);
	samples_free(&ready);
	samples_free(&gone);
}

static void read_meminfo(struct meminfo *info)
{
	char line[256];
	FILE *file;
	int fd;

	/* Fold the per-CPU counter deltas into the global counters. */
	fd = open("/proc/sys/vm/stat_refresh", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			note("/proc/sys/vm/stat_refresh: %s", strerror(errno));
		close(fd);
	}

	memset(info, 0, sizeof(*info));
	file = fopen("/proc/meminfo", "re");
	if (!file)
		fail("cannot open /proc/meminfo: %s", strerror(errno));
	while (fgets(line, sizeof(line), file)) {
		if (sscanf(line, "MemAvailable: %lld kB", &info->available) == 1)
			continue;
		if (sscanf(line, "Slab: %lld kB", &info->slab) == 1)
			continue;
		if (sscanf(line, "KernelStack: %lld kB",
			   &info->kernel_stack) == 1)
			continue;
	}
	fclose(file);
}

/*
 * Create all devices and wait until every /dev/tpmN exists or its server
 * fd hung up. Returns the number of devices whose registration failed;
 * their @failed is set.
 */
static unsigned int scale_create(struct bench_run *run,
				 struct epoll_server *server,
				 struct bench_device *devs, unsigned int count)
{
	unsigned int i, failed = 0;
	char path[32];
	int rc;

	rc = epoll_server_create(server, devs, count);
	if (rc)
		fail("creating %u devices failed: %s", count, strerror(-rc));
	for (i = 0; i < count; i++) {
		device_node(path, sizeof(path), "tpm", devs[i].num);
		rc = wait_node_until(run, path, true, devs[i].fd,
				     NODE_TIMEOUT_MS);
		if (rc == -EPIPE) {
			devs[i].failed = true;
			failed++;
		} else if (rc) {
			fail("%s did not appear: %s", path, strerror(-rc));
		}
	}
	return failed;
}

/* Count the devices through which a TPM2_GetRandom succeeds. */
static unsigned int scale_count_answering(struct bench_run *run,
					  const struct bench_device *devs,
					  unsigned int count)
{
	unsigned int i, answered = 0;
	int fd;

	for (i = 0; i < count; i++) {
		if (devs[i].failed)
			continue;
		fd = open_when_ready(run, devs[i].num, devs[i].fd);
		if (fd < 0) {
			note("/dev/tpm%u did not respond: %s", devs[i].num,
			     strerror(-fd));
			continue;
		}
		close(fd);
		answered++;
	}
	return answered;
}

/* Record the growth of a /proc/meminfo counter per device, in bytes. */
static void record_growth(struct bench_run *run, const char *metric,
			  long long before_kib, long long after_kib,
			  unsigned int count)
{
	record(run, run->opt->driver, metric,
	       (double)(after_kib - before_kib) * 1024 / count);
}

/*
 * Keep opt->scale devices alive at once, all served by one epoll thread,
 * and compare the kernel's memory counters before and after. The
 * emulators' memory is allocated before the first reading.
 */
void measure_scale(struct bench_run *run)
{
	unsigned int i, count = run->opt->scale, answered;
	struct meminfo before, after;
	struct epoll_server server;
	struct bench_device *devs;
	__u64 start;
	int rc;

	note("%s: %u devices at once", run->opt->driver, count);
	rc = raise_fd_limit(count + 256);
	if (rc)
		fail("cannot allow %u open files: %s", count + 256,
		     strerror(-rc));
	devs = zalloc(count, sizeof(*devs));
	for (i = 0; i < count; i++)
		trivial_emulator_init(&devs[i].emu);
	rc = epoll_server_start(&server, run);
	if (rc)
		fail("cannot start the epoll server: %s", strerror(-rc));

	sleep_seconds(SETTLE_SECONDS);
	read_meminfo(&before);
	start = now_ns();
	run->registration_failures += scale_create(run, &server, devs, count);
	record(run, run->opt->driver, "scale_ready_all", now_ns() - start);
	answered = scale_count_answering(run, devs, count);
	record(run, run->opt->driver, "scale_answered", answered);
	sleep_seconds(SETTLE_SECONDS);
	read_meminfo(&after);

	/* MemAvailable falls as the devices use memory: record the drop. */
	record_growth(run, "scale_mem_available", after.available,
		      before.available, count);
	record_growth(run, "scale_slab", before.slab, after.slab, count);
	record_growth(run, "scale_kernel_stack", before.kernel_stack,
		      after.kernel_stack, count);

	/*
	 * The others are still served while a device closes: closing the
	 * TPM that is the kernel's current hardware RNG makes the kernel
	 * read from the next TPM.
	 */
	start = now_ns();
	for (i = 0; i < count; i++) {
		epoll_server_remove(&server, &devs[i]);
		close(devs[i].fd);
	}
	for (i = 0; i < count; i++)
		wait_device_gone(run, devs[i].num);
	record(run, run->opt->driver, "scale_teardown", now_ns() - start);
	epoll_server_stop(&server);
	fflush(run->csv);

	for (i = 0; i < count; i++)
		vtpm_emulator_destroy(&devs[i].emu);
	free(devs);
	if (!answered)
		fail("none of %u devices responded", count);
}

/* Commands per second with one client thread per device. */
void measure_throughput(struct bench_run *run)
{
	const struct bench_options *opt = run->opt;
	struct server_child child;
	struct bench_device *devs;
	struct endpoint *ends;
	unsigned int i, count;
	char metric[32];
	double rate;

	for (i = 0; i < opt->nr_parallel; i++) {
		count = opt->parallel[i];
		note("%s: throughput with %u devices", opt->driver, count);
		devs = zalloc(count, sizeof(*devs));
		ends = zalloc(count, sizeof(*ends));
		start_trivial_devices_retrying(run, devs, ends, count,
					       &child);
		rate = run_clients(ends, count, opt->seconds, "a device");
		stop_trivial_devices(run, &child, devs, ends, count);
		snprintf(metric, sizeof(metric), "tput_%u", count);
		record(run, opt->driver, metric, rate);
		fflush(run->csv);
		free(devs);
		free(ends);
	}
}
