// SPDX-License-Identifier: GPL-2.0
/*
 * Lane "kill": an emulator process killed with SIGKILL at a random point
 * of its device's life, many times over. The point is in the
 * registration (after some start-up commands were answered) or at a
 * client's command, and the command in flight is then queued and unread,
 * read but not answered, or answered with the first half of a response
 * that was due in two write() calls. In a fourth case the emulator sends
 * the whole response and closes the server fd at once, before the kill.
 *
 * At a client's command, a client of /dev/tpmN (and one of /dev/tpmrmN
 * for a TPM 2.0) is blocked in write() when the kill comes. Each must get
 * an error, not hang: every wait is bounded, and a client that does not
 * return is named. The client then keeps its fd open and must get EPIPE
 * for a further command.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vtpm_stress.h"

enum kill_phase {
	PHASE_REGISTRATION,
	PHASE_CLIENT,
};

/* The state of the command in flight when the emulator is killed. */
enum kill_state {
	STATE_QUEUED,
	STATE_READ,
	STATE_HALF_WRITTEN,
	STATE_ANSWERED_CLOSED,
	NR_STATES,
};

static const char * const phase_names[] = {
	[PHASE_REGISTRATION] = "registration",
	[PHASE_CLIENT] = "client command",
};

static const char * const state_names[] = {
	[STATE_QUEUED] = "queued",
	[STATE_READ] = "read, not answered",
	[STATE_HALF_WRITTEN] = "half written",
	[STATE_ANSWERED_CLOSED] = "answered, then closed",
};

/*
 * Start-up commands answered before a kill in the registration phase:
 * fewer than the TPM core sends to either TPM version, so that the kill
 * always comes before registration ends.
 */
#define MAX_STARTUP_ANSWERS	6
/*
 * The shortest time the TPM core gives a client's GetRandom here: 2 s,
 * the TPM 2.0 long duration and the short duration that the TPM 1.2
 * emulator reports.
 */
#define MIN_COMMAND_DURATION_MS	2000

/* Status bytes from the emulator to the lane. */
#define EMULATOR_REGISTERED	'R'
#define EMULATOR_NOT_REGISTERED	'F'
#define EMULATOR_AT_POINT	'K'
#define EMULATOR_DEAD		'D'
#define EMULATOR_IDLE		'I'
#define LANE_GO			'G'

enum {
	CHECK_CREATE,
	CHECK_NUMBER_ZERO,
	CHECK_AT_POINT,
	CHECK_REGISTERS,
	CHECK_CLIENTS_BLOCKED,
	CHECK_EXITS,
	CHECK_CLIENT_RETURNS,
	CHECK_CLIENT_ERRNO,
	CHECK_HALF_RESPONSE,
	CHECK_ANSWERED_THEN_CLOSED,
	CHECK_EARLY_ETIME,
	CHECK_LATER_EPIPE,
	CHECK_REMOVED,
	NR_CHECKS,
};

static struct stress_check checks[NR_CHECKS] = {
	[CHECK_CREATE] = {
		"VTPM_PROXY_IOC_NEW_DEV creates a device in every cycle",
	},
	[CHECK_NUMBER_ZERO] = {
		"every new device gets chip number 0 once the killed one is gone",
	},
	[CHECK_AT_POINT] = {
		"the emulator reaches its kill point (the command in flight is in the planned state)",
	},
	[CHECK_REGISTERS] = {
		"a served device registers before its clients start",
	},
	[CHECK_CLIENTS_BLOCKED] = {
		"the clients are blocked in write() before the kill",
	},
	[CHECK_EXITS] = {
		"the emulator process exits after SIGKILL (its server fd's release returns)",
	},
	[CHECK_CLIENT_RETURNS] = {
		"every client blocked on /dev/tpmN or /dev/tpmrmN returns after the kill (no hang)",
	},
	[CHECK_CLIENT_ERRNO] = {
		"a client blocked at the kill gets EPIPE or ECANCELED",
	},
	[CHECK_HALF_RESPONSE] = {
		"a client answered with half a response gets an error, not success",
	},
	[CHECK_ANSWERED_THEN_CLOSED] = {
		"a client answered in full just before the server fd closes gets its response or EPIPE",
	},
	[CHECK_EARLY_ETIME] = {
		"a client command that ends unanswered before the kill fails with ETIME",
		.optional = true,
	},
	[CHECK_LATER_EPIPE] = {
		"a client that keeps /dev/tpmN or /dev/tpmrmN open gets EPIPE for its next command",
	},
	[CHECK_REMOVED] = {
		"after the kill /dev/tpmN, /dev/tpmrmN and /sys/class/tpm/tpmN are gone",
	},
};

