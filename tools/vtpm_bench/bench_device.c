// SPDX-License-Identifier: GPL-2.0
/*
 * vtpm_bench: creating vTPM devices, waiting for their nodes, serving them
 * with the trivial emulator, and running swtpm.
 *
 * The trivial emulator responds to every command at once with the
 * response that vtpm_emulator_respond() builds, and records nothing, so
 * that a measurement shows the driver's cost and not the emulator's. It
 * comes in two forms: a child process with one thread per channel, each
 * blocked in read() (for round trips and throughput, the same shape as
 * the pipe floor), and an epoll thread in the benchmark process that
 * creates and serves any number of devices (for creating and closing
 * many devices).
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "vtpm_bench.h"

/* How often to look at swtpm's output for its device, in milliseconds. */
#define SWTPM_POLL_MS		10
/* Events that the epoll server takes from the kernel at a time. */
#define EPOLL_BATCH		64
/* An open that fails right after the node appeared is retried this late. */
#define OPEN_RETRY_MS		1
/* How often a serving thread that must stop is interrupted again. */
#define SIGNAL_RETRY_MS		10

void device_node(char *path, size_t size, const char *kind, unsigned int num)
{
	snprintf(path, size, "/dev/%s%u", kind, num);
}

/* Create a TPM 2.0 device, filling @dev->fd and @dev->num; 0 or -errno. */
int device_create(struct bench_run *run, struct bench_device *dev)
{
	struct vtpm_proxy_new_dev request = {
		.flags = VTPM_PROXY_FLAG_TPM2,
	};

	if (ioctl(run->vtpmx, VTPM_PROXY_IOC_NEW_DEV, &request))
		return -errno;
	dev->fd = request.fd;
	dev->num = request.tpm_num;
	dev->dead = false;
	dev->failed = false;
	return 0;
}

/* Read and drop the queued inotify events; only their arrival matters. */
static void drain_inotify(int fd)
{
	char events[4096];

	while (read(fd, events, sizeof(events)) > 0)
		;
}

/*
 * Wait until @path exists (@present) or no longer exists, for at most
 * @timeout_ms. The inotify watch on /dev wakes us when a node is created
 * or deleted. The check comes before the sleep, so an event that came
 * first is not missed. With @server_fd >= 0, a hang-up of that server fd
 * ends the wait too: the device's registration failed, so its node never
 * comes. Returns 0, -EPIPE for the hang-up, or -ETIMEDOUT.
 */
int wait_node_until(struct bench_run *run, const char *path, bool present,
		    int server_fd, int timeout_ms)
{
	__u64 deadline = now_ns() + (__u64)timeout_ms * NSEC_PER_MSEC;
	struct pollfd pfds[2] = {
		{ .fd = run->inotify, .events = POLLIN },
		{ .fd = server_fd },	/* poll() skips a negative fd */
	};
	struct stat st;

	for (;;) {
		__u64 now;
		int wait_ms;

		if ((stat(path, &st) == 0) == present)
			return 0;
		if (pfds[1].revents & (POLLHUP | POLLERR))
			return -EPIPE;
		now = now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		wait_ms = (deadline - now) / NSEC_PER_MSEC + 1;
		if (poll(pfds, 2, wait_ms) < 0 && errno != EINTR)
			return -errno;
		drain_inotify(run->inotify);
	}
}

/* Wait until @path exists (@present) or no longer exists; 0 or -errno. */
int wait_node(struct bench_run *run, const char *path, bool present)
{
	return wait_node_until(run, path, present, -1, NODE_TIMEOUT_MS);
}

/*
 * Send TPM2_GetRandom on @wfd and read the response from @rfd into
 * @response (VTPM_BUFSIZE bytes). Returns 0, -errno, or -EBADMSG for a
 * response that is not a successful GetRandom.
 */
