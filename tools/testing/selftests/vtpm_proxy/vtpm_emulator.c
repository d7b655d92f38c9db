// SPDX-License-Identifier: GPL-2.0
/*
 * A small TPM emulator for testing the vTPM proxy driver; see
 * vtpm_emulator.h for what it does.
 *
 * The responses follow the TPM 1.2 and TPM 2.0 specifications closely
 * enough for the kernel's TPM core to register the chip and for simple
 * clients: fixed capabilities, PCRs that stay zero and pseudo-random
 * numbers. Nothing here is cryptographically meaningful.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>

#include "vtpm_emulator.h"

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(array) (sizeof(array) / sizeof((array)[0]))
#endif

#define TPM2_RC_INSUFFICIENT	0x009a
#define TPM_BADINDEX		2

/* TPMA_CC: bits 27:25 hold the number of handles in the command. */
#define TPMA_CC_CHANDLES_SHIFT	25

/* TPM2_GetRandom returns at most the size of the largest digest. */
#define TPM2_MAX_RANDOM		64
#define TPM1_MAX_RANDOM		128
#define TPM1_DIGEST_SIZE	20
/* A TPML_DIGEST has room for at most 8 digests. */
#define TPM2_MAX_PCR_DIGESTS	8

/* Default TPM 1.2 TIS timeouts and durations, in microseconds. */
#define TPM1_TIMEOUT_A_US	750000
#define TPM1_TIMEOUT_B_US	2000000
#define TPM1_TIMEOUT_C_US	750000
#define TPM1_TIMEOUT_D_US	750000
#define TPM1_DURATION_SHORT_US	2000000
#define TPM1_DURATION_MEDIUM_US	20000000
#define TPM1_DURATION_LONG_US	60000000

/* Bytes sent for VTPM_FAULT_GARBAGE and VTPM_FAULT_TRUNCATE. */
#define GARBAGE_LENGTH		24
#define TRUNCATED_LENGTH	6

/* The TPM 2.0 commands that the emulator implements, in ascending order. */
static const struct {
	__u32 code;
	unsigned int handles;
} tpm2_commands[] = {
	{ TPM2_CC_SELF_TEST, 0 },
	{ TPM2_CC_STARTUP, 0 },
	{ TPM2_CC_SHUTDOWN, 0 },
	{ TPM2_CC_GET_CAPABILITY, 0 },
	{ TPM2_CC_GET_RANDOM, 0 },
	{ TPM2_CC_PCR_READ, 0 },
	{ TPM2_CC_PCR_EXTEND, 1 },
};

#define NR_TPM2_COMMANDS ARRAY_SIZE(tpm2_commands)

/* A response under construction, big-endian as all TPM structures. */
struct out_buf {
	__u8 *data;
	size_t length;
	bool overflow;
};

static void put_bytes(struct out_buf *out, const void *bytes, size_t n)
{
	if (out->length + n > VTPM_BUFSIZE) {
		out->overflow = true;
		return;
	}
	memcpy(out->data + out->length, bytes, n);
	out->length += n;
}

static void put_u8(struct out_buf *out, __u8 value)
{
	put_bytes(out, &value, 1);
}

static void put_u16(struct out_buf *out, __u16 value)
{
	__u8 bytes[2] = { value >> 8, value };

	put_bytes(out, bytes, sizeof(bytes));
}

static void put_u32(struct out_buf *out, __u32 value)
{
	__u8 bytes[4] = { value >> 24, value >> 16, value >> 8, value };

	put_bytes(out, bytes, sizeof(bytes));
}

static void store_u32(__u8 *where, __u32 value)
{
	where[0] = value >> 24;
	where[1] = value >> 16;
	where[2] = value >> 8;
	where[3] = value;
}

static __u16 load_u16(const __u8 *where)
{
	return (__u16)(where[0] << 8 | where[1]);
}

static __u32 load_u32(const __u8 *where)
{
	return (__u32)where[0] << 24 | (__u32)where[1] << 16 |
	       (__u32)where[2] << 8 | where[3];
}

/* Read a big-endian field of the command, if the command is long enough. */
static bool get_u16(const __u8 *command, size_t length, size_t offset,
		    __u16 *value)
{
	if (offset + 2 > length)
		return false;
	*value = load_u16(command + offset);
	return true;
}

static bool get_u32(const __u8 *command, size_t length, size_t offset,
		    __u32 *value)
{
	if (offset + 4 > length)
		return false;
	*value = load_u32(command + offset);
	return true;
}

__u32 vtpm_command_ordinal(const __u8 *command, size_t length)
{
	if (length < TPM_HEADER_SIZE)
		return 0;
	return load_u32(command + 6);
}

static void start_response(struct out_buf *out, __u16 tag, __u32 rc)
{
	out->length = 0;
	out->overflow = false;
	put_u16(out, tag);
	put_u32(out, 0);
	put_u32(out, rc);
}

/* Write the length field; an overflowing response becomes an error. */
static size_t finish_response(struct out_buf *out, bool tpm2)
{
	if (out->overflow)
		start_response(out, tpm2 ? TPM2_ST_NO_SESSIONS :
					   TPM_TAG_RSP_COMMAND,
			       tpm2 ? TPM2_RC_FAILURE : TPM_FAIL);
	store_u32(out->data + 2, out->length);
	return out->length;
}