/**
 * struct kill_plan - what one cycle does
 * @tpm2:    a TPM 2.0 device; otherwise TPM 1.2
 * @phase:   where the kill comes
 * @state:   the state of the command in flight at the kill
 * @answers: start-up commands answered first (registration phase)
 * @tpmrm_first: the client of /dev/tpmrmN starts first, so that its
 *           command is the one in flight (TPM 2.0 client phase)
 */
struct kill_plan {
	bool tpm2;
	enum kill_phase phase;
	enum kill_state state;
	unsigned int answers;
	bool tpmrm_first;
};

/**
 * struct kill_client - a client blocked in a command at the kill
 * @path:         /dev/tpmN or /dev/tpmrmN
 * @fd:           its open fd
 * @tpm2:         the device is a TPM 2.0
 * @bytes:        bytes its GetRandom asks for, different for each client,
 *                so that the emulator can tell which one it answered
 * @thread:       the thread that sends the command
 * @low_priority: the thread runs with SCHED_IDLE
 * @tid:          the thread's id, for /proc/self/task/TID/syscall
 * @result:       what write() returned
 * @return_code:  the return code of the response, after a write() that
 *                succeeded
 * @error:        errno of a failed write()
 * @later_error:  errno of the next write() after the first failed, or 0
 *                when it succeeded
 * @done_ms:      when write() returned, now_ms() time
 * @done:         write() returned; read with __atomic_load_n()
 */
struct kill_client {
	char path[64];
	int fd;
	bool tpm2;
	unsigned int bytes;
	pthread_t thread;
	bool low_priority;
	pid_t tid;
	ssize_t result;
	__u32 return_code;
	int error;
	int later_error;
	__u64 start_ms;
	__u64 done_ms;
	int done;
};

/**
 * struct kill_stats - what the cycles did, for the lane's summary
 * @plans:             cycles per phase and state
 * @emulator_dead:     cycles where the device died before the kill point
 * @clients:           clients blocked at a kill
 * @half_answered:     clients whose command got half a response
 * @closed_answered:   clients whose command got a whole response just
 *                     before the emulator closed the server fd
 * @finished_early:    other clients whose command ended before the kill
 * @slowest_return_ms: longest time from the kill to a client's return
 * @errors:            client errno values after the kill: EPIPE,
 *                     ECANCELED, others
 */
struct kill_stats {
	unsigned long plans[2][NR_STATES];
	unsigned long emulator_dead;
	unsigned long clients;
	unsigned long half_answered;
	unsigned long closed_answered;
	unsigned long finished_early;
	__u64 slowest_return_ms;
	unsigned long errors[3];
};

static void write_status(int fd, char status)
{
	while (write(fd, &status, 1) < 0 && errno == EINTR)
		;
}

/* Read a status byte within @timeout_ms; returns it, or 0 on time out. */
static char read_status(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char status;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	if (read(fd, &status, 1) != 1)
		return 0;
	return status;
}

/* The bytes a GetRandom command asks for, or 0 for another command. */
static unsigned int requested_bytes(bool tpm2, const __u8 *command,
				    ssize_t length)
{
	__u32 ordinal = vtpm_command_ordinal(command, length);

	if (tpm2 && ordinal == TPM2_CC_GET_RANDOM && length >= 12)
		return command[10] << 8 | command[11];
	if (!tpm2 && ordinal == TPM_ORD_GET_RANDOM && length >= 14)
		return command[13];
	return 0;
}