int round_trip(int wfd, int rfd, __u8 *response)
{
	ssize_t n;

	n = write(wfd, getrandom_command, GETRANDOM_CMD_SIZE);
	if (n != GETRANDOM_CMD_SIZE)
		return n < 0 ? -errno : -EIO;
	n = read(rfd, response, VTPM_BUFSIZE);
	if (n < 0)
		return -errno;
	return check_getrandom(response, n);
}

static bool is_not_ready_errno(int err)
{
	return err == ENOENT || err == ENODEV || err == ENXIO;
}

/*
 * Open /dev/tpm@num once it exists and a TPM2_GetRandom through it
 * succeeds. @server_fd is the device's server fd, or -1. Returns the open
 * file descriptor, -EPIPE when the device's registration failed, or
 * another -errno.
 */
int open_when_ready(struct bench_run *run, unsigned int num, int server_fd)
{
	__u64 deadline = now_ns() + NODE_TIMEOUT_MS * NSEC_PER_MSEC;
	__u8 response[VTPM_BUFSIZE];
	char path[32];
	int fd, rc;

	device_node(path, sizeof(path), "tpm", num);
	for (;;) {
		rc = wait_node_until(run, path, true, server_fd,
				     NODE_TIMEOUT_MS);
		if (rc)
			return rc;
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0)
			break;
		if (!is_not_ready_errno(errno) || now_ns() >= deadline)
			return -errno;
		poll(NULL, 0, OPEN_RETRY_MS);
	}

	rc = round_trip(fd, fd, response);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

/* The trivial emulator: a TPM 2.0 that a firmware has started already. */
void trivial_emulator_init(struct vtpm_emulator *emu)
{
	vtpm_emulator_init(emu, true);
	emu->started = true;
}

/**
 * struct serving_thread - a thread of the serving child
 * @end:    the channel it serves
 * @stop:   set by the child's main thread; read with __atomic
 * @thread: the thread
 */
struct serving_thread {
	const struct endpoint *end;
	int stop;
	pthread_t thread;
};

/* Serve one channel with the trivial emulator until stop is set. */
static void *serve_channel(void *arg)
{
	struct serving_thread *self = arg;
	const struct endpoint *end = self->end;
	__u8 command[VTPM_BUFSIZE], response[VTPM_BUFSIZE];
	struct vtpm_emulator emu;
	size_t length;
	ssize_t n;

	trivial_emulator_init(&emu);
	while (!__atomic_load_n(&self->stop, __ATOMIC_ACQUIRE)) {
		n = read(end->server_read, command, sizeof(command));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		length = vtpm_emulator_respond(&emu, command, n, response);
		if (write(end->server_write, response, length) !=
		    (ssize_t)length)
			break;
	}

	close(end->server_read);
	if (end->server_write != end->server_read)
		close(end->server_write);
	vtpm_emulator_destroy(&emu);
	return NULL;
}

/* Only interrupts a blocked read() of a serving thread. */
static void wake_handler(int signal)
{
}

/*
 * Stop a serving thread and let it close its server fd. A signal without
 * SA_RESTART interrupts its read(); it is sent again until the thread
 * ends, in case it came just before the read() began.
 */
static void stop_serving_thread(struct serving_thread *st)
{
	struct timespec deadline;

	__atomic_store_n(&st->stop, 1, __ATOMIC_RELEASE);
	for (;;) {
		pthread_kill(st->thread, SIGUSR1);
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_nsec += SIGNAL_RETRY_MS * NSEC_PER_MSEC;
		if (deadline.tv_nsec >= (long)NSEC_PER_SEC) {
			deadline.tv_sec++;
			deadline.tv_nsec -= NSEC_PER_SEC;
		}
		if (!pthread_timedjoin_np(st->thread, NULL, &deadline))
			return;
	}
}

/*
 * The serving child: one thread per channel until the benchmark writes to
 * (or closes) the control pipe. Then the threads stop one at a time, and
 * each closes its server fd while the others still serve. Closing a
 * device can send a command to another one: when the closed TPM was the
 * kernel's current hardware RNG, the next TPM becomes the current one and
 * hwrng_unregister() reads random bytes from it before close() returns.
 */