/* xorshift64*: reproducible bytes for GetRandom, not random at all. */
static __u8 next_random_byte(struct vtpm_emulator *emu)
{
	__u64 x = emu->random_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	emu->random_state = x;
	return (__u8)((x * 0x2545f4914f6cdd1dULL) >> 56);
}

static unsigned int tpm2_digest_size(__u16 alg)
{
	switch (alg) {
	case TPM2_ALG_SHA1:
		return 20;
	case TPM2_ALG_SHA256:
		return 32;
	case 0x000c:	/* SHA384 */
		return 48;
	case 0x000d:	/* SHA512 */
		return 64;
	case 0x0012:	/* SM3_256 */
		return 32;
	default:
		return 0;
	}
}

static void tpm2_get_capability(const __u8 *command, size_t length,
				struct out_buf *out)
{
	__u32 capability, property, count, listed = 0;
	size_t count_offset;
	unsigned int i;

	if (!get_u32(command, length, 10, &capability) ||
	    !get_u32(command, length, 14, &property) ||
	    !get_u32(command, length, 18, &count)) {
		start_response(out, TPM2_ST_NO_SESSIONS, TPM2_RC_INSUFFICIENT);
		return;
	}

	start_response(out, TPM2_ST_NO_SESSIONS, TPM2_RC_SUCCESS);
	put_u8(out, 0);			/* moreData */
	put_u32(out, capability);
	count_offset = out->length;
	put_u32(out, 0);		/* count, stored below */

	switch (capability) {
	case TPM2_CAP_TPM_PROPERTIES:
		/* Only the number of commands is known; others read 0. */
		if (count > 0) {
			put_u32(out, property);
			put_u32(out, property == TPM2_PT_TOTAL_COMMANDS ?
				NR_TPM2_COMMANDS : 0);
			listed = 1;
		}
		break;
	case TPM2_CAP_COMMANDS:
		for (i = 0; i < NR_TPM2_COMMANDS && listed < count; i++) {
			if (tpm2_commands[i].code < (property & 0xffff))
				continue;
			put_u32(out, tpm2_commands[i].code |
				tpm2_commands[i].handles <<
				TPMA_CC_CHANDLES_SHIFT);
			listed++;
		}
		break;
	case TPM2_CAP_PCRS:
		/* One SHA-256 bank with all 24 PCRs allocated. */
		put_u16(out, TPM2_ALG_SHA256);
		put_u8(out, 3);
		put_u8(out, 0xff);
		put_u8(out, 0xff);
		put_u8(out, 0xff);
		listed = 1;
		break;
	default:
		break;
	}
	if (!out->overflow)
		store_u32(out->data + count_offset, listed);
}

static void tpm2_get_random(struct vtpm_emulator *emu, const __u8 *command,
			    size_t length, struct out_buf *out)
{
	__u16 requested;
	unsigned int i;

	if (!get_u16(command, length, 10, &requested)) {
		start_response(out, TPM2_ST_NO_SESSIONS, TPM2_RC_INSUFFICIENT);
		return;
	}
	if (requested > TPM2_MAX_RANDOM)
		requested = TPM2_MAX_RANDOM;

	start_response(out, TPM2_ST_NO_SESSIONS, TPM2_RC_SUCCESS);
	put_u16(out, requested);
	for (i = 0; i < requested; i++)
		put_u8(out, next_random_byte(emu));
}

/*
 * Respond to TPM2_PCR_Read with zero digests. A TPM returns at most 8 digests
 * per call and clears the bits of the PCRs it did not read from the
 * selection it returns; so does this one. Banks of an unknown algorithm
 * come back with an empty selection.
 */
static void tpm2_pcr_read(const __u8 *command, size_t length,
			  struct out_buf *out)
{
	static const __u8 zeros[64];
	__u16 digest_sizes[TPM2_MAX_PCR_DIGESTS];
	unsigned int nr_digests = 0, i, bit;
	__u32 nr_banks, bank;
	size_t offset = 14;

	if (!get_u32(command, length, 10, &nr_banks)) {
		start_response(out, TPM2_ST_NO_SESSIONS, TPM2_RC_INSUFFICIENT);
		return;
	}

	start_response(out, TPM2_ST_NO_SESSIONS, TPM2_RC_SUCCESS);
	put_u32(out, 0);		/* pcrUpdateCounter */
	put_u32(out, nr_banks);
	for (bank = 0; bank < nr_banks; bank++) {
		__u16 alg;
		__u8 size;

		if (!get_u16(command, length, offset, &alg) ||
		    offset + 3 > length ||
		    offset + 3 + command[offset + 2] > length) {
			start_response(out, TPM2_ST_NO_SESSIONS,
				       TPM2_RC_INSUFFICIENT);
			return;
		}
		size = command[offset + 2];
		put_u16(out, alg);
		put_u8(out, size);
		for (i = 0; i < size; i++) {
			__u8 select = command[offset + 3 + i], kept = 0;

			for (bit = 0; bit < 8; bit++) {
				if (!(select & 1u << bit) ||
				    !tpm2_digest_size(alg) ||
				    nr_digests == TPM2_MAX_PCR_DIGESTS)
					continue;
				kept |= 1u << bit;
				digest_sizes[nr_digests++] =
					tpm2_digest_size(alg);
			}
			put_u8(out, kept);
		}
		offset += 3 + size;
	}

	put_u32(out, nr_digests);
	for (i = 0; i < nr_digests; i++) {
		put_u16(out, digest_sizes[i]);
		put_bytes(out, zeros, digest_sizes[i]);
	}
}