/*
 * In the emulator: bring the next command into @state. Returns
 * EMULATOR_AT_POINT, EMULATOR_DEAD or EMULATOR_IDLE when no command
 * came. When the command gets a response, or half of one,
 * *@answered_bytes is the number of bytes that it asked for, if it is a
 * GetRandom.
 */
static char reach_state(struct stress_dev *dev, enum kill_state state,
			char *answered_bytes)
{
	__u8 command[VTPM_BUFSIZE], response[VTPM_BUFSIZE];
	struct pollfd pfd = { .fd = dev->fd, .events = POLLIN };
	__u64 deadline = now_ms() + 5000;
	size_t length;
	ssize_t n;

	for (;;) {
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			return EMULATOR_DEAD;
		if (pfd.revents & POLLHUP)
			return EMULATOR_DEAD;
		if (pfd.revents & POLLIN) {
			if (state == STATE_QUEUED)
				return EMULATOR_AT_POINT;
			n = read(dev->fd, command, sizeof(command));
			if (n > 0)
				break;
			if (errno != EAGAIN)
				return EMULATOR_DEAD;
		}
		if (now_ms() > deadline)
			return EMULATOR_IDLE;
	}
	if (state == STATE_READ)
		return EMULATOR_AT_POINT;

	*answered_bytes = requested_bytes(dev->tpm2, command, n);
	length = vtpm_emulator_respond(&dev->emu, command, n, response);
	if (state == STATE_HALF_WRITTEN) {
		/* The first of the two writes of a split response. */
		if (write(dev->fd, response, length / 2) < 0)
			return EMULATOR_DEAD;
		return EMULATOR_AT_POINT;
	}

	/*
	 * Close right after the response, while the TPM core is still
	 * taking the response to its client.
	 */
	if (write(dev->fd, response, length) < 0)
		return EMULATOR_DEAD;
	close(dev->fd);
	dev->fd = -1;
	return EMULATOR_AT_POINT;
}

/* The emulator process: follow @plan, report, and wait for SIGKILL. */
static void emulator_main(struct stress_dev *dev,
			  const struct kill_plan *plan, int to_lane,
			  int from_lane)
{
	__u64 deadline = now_ms() + STRESS_WAIT_MS;
	unsigned int answered = 0;
	char status, answered_bytes = 0;
	int rc = 0;

	if (plan->phase == PHASE_REGISTRATION) {
		while (answered < plan->answers && rc >= 0 &&
		       now_ms() < deadline) {
			rc = stress_dev_serve(dev, 100);
			answered += rc > 0;
		}
		if (rc < 0)
			status = EMULATOR_DEAD;
		else if (answered < plan->answers)
			status = EMULATOR_IDLE;
		else
			status = reach_state(dev, plan->state, &answered_bytes);
	} else {
		rc = stress_dev_register(dev, STRESS_WAIT_MS);
		write_status(to_lane, rc ? EMULATOR_NOT_REGISTERED :
					   EMULATOR_REGISTERED);
		/*
		 * Serve nothing until the clients are blocked, so that
		 * none of their commands completes before the kill.
		 */
		if (!rc && read_status(from_lane, STRESS_WAIT_MS) == LANE_GO)
			status = reach_state(dev, plan->state,
					     &answered_bytes);
		else
			status = EMULATOR_DEAD;
	}
	write_status(to_lane, status);
	write_status(to_lane, answered_bytes);
	for (;;)
		pause();
}