static void __noreturn
serving_child(const struct endpoint *ends, unsigned int count, int control)
{
	struct sigaction action = { .sa_handler = wake_handler };
	struct serving_thread *threads;
	unsigned int i;
	char byte;

	sigaction(SIGUSR1, &action, NULL);
	threads = calloc(count, sizeof(*threads));
	if (!threads)
		_exit(1);
	for (i = 0; i < count; i++) {
		threads[i].end = &ends[i];
		if (pthread_create(&threads[i].thread, NULL, serve_channel,
				   &threads[i]))
			_exit(1);
	}

	while (read(control, &byte, 1) < 0 && errno == EINTR)
		;
	for (i = 0; i < count; i++)
		stop_serving_thread(&threads[i]);
	_exit(0);
}

/*
 * Serve @count channels from a child process, one thread each. With
 * @close_here, close the server ends in this process, so that only the
 * child has them open; otherwise the caller closes them. stop_servers()
 * ends the child.
 */
void spawn_servers(const struct endpoint *ends, unsigned int count,
		   bool close_here, struct server_child *child)
{
	unsigned int i;
	int control[2];

	if (pipe2(control, O_CLOEXEC))
		fail("pipe2 failed: %s", strerror(errno));
	fflush(NULL);
	child->pid = fork();
	if (child->pid < 0)
		fail("fork failed: %s", strerror(errno));
	if (child->pid == 0) {
		close(control[1]);
		serving_child(ends, count, control[0]);
	}

	close(control[0]);
	child->control = control[1];
	for (i = 0; i < count && close_here; i++) {
		close(ends[i].server_read);
		if (ends[i].server_write != ends[i].server_read)
			close(ends[i].server_write);
	}
}

/* Stop the serving child; for devices, it closes their server fds. */
void stop_servers(struct server_child *child)
{
	int status;

	if (write(child->control, "", 1) != 1)
		fail("cannot stop the serving child: %s", strerror(errno));
	close(child->control);
	if (waitpid(child->pid, &status, 0) != child->pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status))
		fail("the serving child failed (status 0x%x)", status);
}

/* Respond to the command that @dev has queued, or mark the device dead. */
static void epoll_serve_device(struct epoll_server *server,
			       struct bench_device *dev, __u32 events)
{
	static __u8 command[VTPM_BUFSIZE];
	static __u8 response[VTPM_BUFSIZE];
	size_t length;
	ssize_t n;

	if (events & EPOLLIN) {
		n = read(dev->fd, command, sizeof(command));
		if (n > 0) {
			length = vtpm_emulator_respond(&dev->emu, command, n,
						       response);
			if (write(dev->fd, response, length) == (ssize_t)length)
				return;
		}
	}
	epoll_ctl(server->epfd, EPOLL_CTL_DEL, dev->fd, NULL);
	dev->dead = true;
}

/*
 * Create devices and serve them from now on. Their start time is taken
 * here, right before each ioctl. Returns 0 or -errno.
 */
static int epoll_create_devices(struct epoll_server *server,
				struct bench_device *devs, unsigned int count)
{
	struct epoll_event event = { .events = EPOLLIN };
	unsigned int i;
	int rc;

	for (i = 0; i < count; i++) {
		devs[i].created_ns = now_ns();
		rc = device_create(server->run, &devs[i]);
		if (rc)
			return rc;
		event.data.ptr = &devs[i];
		if (epoll_ctl(server->epfd, EPOLL_CTL_ADD, devs[i].fd, &event))
			return -errno;
	}
	return 0;
}

/* Carry out a request; returns its result, or 1 to stop the thread. */
static int epoll_handle_request(struct epoll_server *server,
				const struct epoll_request *request)
{
	switch (request->op) {
	case EPOLL_REQUEST_CREATE:
		return epoll_create_devices(server, request->devs,
					    request->count);
	case EPOLL_REQUEST_REMOVE:
		if (!request->devs->dead)
			epoll_ctl(server->epfd, EPOLL_CTL_DEL,
				  request->devs->fd, NULL);
		return 0;
	default:
		return 1;
	}
}

