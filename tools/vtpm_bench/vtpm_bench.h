/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vtpm_bench: benchmarks of the vTPM proxy driver, run inside a guest.
 *
 * "vtpm_bench run" measures the loaded tpm_vtpm_proxy module once and
 * appends the raw samples to samples.csv in its output folder. The same
 * run measures a pipe ping-pong between two processes as the floor.
 * "vtpm_bench report" reads the samples of several runs (our module
 * and Debian's, alternating) and prints the table and the targets.
 *
 * __printf() and __noreturn are the kernel's attribute macros; the
 * Makefile defines them for this userspace build.
 */
#ifndef VTPM_BENCH_H
#define VTPM_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/types.h>

#include "vtpm_emulator.h"

#define ARRAY_SIZE(array)	(sizeof(array) / sizeof((array)[0]))

#define NSEC_PER_SEC		1000000000ULL
#define NSEC_PER_MSEC		1000000ULL

/* TPM2_GetRandom(8): a 12-byte command and a 20-byte response. */
#define GETRANDOM_BYTES		8
#define GETRANDOM_CMD_SIZE	12
#define GETRANDOM_RSP_SIZE	(TPM_HEADER_SIZE + 2 + GETRANDOM_BYTES)

/* How long a device node may take to appear or go away. */
#define NODE_TIMEOUT_MS		60000

/* Maximum number of device counts of the throughput measurement. */
#define MAX_PARALLEL		8

/* The column of samples.csv that names what was measured. */
#define DRIVER_PIPE		"pipe"

/* Suffix of a latency metric measured with everything on one vCPU. */
#define PLACEMENT_ONE_CPU	"_1cpu"

/**
 * struct samples - a growing array of measured values
 * @values: the values, in the order measured until sorted
 * @count:  entries used in @values
 * @size:   entries allocated in @values
 */
struct samples {
	double *values;
	size_t count;
	size_t size;
};

/**
 * struct bench_options - what "vtpm_bench run" measures, and how much
 * @driver:      which module is loaded: "ours" or "debian"; only a label
 * @pass:        the pass number, a label for the alternating order
 * @slot:        position of this run in the boot, a label
 * @out_dir:     folder of samples.csv
 * @commands:    round trips per latency measurement
 * @devices:     devices created and closed one after the other
 * @scale:       devices alive at once
 * @seconds:     duration of each throughput measurement
 * @parallel:    device counts for the throughput measurement
 * @nr_parallel: entries used in @parallel
 * @swtpm:       also measure with swtpm behind the device
 */
struct bench_options {
	const char *driver;
	unsigned int pass;
	unsigned int slot;
	const char *out_dir;
	unsigned int commands;
	unsigned int devices;
	unsigned int scale;
	double seconds;
	unsigned int parallel[MAX_PARALLEL];
	unsigned int nr_parallel;
	bool swtpm;
};

/**
 * struct bench_run - state of one "vtpm_bench run"
 * @opt:            the options
 * @csv:            samples.csv, opened for appending
 * @vtpmx:          /dev/vtpmx, or -1 when only the pipe floor is measured
 * @inotify:        an inotify instance that watches /dev for created and
 *                  deleted nodes, so that waiting for a node costs no
 *                  polling
 * @placement:      suffix of the latency metrics for the current placement
 *                  of the benchmark's processes: "" when they may run on
 *                  any vCPU, PLACEMENT_ONE_CPU when all share one vCPU
 * @placement_note: the same for progress messages
 * @registration_failures: devices whose registration failed (their
 *                  server fd hung up before /dev/tpmN appeared)
 */
struct bench_run {
	const struct bench_options *opt;
	FILE *csv;
	int vtpmx;
	int inotify;
	const char *placement;
	const char *placement_note;
	unsigned int registration_failures;
};

/**
 * struct endpoint - a request/response channel between two processes
 * @client_write: the client writes requests here
 * @client_read:  and reads the responses here
 * @server_read:  the server reads requests here
 * @server_write: and writes the responses here
 *
 * For a vTPM device both client ends are the same open /dev/tpmN and both
 * server ends the same server fd. For the pipe floor they are the ends of
 * two pipes.
 */
struct endpoint {
	int client_write;
	int client_read;
	int server_read;
	int server_write;
};

/**
 * struct server_child - a child process that serves channels
 * @pid:     its pid
 * @control: the benchmark writes a byte here to stop it
 */
struct server_child {
	pid_t pid;
	int control;
};

/**
 * struct bench_device - a vTPM device created by the benchmark
 * @fd:         its server fd, or -1
 * @num:        N of /dev/tpmN
 * @emu:        the emulator state behind it (start-up state, random bytes)
 * @dead:       the device hung up while a &struct epoll_server served
 *              it; only the server's thread uses it
 * @failed:     the benchmark's thread saw the registration fail
 * @created_ns: CLOCK_MONOTONIC right before the ioctl that created it
 */
struct bench_device {
	int fd;
	unsigned int num;
	struct vtpm_emulator emu;
	bool dead;
	bool failed;
	__u64 created_ns;
};

/**
 * struct epoll_server - a thread that creates and serves many devices
 * @run:     the run, for /dev/vtpmx
 * @epfd:    the epoll instance
 * @request: pipe: the benchmark writes a &struct epoll_request to the
 *           write end
 * @done:    pipe: the thread writes the request's result (an int) back
 * @thread:  the serving thread
 */
struct epoll_server {
	struct bench_run *run;
	int epfd;
	int request[2];
	int done[2];
	pthread_t thread;
};

enum epoll_request_op {
	EPOLL_REQUEST_CREATE,
	EPOLL_REQUEST_REMOVE,
	EPOLL_REQUEST_STOP,
};

/**
 * struct epoll_request - work for the epoll server's thread
 * @op:    create devices, stop serving one, or stop the thread
 * @devs:  the devices
 * @count: entries in @devs
 */
struct epoll_request {
	enum epoll_request_op op;
	struct bench_device *devs;
	unsigned int count;
};

/* bench_util.c */
extern __u8 getrandom_command[GETRANDOM_CMD_SIZE];

__u64 now_ns(void);
void samples_add(struct samples *s, double value);
void samples_sort(struct samples *s);
double samples_percentile(const struct samples *s, double fraction);
double samples_median(struct samples *s);
double samples_sum(const struct samples *s);
void samples_free(struct samples *s);
void build_getrandom(void);
int check_getrandom(const __u8 *response, ssize_t length);
int raise_fd_limit(unsigned int count);
void fail(const char *fmt, ...) __printf(1, 2) __noreturn;
void note(const char *fmt, ...) __printf(1, 2);
void record(struct bench_run *run, const char *driver, const char *metric,
	    double value);
void record_samples(struct bench_run *run, const char *driver,
		    const char *metric, const struct samples *s);

/* bench_device.c */
void device_node(char *path, size_t size, const char *kind,
		 unsigned int num);
int device_create(struct bench_run *run, struct bench_device *dev);
int wait_node_until(struct bench_run *run, const char *path, bool present,
		    int server_fd, int timeout_ms);
int wait_node(struct bench_run *run, const char *path, bool present);
int open_when_ready(struct bench_run *run, unsigned int num, int server_fd);
int round_trip(int wfd, int rfd, __u8 *buffer);
void trivial_emulator_init(struct vtpm_emulator *emu);
void spawn_servers(const struct endpoint *ends, unsigned int count,
		   bool close_here, struct server_child *child);
void stop_servers(struct server_child *child);
int epoll_server_start(struct epoll_server *server, struct bench_run *run);
int epoll_server_create(struct epoll_server *server,
			struct bench_device *devs, unsigned int count);
void epoll_server_remove(struct epoll_server *server,
			 struct bench_device *dev);
void epoll_server_stop(struct epoll_server *server);
pid_t swtpm_start(struct bench_run *run, char *state_dir, size_t size,
		  unsigned int *num);
void swtpm_stop(struct bench_run *run, pid_t pid, const char *state_dir,
		unsigned int num);

/* bench_measure.c */
void measure_pipe_round_trips(struct bench_run *run);
void measure_pipe_throughput(struct bench_run *run);
void measure_trivial_round_trips(struct bench_run *run);
void measure_swtpm_round_trips(struct bench_run *run);
void measure_create_close(struct bench_run *run);
void measure_scale(struct bench_run *run);
void measure_throughput(struct bench_run *run);

/* bench_report.c */
int report(const char *dir);

#endif /* VTPM_BENCH_H */