static void *client_main(void *arg)
{
	struct kill_client *client = arg;
	__u8 command[16], response[VTPM_BUFSIZE];
	size_t length;

	pid_t tid = (pid_t)syscall(SYS_gettid);
	struct sched_param idle = { .sched_priority = 0 };

	if (client->low_priority)
		sched_setscheduler(tid, SCHED_IDLE, &idle);
	__atomic_store_n(&client->tid, tid, __ATOMIC_RELEASE);
	length = tpm_getrandom_command(client->tpm2, client->bytes, command);
	client->start_ms = now_ms();
	client->result = write(client->fd, command, length);
	client->error = client->result < 0 ? errno : 0;
	client->done_ms = now_ms();
	if (client->result >= 0 &&
	    read(client->fd, response, sizeof(response)) >= TPM_HEADER_SIZE)
		client->return_code = (__u32)response[6] << 24 |
				      (__u32)response[7] << 16 |
				      (__u32)response[8] << 8 | response[9];
	if (client->result < 0)
		client->later_error = write(client->fd, command, length) < 0 ?
				      errno : 0;
	__atomic_store_n(&client->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/*
 * Whether the thread @tid sleeps in write(): /proc/self/task/TID/syscall
 * starts with the number of write.
 */
static bool in_write(pid_t tid)
{
	char path[64], line[128] = "", *end;
	long number;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read(fd, line, sizeof(line) - 1) < 0)
		line[0] = '\0';
	close(fd);
	number = strtol(line, &end, 10);
	return end != line && number == SYS_write;
}

/* Wait until every client sleeps in write(); false after a bound. */
static bool wait_clients_blocked(struct kill_client *clients,
				 unsigned int nr_clients)
{
	__u64 deadline = now_ms() + 5000;
	unsigned int i, blocked;
	pid_t tid;

	do {
		blocked = 0;
		for (i = 0; i < nr_clients; i++) {
			tid = __atomic_load_n(&clients[i].tid,
					      __ATOMIC_ACQUIRE);
			blocked += tid && in_write(tid) &&
				   !__atomic_load_n(&clients[i].done,
						    __ATOMIC_ACQUIRE);
		}
		if (blocked == nr_clients)
			return true;
		sleep_ms(1);
	} while (now_ms() < deadline);
	return false;
}

/*
 * Open and start the clients of a registered device, one after the other
 * so that the first one's command is the one in the driver, and return
 * how many started. The first client uses /dev/tpmrmN when @plan says so.
 * With @low_priority the clients run with SCHED_IDLE.
 */
static unsigned int start_clients(const struct stress_dev *dev,
				  const struct kill_plan *plan,
				  bool low_priority,
				  struct kill_client *clients)
{
	static const char * const kinds[] = { "tpm", "tpmrm" };
	unsigned int nr_kinds = dev->tpm2 ? 2 : 1, i, started = 0;
	unsigned int first = dev->tpm2 && plan->tpmrm_first;
	struct kill_client *client;

	for (i = 0; i < nr_kinds; i++) {
		client = &clients[started];
		memset(client, 0, sizeof(*client));
		client->tpm2 = dev->tpm2;
		client->bytes = STRESS_RANDOM_BYTES + i;
		client->low_priority = low_priority;
		tpm_path(client->path, sizeof(client->path),
			 kinds[(first + i) % nr_kinds], dev->num);
		client->fd = open(client->path, O_RDWR | O_CLOEXEC);
		if (client->fd < 0) {
			check_fail(&checks[CHECK_CLIENTS_BLOCKED],
				   "opening %s failed: %s", client->path,
				   strerror(errno));
			continue;
		}
		if (pthread_create(&client->thread, NULL, client_main,
				   client)) {
			close(client->fd);
			continue;
		}
		started++;
		if (!wait_clients_blocked(client, 1))
			break;
		/* Let its command reach the driver before the next one. */
		sleep_ms(5);
	}
	return started;
}

/* The index of @error in &kill_stats.errors. */
static unsigned int errno_slot(int error)
{
	if (error == EPIPE)
		return 0;
	if (error == ECANCELED)
		return 1;
	return 2;
}

/*
 * Wait for a client after the kill at @kill_ms and check what it got.
 * @answered_bytes is the byte count of the GetRandom that got a response
 * or half of one in @state, if any.
 */
static void finish_client(struct kill_client *client, __u64 kill_ms,
			  bool blocked_at_kill, enum kill_state state,
			  unsigned int answered_bytes, unsigned long cycle,
			  struct kill_stats *stats)
{
	struct timespec deadline;
	bool ran_out;
	__u64 waited;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += STRESS_WAIT_MS / 1000;
	if (pthread_timedjoin_np(client->thread, NULL, &deadline)) {
		check_fail(&checks[CHECK_CLIENT_RETURNS],
			   "cycle %lu: the client of %s did not return within %d ms of the kill",
			   cycle, client->path, STRESS_WAIT_MS);
		stress_give_up(checks, NR_CHECKS,
			       "the client of %s hangs in the kernel",
			       client->path);
	}
	check_pass(&checks[CHECK_CLIENT_RETURNS]);

	/*
	 * On a slow guest the kill can come after the command's duration has
	 * run out, and then ETIME is the right result even for a client that
	 * looked blocked a moment before.
	 */
	ran_out = client->result < 0 && client->error == ETIME &&
		  kill_ms - client->start_ms >= MIN_COMMAND_DURATION_MS;

	if (client->bytes == answered_bytes && state == STATE_HALF_WRITTEN) {
		stats->half_answered++;
		check_true(&checks[CHECK_HALF_RESPONSE], client->result < 0,
			   "cycle %lu: write() to %s returned %zd", cycle,
			   client->path, client->result);
	} else if (client->bytes == answered_bytes) {
		stats->closed_answered++;
		check_true(&checks[CHECK_ANSWERED_THEN_CLOSED],
			   client->result >= 0 || client->error == EPIPE,
			   "cycle %lu: write() to %s failed with %s although its command was answered in full",
			   cycle, client->path, strerror(client->error));
	} else if ((blocked_at_kill && !ran_out) ||
		   state == STATE_ANSWERED_CLOSED) {
		/* The close, not the kill, ends the device in that state. */
		stats->clients++;
		waited = client->done_ms > kill_ms ? client->done_ms - kill_ms : 0;
		if (waited > stats->slowest_return_ms)
			stats->slowest_return_ms = waited;
		if (client->result < 0)
			stats->errors[errno_slot(client->error)]++;
		check_true(&checks[CHECK_CLIENT_ERRNO],
			   client->result < 0 && (client->error == EPIPE ||
						  client->error == ECANCELED),
			   "cycle %lu: write() to %s returned %zd (%s), response code 0x%08x",
			   cycle, client->path, client->result,
			   strerror(client->error), client->return_code);
	} else {
		/* Nothing answered it: its duration must have run out. */
		stats->finished_early++;
		check_true(&checks[CHECK_EARLY_ETIME],
			   client->result < 0 && client->error == ETIME,
			   "cycle %lu: write() to %s returned %zd (%s)", cycle,
			   client->path, client->result,
			   strerror(client->error));
	}
	if (client->result < 0)
		check_true(&checks[CHECK_LATER_EPIPE],
			   client->later_error == EPIPE,
			   "cycle %lu: the next write() to %s gave %s", cycle,
			   client->path, strerror(client->later_error));
	close(client->fd);
}

static void kill_emulator(pid_t pid, unsigned long cycle)
{
	__u64 deadline = now_ms() + STRESS_WAIT_MS;
	int status;

	kill(pid, SIGKILL);
	while (waitpid(pid, &status, WNOHANG) == 0) {
		if (now_ms() > deadline) {
			check_fail(&checks[CHECK_EXITS],
				   "cycle %lu: process %d did not exit within %d ms of SIGKILL",
				   cycle, pid, STRESS_WAIT_MS);
			stress_give_up(checks, NR_CHECKS,
				       "the emulator process %d does not exit",
				       pid);
		}
		sleep_ms(1);
	}
	check_pass(&checks[CHECK_EXITS]);
}

/*
 * Pick the kill point of a cycle. The first 2 * NR_STATES cycles take
 * every phase and state once, so a short run checks each kill point.
 * Later cycles pick them at random.
 */
static void make_plan(struct stress_random *random, unsigned long cycle,
		      struct kill_plan *plan)
{
	plan->tpm2 = random_percent(random, 60);
	plan->phase = random_percent(random, 30) ? PHASE_REGISTRATION :
						   PHASE_CLIENT;
	plan->state = random_below(random, NR_STATES);
	plan->answers = random_below(random, MAX_STARTUP_ANSWERS);
	plan->tpmrm_first = random_percent(random, 50);
	if (cycle < 2 * NR_STATES) {
		plan->phase = cycle % 2 ? PHASE_CLIENT : PHASE_REGISTRATION;
		plan->state = cycle / 2;
	}
}

/*
 * While the emulator answers a command and closes the server fd at once
 * (STATE_ANSWERED_CLOSED), one thread per CPU keeps the CPUs busy for
 * HOG_MS, and the clients run with SCHED_IDLE. The client whose command
 * got the response is then still inside the TPM core, before it takes
 * the response, while the teardown of the device runs as far as it can
 * without that client: the window that this state tests.
 */
#define MAX_HOGS		8
#define HOG_MS			300

static int hogs_stopping;

/* Keep a CPU busy until hogs_stopping is set. */
static void *hog_main(void *arg)
{
	while (!__atomic_load_n(&hogs_stopping, __ATOMIC_ACQUIRE))
		;
	return NULL;
}

/* Start a CPU hog per online CPU, at most MAX_HOGS; returns how many. */
static unsigned int start_hogs(pthread_t *hogs)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned int wanted = cpus > 0 && cpus < MAX_HOGS ? cpus : MAX_HOGS;
	unsigned int started;

	__atomic_store_n(&hogs_stopping, 0, __ATOMIC_RELEASE);
	for (started = 0; started < wanted; started++)
		if (pthread_create(&hogs[started], NULL, hog_main, NULL))
			break;
	return started;
}