/*
 * The serving thread. A request is taken after the device events of the
 * same batch, so that no event of a device that the benchmark is about
 * to close is handled after the benchmark learnt that the device is
 * removed.
 */
static void *epoll_server_main(void *arg)
{
	struct epoll_server *server = arg;
	struct epoll_event events[EPOLL_BATCH];
	struct epoll_request request;
	bool requested;
	int i, n, rc;

	for (;;) {
		n = epoll_wait(server->epfd, events, EPOLL_BATCH, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail("epoll_wait failed: %s", strerror(errno));

		requested = false;
		for (i = 0; i < n; i++) {
			if (events[i].data.ptr == server)
				requested = true;
			else
				epoll_serve_device(server, events[i].data.ptr,
						   events[i].events);
		}
		if (!requested)
			continue;

		if (read(server->request[0], &request, sizeof(request)) !=
		    sizeof(request))
			fail("reading an epoll server request failed");
		rc = epoll_handle_request(server, &request);
		if (write(server->done[1], &rc, sizeof(rc)) != sizeof(rc))
			fail("answering an epoll server request failed");
		if (rc == 1)
			return NULL;
	}
}

/* Start the serving thread; it creates devices through @run's vtpmx. */
int epoll_server_start(struct epoll_server *server, struct bench_run *run)
{
	struct epoll_event event = { .events = EPOLLIN, .data.ptr = server };
	int rc;

	server->run = run;
	server->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (server->epfd < 0)
		return -errno;
	if (pipe2(server->request, O_CLOEXEC) || pipe2(server->done, O_CLOEXEC))
		return -errno;
	if (epoll_ctl(server->epfd, EPOLL_CTL_ADD, server->request[0], &event))
		return -errno;
	rc = pthread_create(&server->thread, NULL, epoll_server_main, server);
	return -rc;
}

/* Send a request to the serving thread and wait for its result. */
static int epoll_server_request(struct epoll_server *server,
				enum epoll_request_op op,
				struct bench_device *devs, unsigned int count)
{
	struct epoll_request request = {
		.op = op, .devs = devs, .count = count,
	};
	int rc;

	if (write(server->request[1], &request, sizeof(request)) !=
	    sizeof(request) ||
	    read(server->done[0], &rc, sizeof(rc)) != sizeof(rc))
		fail("an epoll server request failed: %s", strerror(errno));
	return rc;
}

/*
 * Let the serving thread create @count devices, as an emulator like swtpm
 * creates the device that it then serves. Each device's emulator must be
 * initialised. Returns 0 or -errno.
 */
int epoll_server_create(struct epoll_server *server,
			struct bench_device *devs, unsigned int count)
{
	return epoll_server_request(server, EPOLL_REQUEST_CREATE, devs, count);
}

/* Stop serving @dev; on return the server thread no longer touches it. */
void epoll_server_remove(struct epoll_server *server,
			 struct bench_device *dev)
{
	epoll_server_request(server, EPOLL_REQUEST_REMOVE, dev, 1);
}

/* Stop the thread; the devices' server fds stay open. */
void epoll_server_stop(struct epoll_server *server)
{
	epoll_server_request(server, EPOLL_REQUEST_STOP, NULL, 0);
	pthread_join(server->thread, NULL);
	close(server->epfd);
	close(server->request[0]);
	close(server->request[1]);
	close(server->done[0]);
	close(server->done[1]);
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	return remove(path);
}

/* Find "New TPM device: /dev/tpmN" in swtpm's output file. */
static bool swtpm_find_device(const char *log, unsigned int *num)
{
	static const char prefix[] = "New TPM device: /dev/tpm";
	char text[4096], *found;
	ssize_t n;
	int fd;

	fd = open(log, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	found = strstr(text, prefix);
	return found && sscanf(found + strlen(prefix), "%u", num) == 1;
}

static void print_file(const char *path)
{
	char line[512];
	FILE *file = fopen(path, "r");

	if (!file)
		return;
	while (fgets(line, sizeof(line), file))
		fprintf(stderr, "    %s", line);
	fclose(file);
}

static void exec_swtpm(const char *state_dir, const char *log)
{
	char state[PATH_MAX + 8];
	int fd;

	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
	    dup2(fd, STDERR_FILENO) < 0)
		_exit(127);
	snprintf(state, sizeof(state), "dir=%s", state_dir);
	execlp("swtpm", "swtpm", "chardev", "--vtpm-proxy", "--tpm2",
	       "--tpmstate", state, "--flags", "startup-clear", (char *)NULL);
	fprintf(stderr, "cannot run swtpm: %s\n", strerror(errno));
	_exit(127);
}

/*
 * Wait until swtpm's /dev/tpmN and /dev/tpmrmN exist. Returns 0, or
 * -EPIPE when swtpm exited first: its device's registration failed.
 */
static int swtpm_wait_nodes(struct bench_run *run, pid_t pid,
			    unsigned int num)
{
	static const char * const kinds[] = { "tpm", "tpmrm" };
	__u64 deadline = now_ns() + NODE_TIMEOUT_MS * NSEC_PER_MSEC;
	char path[32];
	unsigned int i;
	int rc;

	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		device_node(path, sizeof(path), kinds[i], num);
		do {
			if (waitpid(pid, NULL, WNOHANG) == pid)
				return -EPIPE;
			rc = wait_node_until(run, path, true, -1,
					     SWTPM_POLL_MS);
		} while (rc == -ETIMEDOUT && now_ns() < deadline);
		if (rc)
			fail("%s did not appear after swtpm created it", path);
	}
	return 0;
}