/*
 * Success for a command with an authorization area: parameterSize, no
 * parameters and one empty response session.
 */
static void tpm2_success_with_session(struct out_buf *out)
{
	start_response(out, TPM2_ST_SESSIONS, TPM2_RC_SUCCESS);
	put_u32(out, 0);		/* parameterSize */
	put_u16(out, 0);		/* nonceTPM */
	put_u8(out, 1);			/* sessionAttributes: continueSession */
	put_u16(out, 0);		/* hmac */
}

static void tpm2_respond(struct vtpm_emulator *emu, const __u8 *command,
			 size_t length, struct out_buf *out)
{
	__u32 code = vtpm_command_ordinal(command, length);
	__u16 tag = length >= 2 ? load_u16(command) : 0;

	switch (code) {
	case TPM2_CC_SET_LOCALITY:
	case TPM2_CC_SHUTDOWN:
		start_response(out, TPM2_ST_NO_SESSIONS, TPM2_RC_SUCCESS);
		break;
	case TPM2_CC_SELF_TEST:
		start_response(out, TPM2_ST_NO_SESSIONS,
			       emu->started ? TPM2_RC_SUCCESS :
					      TPM2_RC_INITIALIZE);
		break;
	case TPM2_CC_STARTUP:
		start_response(out, TPM2_ST_NO_SESSIONS,
			       emu->started ? TPM2_RC_INITIALIZE :
					      TPM2_RC_SUCCESS);
		emu->started = true;
		break;
	case TPM2_CC_GET_CAPABILITY:
		tpm2_get_capability(command, length, out);
		break;
	case TPM2_CC_GET_RANDOM:
		tpm2_get_random(emu, command, length, out);
		break;
	case TPM2_CC_PCR_READ:
		tpm2_pcr_read(command, length, out);
		break;
	default:
		if (tag == TPM2_ST_SESSIONS)
			tpm2_success_with_session(out);
		else
			start_response(out, TPM2_ST_NO_SESSIONS,
				       TPM2_RC_SUCCESS);
		break;
	}
}

/* TPM_GetCapability for TPM_CAP_PROP: the sub-capabilities the kernel reads. */
static void tpm1_get_property(struct vtpm_emulator *emu, __u32 property,
			      struct out_buf *out)
{
	unsigned int i;

	start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
	switch (property) {
	case TPM_CAP_PROP_TIS_TIMEOUT:
		put_u32(out, 4 * sizeof(__u32));
		for (i = 0; i < 4; i++)
			put_u32(out, emu->timeouts_us[i]);
		break;
	case TPM_CAP_PROP_TIS_DURATION:
		put_u32(out, 3 * sizeof(__u32));
		for (i = 0; i < 3; i++)
			put_u32(out, emu->durations_us[i]);
		break;
	case TPM_CAP_PROP_PCR:
		put_u32(out, sizeof(__u32));
		put_u32(out, VTPM_NR_PCRS);
		break;
	case TPM_CAP_PROP_MANUFACTURER:
		put_u32(out, sizeof(__u32));
		put_bytes(out, "TEST", 4);
		break;
	case TPM_CAP_PROP_OWNER:
		put_u32(out, 1);
		put_u8(out, 0);		/* no owner */
		break;
	default:
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_BAD_PARAMETER);
		break;
	}
}

static void tpm1_get_capability(struct vtpm_emulator *emu,
				const __u8 *command, size_t length,
				struct out_buf *out)
{
	static const __u8 no_flags[20];
	__u32 area, sub_size, sub = 0;

	if (!get_u32(command, length, 10, &area) ||
	    !get_u32(command, length, 14, &sub_size) ||
	    (sub_size == 4 && !get_u32(command, length, 18, &sub))) {
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_BAD_PARAMETER);
		return;
	}

	switch (area) {
	case TPM_CAP_PROP:
		tpm1_get_property(emu, sub, out);
		return;
	case TPM_CAP_FLAG:
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
		if (sub == TPM_CAP_FLAG_PERM) {
			/* TPM_PERMANENT_FLAGS: enabled, activated, no owner */
			put_u32(out, 22);
			put_u16(out, 0x001f);
			put_bytes(out, no_flags, 20);
		} else if (sub == TPM_CAP_FLAG_VOL) {
			/* TPM_STCLEAR_FLAGS: nothing set */
			put_u32(out, 7);
			put_u16(out, 0x0020);
			put_bytes(out, no_flags, 5);
		} else {
			start_response(out, TPM_TAG_RSP_COMMAND,
				       TPM_BAD_PARAMETER);
		}
		return;
	case TPM_CAP_VERSION_1_2:
		/* TPM_CAP_VERSION_INFO for a TPM 1.2, revision 0.0 */
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
		put_u32(out, 15);
		put_u16(out, 0x0030);
		put_bytes(out, "\x01\x02\x00\x00", 4);
		put_u16(out, 2);		/* specLevel */
		put_u8(out, 3);			/* errataRev */
		put_bytes(out, "TEST", 4);	/* tpmVendorID */
		put_u16(out, 0);		/* vendorSpecificSize */
		return;
	case TPM_CAP_VERSION_1_1:
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
		put_u32(out, 4);
		put_bytes(out, "\x01\x01\x00\x00", 4);
		return;
	default:
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_BAD_PARAMETER);
		return;
	}
}

