/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small TPM emulator that serves vTPM proxy server fds for tests and
 * benchmarks. It responds to the TPM core's start-up and runtime commands for
 * TPM 1.2 and TPM 2.0 with minimal but well-formed responses, records
 * every command it receives, and misbehaves on request: error codes,
 * malformed or split responses, stalls, late responses and exits.
 *
 * A vtpm_server serves emulators: one thread that polls any number
 * of server fds. Everything an emulator records is protected by its own
 * lock, so a test thread can wait for and inspect the records while the
 * server thread runs.
 */
#ifndef VTPM_EMULATOR_H
#define VTPM_EMULATOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/types.h>

#include <linux/vtpm_proxy.h>

/* Largest command or response that the driver passes: the TPM core's buffer. */
#define VTPM_BUFSIZE		4096
/* tag (2 bytes), length (4), ordinal or return code (4) */
#define TPM_HEADER_SIZE		10

#define TPM2_ST_NO_SESSIONS	0x8001
#define TPM2_ST_SESSIONS	0x8002
#define TPM_TAG_RQU_COMMAND	0x00c1
#define TPM_TAG_RSP_COMMAND	0x00c4

/* TPM 2.0 command codes */
#define TPM2_CC_SELF_TEST	0x0143
#define TPM2_CC_STARTUP		0x0144
#define TPM2_CC_SHUTDOWN	0x0145
#define TPM2_CC_GET_CAPABILITY	0x017a
#define TPM2_CC_GET_RANDOM	0x017b
#define TPM2_CC_PCR_READ	0x017e
#define TPM2_CC_PCR_EXTEND	0x0182

/* TPM 2.0 capabilities and properties */
#define TPM2_CAP_COMMANDS	0x00000002
#define TPM2_CAP_PCRS		0x00000005
#define TPM2_CAP_TPM_PROPERTIES	0x00000006
#define TPM2_PT_TOTAL_COMMANDS	0x00000129
#define TPM2_ALG_SHA1		0x0004
#define TPM2_ALG_SHA256		0x000b
#define TPM2_SU_CLEAR		0x0000

/* TPM 2.0 response codes */
#define TPM2_RC_SUCCESS		0x0000
#define TPM2_RC_INITIALIZE	0x0100
#define TPM2_RC_FAILURE		0x0101
#define TPM2_RC_COMMAND_CODE	0x0143
/* The layer that the kernel's resource manager puts in its own codes. */
#define TSS2_RESMGR_TPM_RC_LAYER	(11 << 16)

/* TPM 1.2 ordinals */
#define TPM_ORD_PCR_EXTEND		20
#define TPM_ORD_PCR_READ		21
#define TPM_ORD_GET_RANDOM		70
#define TPM_ORD_CONTINUE_SELF_TEST	83
#define TPM_ORD_GET_CAPABILITY		101
#define TPM_ORD_SAVE_STATE		152
#define TPM_ORD_STARTUP			153

/* TPM 1.2 capability areas and sub-capabilities */
#define TPM_CAP_FLAG			0x04
#define TPM_CAP_PROP			0x05
#define TPM_CAP_VERSION_1_1		0x06
#define TPM_CAP_VERSION_1_2		0x1a
#define TPM_CAP_PROP_PCR		0x101
#define TPM_CAP_PROP_MANUFACTURER	0x103
#define TPM_CAP_FLAG_PERM		0x108
#define TPM_CAP_FLAG_VOL		0x109
#define TPM_CAP_PROP_OWNER		0x111
#define TPM_CAP_PROP_TIS_TIMEOUT	0x115
#define TPM_CAP_PROP_TIS_DURATION	0x120

/* TPM 1.2 return codes */
#define TPM_SUCCESS			0
#define TPM_BAD_PARAMETER		3
#define TPM_FAIL			9
#define TPM_INVALID_POSTINIT		38

/* PCRs per bank, as in the PC client platform profile */
#define VTPM_NR_PCRS			24