static void stop_hogs(pthread_t *hogs, unsigned int nr_hogs)
{
	unsigned int i;

	__atomic_store_n(&hogs_stopping, 1, __ATOMIC_RELEASE);
	for (i = 0; i < nr_hogs; i++)
		pthread_join(hogs[i], NULL);
}

/* Parent side of a cycle whose emulator is @pid. */
static void run_lane_side(const struct stress_dev *dev,
			  const struct kill_plan *plan, pid_t pid,
			  int from_emulator, int to_emulator,
			  unsigned long cycle, struct kill_stats *stats)
{
	bool slow_clients = plan->state == STATE_ANSWERED_CLOSED;
	unsigned int nr_clients = 0, nr_hogs = 0, i;
	bool blocked[2] = { false, false };
	struct kill_client clients[2];
	char status, answered_bytes;
	pthread_t hogs[MAX_HOGS];
	__u64 kill_ms;

	if (plan->phase == PHASE_CLIENT) {
		status = read_status(from_emulator, STRESS_WAIT_MS + 1000);
		if (check_true(&checks[CHECK_REGISTERS],
			       status == EMULATOR_REGISTERED,
			       "cycle %lu: tpm%u did not register (status '%c')",
			       cycle, dev->num, status ? status : '-')) {
			nr_clients = start_clients(dev, plan, slow_clients,
						   clients);
			check_true(&checks[CHECK_CLIENTS_BLOCKED],
				   nr_clients && wait_clients_blocked(clients,
								      nr_clients),
				   "cycle %lu: clients of tpm%u not in write()",
				   cycle, dev->num);
			if (slow_clients)
				nr_hogs = start_hogs(hogs);
			write_status(to_emulator, LANE_GO);
		}
	}

	/* The emulator's close() may wait for the clients that hogs stall. */
	status = read_status(from_emulator, nr_hogs ? HOG_MS : STRESS_WAIT_MS);
	stop_hogs(hogs, nr_hogs);
	if (!status && nr_hogs)
		status = read_status(from_emulator, STRESS_WAIT_MS);
	answered_bytes = read_status(from_emulator, 1000);
	if (status == EMULATOR_DEAD)
		stats->emulator_dead++;
	else
		check_true(&checks[CHECK_AT_POINT], status == EMULATOR_AT_POINT,
			   "cycle %lu (%s, %s): emulator status '%c'", cycle,
			   phase_names[plan->phase], state_names[plan->state],
			   status ? status : '-');

	for (i = 0; i < nr_clients; i++)
		blocked[i] = !__atomic_load_n(&clients[i].done,
					      __ATOMIC_ACQUIRE);
	kill_ms = now_ms();
	kill_emulator(pid, cycle);
	for (i = 0; i < nr_clients; i++)
		finish_client(&clients[i], kill_ms, blocked[i], plan->state,
			      (unsigned char)answered_bytes, cycle, stats);

	check_true(&checks[CHECK_REMOVED], tpm_nodes_gone(dev->num),
		   "cycle %lu (%s, %s): tpm%u still present", cycle,
		   phase_names[plan->phase], state_names[plan->state],
		   dev->num);
}