static void tpm1_respond(struct vtpm_emulator *emu, const __u8 *command,
			 size_t length, struct out_buf *out)
{
	static const __u8 zero_digest[TPM1_DIGEST_SIZE];
	__u32 ordinal = vtpm_command_ordinal(command, length);
	__u32 value;
	unsigned int i;

	if (ordinal == TPM_ORD_SET_LOCALITY) {
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
		return;
	}
	if (ordinal == TPM_ORD_STARTUP) {
		start_response(out, TPM_TAG_RSP_COMMAND,
			       emu->started ? TPM_INVALID_POSTINIT :
					      TPM_SUCCESS);
		emu->started = true;
		return;
	}
	/* A TPM 1.2 refuses everything until TPM_Startup. */
	if (!emu->started) {
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_INVALID_POSTINIT);
		return;
	}

	switch (ordinal) {
	case TPM_ORD_GET_CAPABILITY:
		tpm1_get_capability(emu, command, length, out);
		break;
	case TPM_ORD_PCR_READ:
		if (!get_u32(command, length, 10, &value) ||
		    value >= VTPM_NR_PCRS) {
			start_response(out, TPM_TAG_RSP_COMMAND, TPM_BADINDEX);
			break;
		}
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
		put_bytes(out, zero_digest, sizeof(zero_digest));
		break;
	case TPM_ORD_PCR_EXTEND:
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
		put_bytes(out, zero_digest, sizeof(zero_digest));
		break;
	case TPM_ORD_GET_RANDOM:
		if (!get_u32(command, length, 10, &value)) {
			start_response(out, TPM_TAG_RSP_COMMAND,
				       TPM_BAD_PARAMETER);
			break;
		}
		if (value > TPM1_MAX_RANDOM)
			value = TPM1_MAX_RANDOM;
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
		put_u32(out, value);
		for (i = 0; i < value; i++)
			put_u8(out, next_random_byte(emu));
		break;
	default:
		/* TPM_ContinueSelfTest, TPM_SaveState and all others */
		start_response(out, TPM_TAG_RSP_COMMAND, TPM_SUCCESS);
		break;
	}
}

/**
 * vtpm_emulator_respond() - build the correct response to a command
 * @emu:      the emulator, whose state the command may change
 * @command:  the command bytes
 * @length:   size of @command
 * @response: at least %VTPM_BUFSIZE bytes for the response
 *
 * Return: the size of the response.
 */
size_t vtpm_emulator_respond(struct vtpm_emulator *emu, const __u8 *command,
			     size_t length, __u8 *response)
{
	struct out_buf out = { .data = response };

	if (emu->tpm2)
		tpm2_respond(emu, command, length, &out);
	else
		tpm1_respond(emu, command, length, &out);
	return finish_response(&out, emu->tpm2);
}

void vtpm_emulator_init(struct vtpm_emulator *emu, bool tpm2)
{
	pthread_condattr_t attr;

	memset(emu, 0, sizeof(*emu));
	emu->tpm2 = tpm2;
	emu->fd = -1;
	emu->fd_flags = -1;
	emu->timeouts_us[0] = TPM1_TIMEOUT_A_US;
	emu->timeouts_us[1] = TPM1_TIMEOUT_B_US;
	emu->timeouts_us[2] = TPM1_TIMEOUT_C_US;
	emu->timeouts_us[3] = TPM1_TIMEOUT_D_US;
	emu->durations_us[0] = TPM1_DURATION_SHORT_US;
	emu->durations_us[1] = TPM1_DURATION_MEDIUM_US;
	emu->durations_us[2] = TPM1_DURATION_LONG_US;
	emu->random_state = 0x9e3779b97f4a7c15ULL;
	snprintf(emu->name, sizeof(emu->name), "vtpm");

	pthread_mutex_init(&emu->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&emu->changed, &attr);
	pthread_condattr_destroy(&attr);
}

/* Free the records and close the server fd if it is still open. */
void vtpm_emulator_destroy(struct vtpm_emulator *emu)
{
	size_t i;

	if (emu->fd >= 0)
		close(emu->fd);
	emu->fd = -1;
	for (i = 0; i < emu->nr_records; i++) {
		free(emu->records[i].command);
		free(emu->records[i].response);
	}
	free(emu->records);
	emu->records = NULL;
	emu->nr_records = 0;
	emu->records_size = 0;
	pthread_cond_destroy(&emu->changed);
	pthread_mutex_destroy(&emu->lock);
}

/**
 * vtpm_emulator_add_fault() - misbehave on matching commands from now on
 * @emu:   the emulator; it may be serving already
 * @fault: the misbehaviour; its @seen count starts at 0
 *
 * Return: 0, or -ENOSPC when %VTPM_MAX_FAULTS are set already.
 */
int vtpm_emulator_add_fault(struct vtpm_emulator *emu,
			    const struct vtpm_fault *fault)
{
	int rc = 0;

	pthread_mutex_lock(&emu->lock);
	if (emu->nr_faults == VTPM_MAX_FAULTS) {
		rc = -ENOSPC;
	} else {
		emu->faults[emu->nr_faults] = *fault;
		emu->faults[emu->nr_faults].seen = 0;
		emu->nr_faults++;
	}
	pthread_mutex_unlock(&emu->lock);
	return rc;
}

/* Pick the fault for a command and count the command; needs emu->lock. */
static struct vtpm_fault pick_fault(struct vtpm_emulator *emu, __u32 ordinal)
{
	struct vtpm_fault chosen = { .kind = VTPM_FAULT_NONE };
	unsigned int i;