/**
 * enum vtpm_fault_kind - how the emulator misbehaves on a command
 * @VTPM_FAULT_NONE:       send the correct response
 * @VTPM_FAULT_ERROR:      send a header-only response that carries
 *                         &vtpm_fault.error_code
 * @VTPM_FAULT_BAD_LENGTH: send the correct response, but with a length
 *                         field 4 bytes larger than what is written
 * @VTPM_FAULT_GARBAGE:    send 24 bytes that are not a TPM response; their
 *                         length field never matches their size
 * @VTPM_FAULT_TRUNCATE:   send only the first 6 bytes of the response,
 *                         less than a TPM header
 * @VTPM_FAULT_SPLIT:      send the correct response in two write() calls
 * @VTPM_FAULT_DELAY:      send the correct response after
 *                         &vtpm_fault.delay_ms; no further command is read
 *                         from this device in the meantime
 * @VTPM_FAULT_STALL:      never respond to this command, but keep reading
 *                         later ones
 * @VTPM_FAULT_HANG:       never respond to this command, and never read
 *                         another one from this device
 * @VTPM_FAULT_EXIT:       close the server fd instead of answering; with
 *                         &vtpm_emulator.exit_process set, end the process
 */
enum vtpm_fault_kind {
	VTPM_FAULT_NONE,
	VTPM_FAULT_ERROR,
	VTPM_FAULT_BAD_LENGTH,
	VTPM_FAULT_GARBAGE,
	VTPM_FAULT_TRUNCATE,
	VTPM_FAULT_SPLIT,
	VTPM_FAULT_DELAY,
	VTPM_FAULT_STALL,
	VTPM_FAULT_HANG,
	VTPM_FAULT_EXIT,
};

/* Match every ordinal, or every occurrence, in &struct vtpm_fault. */
#define VTPM_ANY_ORDINAL	0xffffffffu
#define VTPM_ANY_INDEX		(-1)

/**
 * struct vtpm_fault - a misbehaviour and the command it applies to
 * @kind:       what to do instead of sending the correct response
 * @ordinal:    command code or ordinal to act on, or %VTPM_ANY_ORDINAL
 * @index:      which of the matching commands to act on, counted from 0
 *              among those received after the fault was added; or
 *              %VTPM_ANY_INDEX for every matching command
 * @error_code: response code for %VTPM_FAULT_ERROR
 * @delay_ms:   delay for %VTPM_FAULT_DELAY, in milliseconds
 * @seen:       matching commands received since the fault was added
 */
struct vtpm_fault {
	enum vtpm_fault_kind kind;
	__u32 ordinal;
	int index;
	__u32 error_code;
	unsigned int delay_ms;
	unsigned int seen;
};

/**
 * struct vtpm_record - one command received and what became of it
 * @ordinal:         command code or ordinal (0 for a command shorter than
 *                   a header)
 * @command:         the command bytes
 * @length:          size of @command
 * @fault:           the misbehaviour applied to it
 * @response:        the bytes sent, or due to be sent, in reply
 * @response_length: size of @response
 * @writes:          write() calls made for the reply so far
 * @write_result:    result of the last write(): bytes written or -errno;
 *                   0 before the first write
 */
struct vtpm_record {
	__u32 ordinal;
	__u8 *command;
	size_t length;
	enum vtpm_fault_kind fault;
	__u8 *response;
	size_t response_length;
	unsigned int writes;
	ssize_t write_result;
};

#define VTPM_MAX_FAULTS		16