static void run_cycle(int vtpmx, unsigned long cycle,
		      struct stress_random *random, struct kill_stats *stats,
		      bool verbose)
{
	int to_lane[2], to_emulator[2];
	struct kill_plan plan;
	struct stress_dev dev;
	pid_t pid;
	int rc;

	make_plan(random, cycle, &plan);
	stats->plans[plan.phase][plan.state]++;

	rc = stress_dev_create(vtpmx, plan.tpm2, &dev);
	if (!check_true(&checks[CHECK_CREATE], rc == 0, "cycle %lu: %s",
			cycle, strerror(-rc)))
		return;
	check_true(&checks[CHECK_NUMBER_ZERO], dev.num == 0,
		   "cycle %lu got tpm_num %u", cycle, dev.num);

	if (pipe2(to_lane, O_CLOEXEC) || pipe2(to_emulator, O_CLOEXEC)) {
		perror("pipe2");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	if (pid == 0) {
		close(vtpmx);
		close(to_lane[0]);
		close(to_emulator[1]);
		emulator_main(&dev, &plan, to_lane[1], to_emulator[0]);
	}
	close(to_lane[1]);
	close(to_emulator[0]);
	/* The emulator now has the only copy of the server fd. */
	stress_dev_close(&dev);

	run_lane_side(&dev, &plan, pid, to_lane[0], to_emulator[1], cycle,
		      stats);
	close(to_lane[0]);
	close(to_emulator[1]);
	if (verbose)
		stress_info("cycle %lu: TPM %s tpm%u killed at %s, %s", cycle,
			    plan.tpm2 ? "2.0" : "1.2", dev.num,
			    phase_names[plan.phase], state_names[plan.state]);
}

int lane_kill(const struct lane_options *options)
{
	struct kill_stats stats;
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

	stress_info("%lu cycles in %llu ms", options->count,
		    (unsigned long long)(now_ms() - start));
	stress_info("kills in registration: queued %lu, read %lu, half written %lu, answered then closed %lu",
		    stats.plans[PHASE_REGISTRATION][STATE_QUEUED],
		    stats.plans[PHASE_REGISTRATION][STATE_READ],
		    stats.plans[PHASE_REGISTRATION][STATE_HALF_WRITTEN],
		    stats.plans[PHASE_REGISTRATION][STATE_ANSWERED_CLOSED]);
	stress_info("kills at a client command: queued %lu, read %lu, half written %lu, answered then closed %lu",
		    stats.plans[PHASE_CLIENT][STATE_QUEUED],
		    stats.plans[PHASE_CLIENT][STATE_READ],
		    stats.plans[PHASE_CLIENT][STATE_HALF_WRITTEN],
		    stats.plans[PHASE_CLIENT][STATE_ANSWERED_CLOSED]);
	stress_info("devices dead before the kill point %lu; clients blocked at a kill %lu (EPIPE %lu, ECANCELED %lu, other %lu), answered with half a response %lu, answered in full before the close %lu, timed out before the kill %lu; slowest return after a kill %llu ms",
		    stats.emulator_dead, stats.clients, stats.errors[0],
		    stats.errors[1], stats.errors[2], stats.half_answered,
		    stats.closed_answered, stats.finished_early,
		    (unsigned long long)stats.slowest_return_ms);
	return check_report(checks, NR_CHECKS) ? 1 : 0;
}