	for (i = 0; i < emu->nr_faults; i++) {
		struct vtpm_fault *fault = &emu->faults[i];
		bool hit;

		if (fault->ordinal != VTPM_ANY_ORDINAL &&
		    fault->ordinal != ordinal)
			continue;
		hit = fault->index == VTPM_ANY_INDEX ||
		      fault->seen == (unsigned int)fault->index;
		fault->seen++;
		if (hit && chosen.kind == VTPM_FAULT_NONE)
			chosen = *fault;
	}
	return chosen;
}

/* Append a record; needs emu->lock. Returns its index, or -1. */
static ssize_t add_record(struct vtpm_emulator *emu, const __u8 *command,
			  size_t length, enum vtpm_fault_kind fault)
{
	struct vtpm_record *record;

	if (emu->nr_records == emu->records_size) {
		size_t size = emu->records_size ? 2 * emu->records_size : 16;
		struct vtpm_record *records;

		records = realloc(emu->records, size * sizeof(*records));
		if (!records)
			return -1;
		emu->records = records;
		emu->records_size = size;
	}

	record = &emu->records[emu->nr_records];
	memset(record, 0, sizeof(*record));
	record->ordinal = vtpm_command_ordinal(command, length);
	record->length = length;
	record->fault = fault;
	record->command = malloc(length ? length : 1);
	if (!record->command)
		return -1;
	memcpy(record->command, command, length);
	return emu->nr_records++;
}

static void set_response(struct vtpm_emulator *emu, ssize_t index,
			 const __u8 *response, size_t length)
{
	__u8 *copy;

	if (index < 0)
		return;
	copy = malloc(length ? length : 1);
	if (!copy)
		return;
	memcpy(copy, response, length);

	pthread_mutex_lock(&emu->lock);
	free(emu->records[index].response);
	emu->records[index].response = copy;
	emu->records[index].response_length = length;
	pthread_mutex_unlock(&emu->lock);
}

/* Write (part of) a reply and record the outcome. */
static void write_reply(struct vtpm_emulator *emu, ssize_t index,
			const __u8 *bytes, size_t length)
{
	ssize_t written = write(emu->fd, bytes, length);
	int err = errno;

	pthread_mutex_lock(&emu->lock);
	if (index >= 0) {
		emu->records[index].writes++;
		emu->records[index].write_result = written < 0 ? -err :
								 written;
	}
	if (written < 0 && err == EPIPE)
		emu->hung_up = true;
	pthread_cond_broadcast(&emu->changed);
	pthread_mutex_unlock(&emu->lock);
}

/* Close the server fd from the serving thread; the device goes away. */
static void close_server_fd(struct vtpm_emulator *emu)
{
	int fd = emu->fd;

	emu->fd = -1;
	close(fd);
	pthread_mutex_lock(&emu->lock);
	emu->closed = true;
	pthread_cond_broadcast(&emu->changed);
	pthread_mutex_unlock(&emu->lock);
}

static void log_command(struct vtpm_emulator *emu, ssize_t index,
			const __u8 *command, size_t length,
			enum vtpm_fault_kind fault)
{
	size_t i;

	if (!emu->log)
		return;
	fprintf(emu->log, "%s #%zd ordinal 0x%08x length %zu fault %s:",
		emu->name, index, vtpm_command_ordinal(command, length),
		length, vtpm_fault_name(fault));
	for (i = 0; i < length; i++)
		fprintf(emu->log, " %02x", command[i]);
	fputc('\n', emu->log);
	fflush(emu->log);
}

static void schedule_delayed(struct vtpm_emulator *emu, ssize_t index,
			     unsigned int delay_ms)
{
	clock_gettime(CLOCK_MONOTONIC, &emu->due);
	emu->due.tv_sec += delay_ms / 1000;
	emu->due.tv_nsec += (long)(delay_ms % 1000) * 1000000;
	if (emu->due.tv_nsec >= 1000000000) {
		emu->due.tv_sec++;
		emu->due.tv_nsec -= 1000000000;
	}
	emu->delayed_record = index;
	emu->delayed = true;
}

/* Turn the correct response into the bytes that the fault sends. */
static size_t apply_fault(const struct vtpm_fault *fault, bool tpm2,
			  __u8 *response, size_t length)
{
	static const __u8 garbage[GARBAGE_LENGTH] = {
		0xde, 0xad, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef,
		0x55, 0xaa, 0x55, 0xaa, 0x55, 0xaa, 0x55, 0xaa,
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	};

	switch (fault->kind) {
	case VTPM_FAULT_ERROR: {
		struct out_buf out = { .data = response };

		start_response(&out, tpm2 ? TPM2_ST_NO_SESSIONS :
					    TPM_TAG_RSP_COMMAND,
			       fault->error_code);
		return finish_response(&out, tpm2);
	}
	case VTPM_FAULT_BAD_LENGTH:
		store_u32(response + 2, length + 4);
		return length;
	case VTPM_FAULT_GARBAGE:
		memcpy(response, garbage, sizeof(garbage));
		return sizeof(garbage);
	case VTPM_FAULT_TRUNCATE:
		return TRUNCATED_LENGTH;
	default:
		return length;
	}
}

/**
 * vtpm_emulator_serve_one() - read one command and act on it
 * @emu: the emulator; its @fd must be open
 *
 * Blocks in read() if no command is queued. The command is recorded, then
 * gets the response that the matching fault calls for, if any.
 *
 * Return: 0, or -errno of read().
 */