/*
 * Start swtpm in vTPM proxy mode for a TPM 2.0 with its state in a new
 * folder under /tmp (its path goes to @state_dir), and wait until
 * /dev/tpmN and /dev/tpmrmN exist. Returns swtpm's pid, or -1 when swtpm
 * exited after creating its device, which means the device's
 * registration failed. Fails the program if swtpm does not come up.
 */
pid_t swtpm_start(struct bench_run *run, char *state_dir, size_t size,
		  unsigned int *num)
{
	__u64 deadline = now_ns() + NODE_TIMEOUT_MS * NSEC_PER_MSEC;
	char log[PATH_MAX];
	int status;
	pid_t pid;

	snprintf(state_dir, size, "/tmp/vtpm_bench-swtpm.XXXXXX");
	if (!mkdtemp(state_dir))
		fail("cannot make a folder for swtpm's state: %s",
		     strerror(errno));
	snprintf(log, sizeof(log), "%s/swtpm.log", state_dir);

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		fail("fork failed: %s", strerror(errno));
	if (pid == 0)
		exec_swtpm(state_dir, log);

	while (!swtpm_find_device(log, num)) {
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "swtpm exited with status 0x%x; its output:\n",
				status);
			print_file(log);
			fail("swtpm did not create a device");
		}
		if (now_ns() >= deadline) {
			print_file(log);
			fail("swtpm did not report a device within %d ms",
			     NODE_TIMEOUT_MS);
		}
		poll(NULL, 0, SWTPM_POLL_MS);
	}

	if (swtpm_wait_nodes(run, pid, *num)) {
		print_file(log);
		nftw(state_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
		return -1;
	}
	return pid;
}

/* Stop swtpm, wait until its nodes are gone and remove its state. */
void swtpm_stop(struct bench_run *run, pid_t pid, const char *state_dir,
		unsigned int num)
{
	char path[32];

	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	device_node(path, sizeof(path), "tpm", num);
	if (wait_node(run, path, false))
		fail("%s still exists after swtpm exited", path);
	device_node(path, sizeof(path), "tpmrm", num);
	if (wait_node(run, path, false))
		fail("%s still exists after swtpm exited", path);
	nftw(state_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}