/**
 * struct vtpm_emulator - the emulated TPM behind one server fd
 * @tpm2:         emulate a TPM 2.0; otherwise a TPM 1.2
 * @started:      TPM_Startup has run. Until then the TPM returns
 *                TPM2_RC_INITIALIZE for TPM2_SelfTest, and
 *                TPM_INVALID_POSTINIT for any TPM 1.2 command but
 *                TPM_Startup
 * @timeouts_us:  TPM 1.2 TIS timeouts A to D that TPM_GetCapability
 *                reports, in microseconds
 * @durations_us: TPM 1.2 short, medium and long command durations that
 *                TPM_GetCapability reports, in microseconds
 * @exit_process: %VTPM_FAULT_EXIT ends the process with status 0
 * @log:          if set, one line per command received is printed here
 * @name:         device name used in @log lines, for example "tpm0"
 * @fd:           the server fd; the emulator closes it on
 *                %VTPM_FAULT_EXIT and in vtpm_emulator_close()
 * @fd_flags:     file status flags of @fd before a server made it
 *                non-blocking
 * @lock:         protects @faults, @nr_faults, @records, @nr_records,
 *                @records_size, @hung_up and @closed
 * @changed:      signalled whenever a record is added or updated, or the
 *                device hangs up
 * @faults:       misbehaviours to apply
 * @nr_faults:    entries used in @faults
 * @records:      every command received, in order
 * @nr_records:   entries used in @records
 * @records_size: entries allocated in @records
 * @hung_up:      the device is dead: the server fd reported %POLLHUP or
 *                %EPIPE
 * @closed:       the emulator closed the server fd
 * @hanging:      a %VTPM_FAULT_HANG stopped all service
 * @delayed:      a response is waiting for @due (%VTPM_FAULT_DELAY)
 * @delayed_record: index in @records of the command that @delayed answers
 * @due:          when the delayed response is sent, CLOCK_MONOTONIC
 * @random_state: state of the generator for TPM_GetRandom bytes
 *
 * @started, @fd, @fd_flags, @hanging, @delayed, @delayed_record, @due
 * and @random_state belong to the thread that serves the fd: the server
 * thread while one runs, otherwise the caller.
 */
struct vtpm_emulator {
	bool tpm2;
	bool started;
	__u32 timeouts_us[4];
	__u32 durations_us[3];
	bool exit_process;
	FILE *log;
	char name[32];
	int fd;
	int fd_flags;

	/* protects faults, records, hung_up and closed */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct vtpm_fault faults[VTPM_MAX_FAULTS];
	unsigned int nr_faults;
	struct vtpm_record *records;
	size_t nr_records;
	size_t records_size;
	bool hung_up;
	bool closed;

	bool hanging;
	bool delayed;
	size_t delayed_record;
	struct timespec due;
	__u64 random_state;
};

/**
 * struct vtpm_server - a thread that serves a set of emulators
 * @emulators:    the emulators served
 * @nr_emulators: entries in @emulators
 * @epoll:        epoll instance with every server fd and @wake[0]
 * @wake:         pipe whose write end makes the thread check @stopping
 * @thread:       the serving thread
 * @running:      @thread was started and not yet joined
 * @stopping:     the thread must return
 */
struct vtpm_server {
	struct vtpm_emulator **emulators;
	size_t nr_emulators;
	int epoll;
	int wake[2];
	pthread_t thread;
	bool running;
	atomic_bool stopping;
};

void vtpm_emulator_init(struct vtpm_emulator *emu, bool tpm2);
void vtpm_emulator_destroy(struct vtpm_emulator *emu);
int vtpm_emulator_add_fault(struct vtpm_emulator *emu,
			    const struct vtpm_fault *fault);
int vtpm_emulator_serve_one(struct vtpm_emulator *emu);
size_t vtpm_emulator_respond(struct vtpm_emulator *emu, const __u8 *command,
			     size_t length, __u8 *response);
void vtpm_emulator_close(struct vtpm_emulator *emu);

size_t vtpm_emulator_count(struct vtpm_emulator *emu, __u32 ordinal);
bool vtpm_emulator_get_record(struct vtpm_emulator *emu, size_t index,
			      struct vtpm_record *record);
int vtpm_emulator_wait_command(struct vtpm_emulator *emu, __u32 ordinal,
			       size_t count, int timeout_ms);
int vtpm_emulator_wait_reply(struct vtpm_emulator *emu, __u32 ordinal,
			     size_t count, unsigned int writes,
			     int timeout_ms);
int vtpm_emulator_wait_hangup(struct vtpm_emulator *emu, int timeout_ms);
bool vtpm_emulator_is_dead(struct vtpm_emulator *emu);

int vtpm_server_start(struct vtpm_server *server,
		      struct vtpm_emulator **emulators, size_t nr_emulators);
void vtpm_server_stop(struct vtpm_server *server);
int vtpm_emulator_start(struct vtpm_emulator *emu, struct vtpm_server *server);

const char *vtpm_fault_name(enum vtpm_fault_kind kind);
int vtpm_fault_parse(const char *spec, struct vtpm_fault *fault);
__u32 vtpm_command_ordinal(const __u8 *command, size_t length);

#endif /* VTPM_EMULATOR_H */