int vtpm_emulator_serve_one(struct vtpm_emulator *emu)
{
	static __thread __u8 command[VTPM_BUFSIZE];
	static __thread __u8 response[VTPM_BUFSIZE];
	struct vtpm_fault fault;
	size_t length, half;
	ssize_t n, index;
	int err;

	n = read(emu->fd, command, sizeof(command));
	if (n < 0) {
		err = errno;
		if (err == EPIPE) {
			pthread_mutex_lock(&emu->lock);
			emu->hung_up = true;
			pthread_cond_broadcast(&emu->changed);
			pthread_mutex_unlock(&emu->lock);
		}
		return -err;
	}

	pthread_mutex_lock(&emu->lock);
	fault = pick_fault(emu, vtpm_command_ordinal(command, n));
	index = add_record(emu, command, n, fault.kind);
	pthread_cond_broadcast(&emu->changed);
	pthread_mutex_unlock(&emu->lock);
	log_command(emu, index, command, n, fault.kind);

	length = vtpm_emulator_respond(emu, command, n, response);
	length = apply_fault(&fault, emu->tpm2, response, length);
	set_response(emu, index, response, length);

	switch (fault.kind) {
	case VTPM_FAULT_SPLIT:
		half = length / 2;
		write_reply(emu, index, response, half);
		write_reply(emu, index, response + half, length - half);
		break;
	case VTPM_FAULT_DELAY:
		schedule_delayed(emu, index, fault.delay_ms);
		break;
	case VTPM_FAULT_STALL:
		break;
	case VTPM_FAULT_HANG:
		emu->hanging = true;
		break;
	case VTPM_FAULT_EXIT:
		if (emu->exit_process) {
			if (emu->log)
				fprintf(emu->log, "%s: exiting as the exit fault asks\n",
					emu->name);
			_exit(0);
		}
		close_server_fd(emu);
		break;
	default:
		write_reply(emu, index, response, length);
		break;
	}
	return 0;
}

static void send_delayed(struct vtpm_emulator *emu)
{
	struct vtpm_record *record;
	__u8 *bytes;
	size_t length;

	pthread_mutex_lock(&emu->lock);
	record = &emu->records[emu->delayed_record];
	bytes = record->response;
	length = record->response_length;
	pthread_mutex_unlock(&emu->lock);

	emu->delayed = false;
	if (bytes)
		write_reply(emu, emu->delayed_record, bytes, length);
}

/*
 * Close the server fd, which tears the device down. Call it only while no
 * server thread serves @emu: a poll() in progress holds a reference to the
 * file, which would keep the device alive until that poll() returns.
 */
void vtpm_emulator_close(struct vtpm_emulator *emu)
{
	if (emu->fd >= 0)
		close_server_fd(emu);
}

static long ms_until(const struct timespec *due)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (due->tv_sec - now.tv_sec) * 1000 +
	     (due->tv_nsec - now.tv_nsec) / 1000000;
	return ms < 0 ? 0 : ms + 1;
}

static void mark_hung_up(struct vtpm_emulator *emu)
{
	pthread_mutex_lock(&emu->lock);
	emu->hung_up = true;
	pthread_cond_broadcast(&emu->changed);
	pthread_mutex_unlock(&emu->lock);
}

/*
 * Poll the fd for commands only while the emulator would read them: not
 * while a response is delayed, nor after a hang. %EPOLLHUP is reported
 * either way.
 */
static void update_interest(struct vtpm_server *server, size_t i)
{
	struct vtpm_emulator *emu = server->emulators[i];
	struct epoll_event event = {
		.events = emu->delayed || emu->hanging ? 0 : EPOLLIN,
		.data.u64 = i,
	};

	epoll_ctl(server->epoll, EPOLL_CTL_MOD, emu->fd, &event);
}

static void forget_fd(struct vtpm_server *server, size_t i)
{
	struct vtpm_emulator *emu = server->emulators[i];

	if (emu->fd >= 0)
		epoll_ctl(server->epoll, EPOLL_CTL_DEL, emu->fd, NULL);
}

/* Send the delayed responses that are due; return ms until the next. */
static int send_due_responses(struct vtpm_server *server)
{
	int timeout = -1;
	size_t i;

	for (i = 0; i < server->nr_emulators; i++) {
		struct vtpm_emulator *emu = server->emulators[i];
		long ms;

		if (!emu->delayed || emu->fd < 0)
			continue;
		ms = ms_until(&emu->due);
		if (ms <= 1) {
			send_delayed(emu);
			update_interest(server, i);
		} else if (timeout < 0 || ms < timeout) {
			timeout = ms;
		}
	}
	return timeout;
}

/* Act on what epoll reported for emulator @i. */
static void handle_event(struct vtpm_server *server, size_t i,
			 __u32 events)
{
	struct vtpm_emulator *emu = server->emulators[i];

	if (emu->fd < 0)
		return;
	if (events & EPOLLIN) {
		/* -EAGAIN: the command was withdrawn; nothing to do. */
		if (vtpm_emulator_serve_one(emu) == -EPIPE)
			forget_fd(server, i);
		else if (emu->fd >= 0)
			update_interest(server, i);
		/* EXIT closed the fd, which took it out of the epoll set. */
	} else if (events & (EPOLLHUP | EPOLLERR)) {
		forget_fd(server, i);
		mark_hung_up(emu);
	}
}

/* Serve the emulators until vtpm_server_stop(). */
static void *server_main(void *arg)
{
	struct vtpm_server *server = arg;
	struct epoll_event events[64];
	int timeout, n, k;

	while (!atomic_load(&server->stopping)) {
		timeout = send_due_responses(server);
		n = epoll_wait(server->epoll, events, 64, timeout);
		if (n < 0 && errno != EINTR)
			break;
		for (k = 0; k < n && !atomic_load(&server->stopping); k++) {
			size_t i = events[k].data.u64;

			if (i == server->nr_emulators)
				continue;	/* the wake pipe */
			handle_event(server, i, events[k].events);
		}
	}
	return NULL;
}

/**
 * vtpm_server_start() - serve emulators in a new thread
 * @server:       the server to start
 * @emulators:    the emulators, each with its server fd open
 * @nr_emulators: entries in @emulators
 *
 * Until vtpm_server_stop() returns, only the server thread may read from,
 * write to or close the emulators' server fds.
 *
 * Return: 0 or -errno.
 */
int vtpm_server_start(struct vtpm_server *server,
		      struct vtpm_emulator **emulators, size_t nr_emulators)
{
	struct epoll_event event = { .events = EPOLLIN };
	size_t i;
	int rc;

	memset(server, 0, sizeof(*server));
	server->epoll = -1;
	server->wake[0] = -1;
	server->wake[1] = -1;
	server->emulators = calloc(nr_emulators, sizeof(*emulators));
	if (!server->emulators)
		return -ENOMEM;
	memcpy(server->emulators, emulators,
	       nr_emulators * sizeof(*emulators));
	server->nr_emulators = nr_emulators;

	server->epoll = epoll_create1(EPOLL_CLOEXEC);
	if (server->epoll < 0 || pipe2(server->wake, O_CLOEXEC | O_NONBLOCK)) {
		rc = -errno;
		goto err_close;
	}
	event.data.u64 = nr_emulators;
	if (epoll_ctl(server->epoll, EPOLL_CTL_ADD, server->wake[0], &event)) {
		rc = -errno;
		goto err_close;
	}
	/*
	 * Reads must not block: a command that times out is withdrawn, maybe
	 * between epoll_wait() and read(), and a read blocked on one server
	 * fd would stall every other device of the thread.
	 */
	for (i = 0; i < nr_emulators; i++) {
		if (emulators[i]->fd < 0)
			continue;
		emulators[i]->fd_flags = fcntl(emulators[i]->fd, F_GETFL);
		if (emulators[i]->fd_flags >= 0)
			fcntl(emulators[i]->fd, F_SETFL,
			      emulators[i]->fd_flags | O_NONBLOCK);
		event.data.u64 = i;
		if (epoll_ctl(server->epoll, EPOLL_CTL_ADD, emulators[i]->fd,
			      &event)) {
			rc = -errno;
			goto err_close;
		}
	}

	rc = -pthread_create(&server->thread, NULL, server_main, server);
	if (rc)
		goto err_close;
	server->running = true;
	return 0;

err_close:
	if (server->wake[0] >= 0) {
		close(server->wake[0]);
		close(server->wake[1]);
	}
	if (server->epoll >= 0)
		close(server->epoll);
	free(server->emulators);
	return rc;
}

/* Stop the server thread; the server fds get their file flags back. */
void vtpm_server_stop(struct vtpm_server *server)
{
	size_t i;

	if (!server->running)
		return;
	atomic_store(&server->stopping, true);
	if (write(server->wake[1], "", 1) < 0)
		perror("cannot wake the server thread");
	pthread_join(server->thread, NULL);
	for (i = 0; i < server->nr_emulators; i++) {
		struct vtpm_emulator *emu = server->emulators[i];

		if (emu->fd >= 0 && emu->fd_flags >= 0)
			fcntl(emu->fd, F_SETFL, emu->fd_flags);
	}
	close(server->wake[0]);
	close(server->wake[1]);
	close(server->epoll);
	free(server->emulators);
	server->emulators = NULL;
	server->running = false;
}

/* Serve one emulator in a new thread. */
int vtpm_emulator_start(struct vtpm_emulator *emu, struct vtpm_server *server)
{
	return vtpm_server_start(server, &emu, 1);
}

/* Count the commands received with @ordinal, or all of them. */
size_t vtpm_emulator_count(struct vtpm_emulator *emu, __u32 ordinal)
{
	size_t i, count = 0;

	pthread_mutex_lock(&emu->lock);
	for (i = 0; i < emu->nr_records; i++)
		if (ordinal == VTPM_ANY_ORDINAL ||
		    emu->records[i].ordinal == ordinal)
			count++;
	pthread_mutex_unlock(&emu->lock);
	return count;
}

/*
 * Copy record @index. Its command and response bytes stay valid until
 * vtpm_emulator_destroy().
 */
bool vtpm_emulator_get_record(struct vtpm_emulator *emu, size_t index,
			      struct vtpm_record *record)
{
	bool found;

	pthread_mutex_lock(&emu->lock);
	found = index < emu->nr_records;
	if (found)
		*record = emu->records[index];
	pthread_mutex_unlock(&emu->lock);
	return found;
}

static void deadline_after(struct timespec *deadline, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, deadline);
	deadline->tv_sec += timeout_ms / 1000;
	deadline->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline->tv_nsec >= 1000000000) {
		deadline->tv_sec++;
		deadline->tv_nsec -= 1000000000;
	}
}

/*
 * Find the @count-th record (from 1) with @ordinal; needs emu->lock.
 * Returns NULL while fewer have arrived.
 */
static struct vtpm_record *find_record(struct vtpm_emulator *emu,
				       __u32 ordinal, size_t count)
{
	size_t i, seen = 0;

	for (i = 0; i < emu->nr_records; i++) {
		if (ordinal != VTPM_ANY_ORDINAL &&
		    emu->records[i].ordinal != ordinal)
			continue;
		if (++seen == count)
			return &emu->records[i];
	}
	return NULL;
}

/**
 * vtpm_emulator_wait_reply() - wait until a command got its reply
 * @emu:        the emulator
 * @ordinal:    the command's ordinal, or %VTPM_ANY_ORDINAL
 * @count:      wait for the @count-th such command, counted from 1
 * @writes:     and until that many write() calls were made for its reply;
 *              0 waits only for the command to arrive
 * @timeout_ms: how long to wait
 *
 * Return: 0, or -ETIMEDOUT.
 */
int vtpm_emulator_wait_reply(struct vtpm_emulator *emu, __u32 ordinal,
			     size_t count, unsigned int writes, int timeout_ms)
{
	struct vtpm_record *record;
	struct timespec deadline;
	int rc = 0;

	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&emu->lock);
	for (;;) {
		record = find_record(emu, ordinal, count);
		if (record && record->writes >= writes)
			break;
		rc = pthread_cond_timedwait(&emu->changed, &emu->lock,
					    &deadline);
		if (rc == ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
		rc = 0;
	}
	pthread_mutex_unlock(&emu->lock);
	return rc;
}

/* Wait until @count commands with @ordinal (or any) have arrived. */
int vtpm_emulator_wait_command(struct vtpm_emulator *emu, __u32 ordinal,
			       size_t count, int timeout_ms)
{
	return vtpm_emulator_wait_reply(emu, ordinal, count, 0, timeout_ms);
}

/* Wait until the device is dead or the emulator closed the server fd. */
int vtpm_emulator_wait_hangup(struct vtpm_emulator *emu, int timeout_ms)
{
	struct timespec deadline;
	int rc = 0;

	deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&emu->lock);
	while (!emu->hung_up && !emu->closed) {
		if (pthread_cond_timedwait(&emu->changed, &emu->lock,
					   &deadline) == ETIMEDOUT) {
			rc = -ETIMEDOUT;
			break;
		}
	}
	pthread_mutex_unlock(&emu->lock);
	return rc;
}

bool vtpm_emulator_is_dead(struct vtpm_emulator *emu)
{
	bool dead;

	pthread_mutex_lock(&emu->lock);
	dead = emu->hung_up || emu->closed;
	pthread_mutex_unlock(&emu->lock);
	return dead;
}

static const char * const fault_names[] = {
	[VTPM_FAULT_NONE] = "none",
	[VTPM_FAULT_ERROR] = "error",
	[VTPM_FAULT_BAD_LENGTH] = "bad-length",
	[VTPM_FAULT_GARBAGE] = "garbage",
	[VTPM_FAULT_TRUNCATE] = "truncate",
	[VTPM_FAULT_SPLIT] = "split",
	[VTPM_FAULT_DELAY] = "delay",
	[VTPM_FAULT_STALL] = "stall",
	[VTPM_FAULT_HANG] = "hang",
	[VTPM_FAULT_EXIT] = "exit",
};

#define NR_FAULT_NAMES ARRAY_SIZE(fault_names)

const char *vtpm_fault_name(enum vtpm_fault_kind kind)
{
	if ((unsigned int)kind >= NR_FAULT_NAMES)
		return "unknown";
	return fault_names[kind];
}

static int parse_number(const char *text, unsigned long *value)
{
	char *end;

	errno = 0;
	*value = strtoul(text, &end, 0);
	if (errno || end == text || *end)
		return -EINVAL;
	return 0;
}

/**
 * vtpm_fault_parse() - parse a fault given on a command line
 * @spec:  KIND[,ordinal=N][,index=N][,code=N][,delay=MS], where KIND is
 *         a name from vtpm_fault_name() and numbers may be hexadecimal
 * @fault: the parsed fault; unset fields match every command
 *
 * Return: 0, or -EINVAL.
 */
int vtpm_fault_parse(const char *spec, struct vtpm_fault *fault)
{
	char *copy = strdup(spec), *field, *save = NULL;
	unsigned long value;
	unsigned int kind;
	int rc = -EINVAL;

	if (!copy)
		return -ENOMEM;
	memset(fault, 0, sizeof(*fault));
	fault->ordinal = VTPM_ANY_ORDINAL;
	fault->index = VTPM_ANY_INDEX;

	field = strtok_r(copy, ",", &save);
	if (!field)
		goto out;
	for (kind = 0; kind < NR_FAULT_NAMES; kind++)
		if (!strcmp(field, fault_names[kind]))
			break;
	if (kind == NR_FAULT_NAMES)
		goto out;
	fault->kind = kind;

	while ((field = strtok_r(NULL, ",", &save))) {
		char *equals = strchr(field, '=');

		if (!equals || parse_number(equals + 1, &value))
			goto out;
		*equals = '\0';
		if (!strcmp(field, "ordinal"))
			fault->ordinal = value;
		else if (!strcmp(field, "index"))
			fault->index = value;
		else if (!strcmp(field, "code"))
			fault->error_code = value;
		else if (!strcmp(field, "delay"))
			fault->delay_ms = value;
		else
			goto out;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}
