// SPDX-License-Identifier: GPL-2.0
/*
 * vTPM proxy driver: TPM chips served by a TPM emulator in userspace.
 *
 * VTPM_PROXY_IOC_NEW_DEV on /dev/vtpmx creates a pair: a TPM chip that the
 * TPM core registers as /dev/tpmN (and /dev/tpmrmN for TPM 2.0), and an
 * anonymous-inode file, the server fd, that the ioctl returns. Each command
 * that the TPM core sends to the chip is read from the server fd, and the
 * emulator writes the response back to it.
 *
 * Registration runs in a work item per device, because the TPM core's
 * start-up commands need the emulator to answer them, and the emulator
 * only gets the server fd once the ioctl has returned.
 *
 * Completion is event driven. The chip carries TPM_CHIP_FLAG_IRQ, so the
 * TPM core does not poll the chip's status every millisecond but calls our
 * recv callback right after send. Our send callback sleeps until the
 * emulator's write() has stored the response, the device dies, or the
 * command's duration runs out.
 *
 * Function prefixes name the caller: vtpm_proxy_tpm_* are the TPM core's
 * chip callbacks (called with the chip's tpm_mutex held, one command at a
 * time), vtpm_proxy_fops_* are the server fd's file operations and
 * vtpmx_* serve the control device.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/tpm.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/vtpm_proxy.h>

#include "vtpm_proxy_compat.h"

/**
 * enum vtpm_proxy_life - stages in the life of a proxy device
 * @VTPM_PROXY_REGISTERING: the registration work is running the TPM
 *                          core's start-up commands
 * @VTPM_PROXY_LIVE:        /dev/tpmN exists and serves clients
 * @VTPM_PROXY_FAILED:      registration failed; the device stays dead
 *                          until the server fd is closed
 * @VTPM_PROXY_CLOSED:      the server fd was released
 *
 * The stage only moves forward. FAILED and CLOSED are both "dead": every
 * server fd call then fails with %EPIPE and every command with %EPIPE.
 */
enum vtpm_proxy_life {
	VTPM_PROXY_REGISTERING,
	VTPM_PROXY_LIVE,
	VTPM_PROXY_FAILED,
	VTPM_PROXY_CLOSED,
};

/**
 * enum vtpm_proxy_slot - contents of the single command/response buffer
 * @VTPM_PROXY_SLOT_EMPTY:    no command in flight
 * @VTPM_PROXY_SLOT_COMMAND:  a command waits for the server to read it
 * @VTPM_PROXY_SLOT_AWAITING: the server read the command; a response is
 *                            awaited
 * @VTPM_PROXY_SLOT_RESPONSE: the response is stored, for recv to take
 */
enum vtpm_proxy_slot {
	VTPM_PROXY_SLOT_EMPTY,
	VTPM_PROXY_SLOT_COMMAND,
	VTPM_PROXY_SLOT_AWAITING,
	VTPM_PROXY_SLOT_RESPONSE,
};

/**
 * struct vtpm_proxy_dev - a proxy device: one chip and its server fd
 * @chip:           the TPM chip; we hold one reference from creation until
 *                  the server fd is released
 * @register_work:  runs tpm_chip_register(), which waits for the emulator
 * @registered:     tpm_chip_register() succeeded; written by the
 *                  registration work and read after it has finished
 * @driver_command: the command in flight is the driver's own
 *                  SET_LOCALITY; needs no lock because the TPM core sends
 *                  one command at a time (under the chip's tpm_mutex once
 *                  the chip is registered)
 * @lock:           protects @life, @slot, @drop_late_response, @read_time,
 *                  @length and @buffer
 * @life:           stage of the device's life
 * @slot:           state of @buffer
 * @drop_late_response: the last command timed out after the server had
 *                  read it, so its response may still come and must be
 *                  dropped; cleared when the server reads a new command
 * @read_time:      jiffies when the server read the command in flight
 * @length:         bytes of @buffer in use
 * @buffer:         the command, then its response;
 *                  %VTPM_PROXY_TPM_BUFSIZE bytes
 * @server_wait:    the server's readers and pollers wait here
 * @chip_wait:      the TPM core's send callback waits here for the
 *                  response
 *
 * @life and @slot change only under @lock. The wait conditions read them
 * without the lock, with READ_ONCE(), because a condition must not sleep;
 * each waker changes them under @lock before waking, and the woken side
 * decides under @lock again.
 */
struct vtpm_proxy_dev {
	struct tpm_chip *chip;
	struct work_struct register_work;
	bool registered;
	bool driver_command;

	/* protects life, slot, drop_late_response, read_time, length, buffer */
	struct mutex lock;
	enum vtpm_proxy_life life;
	enum vtpm_proxy_slot slot;
	bool drop_late_response;
	unsigned long read_time;
	size_t length;
	u8 *buffer;

	wait_queue_head_t server_wait;
	wait_queue_head_t chip_wait;
};

static struct workqueue_struct *vtpm_proxy_wq;

static bool vtpm_proxy_is_dead(const struct vtpm_proxy_dev *proxy)
{
	return READ_ONCE(proxy->life) >= VTPM_PROXY_FAILED;
}

static bool vtpm_proxy_has_response(const struct vtpm_proxy_dev *proxy)
{
	return READ_ONCE(proxy->slot) == VTPM_PROXY_SLOT_RESPONSE;
}

static bool vtpm_proxy_has_command(const struct vtpm_proxy_dev *proxy)
{
	return READ_ONCE(proxy->slot) == VTPM_PROXY_SLOT_COMMAND;
}

static void vtpm_proxy_set_slot(struct vtpm_proxy_dev *proxy,
				enum vtpm_proxy_slot slot)
{
	lockdep_assert_held(&proxy->lock);
	WRITE_ONCE(proxy->slot, slot);
}

static void vtpm_proxy_set_life(struct vtpm_proxy_dev *proxy,
				enum vtpm_proxy_life life)
{
	lockdep_assert_held(&proxy->lock);
	WRITE_ONCE(proxy->life, life);
}

static u32 vtpm_proxy_ordinal(const u8 *buf, size_t count)
{
	const struct tpm_header *header = (const struct tpm_header *)buf;

	if (count < TPM_HEADER_SIZE)
		return 0;
	return be32_to_cpu(header->ordinal);
}

/*
 * The TPM core's chip callbacks.
 */

/*
 * Sleep until the response is stored or the device dies, or until the
 * command's duration has passed since the server read it, or, if the
 * server never reads it, since it was queued. Counting from the read keeps
 * a command that waited behind a slow, already timed-out one from timing
 * out before the emulator even saw it. The server's read records the time
 * instead of waking us, so the command path has one wake-up.
 */
static void vtpm_proxy_wait_for_response(struct vtpm_proxy_dev *proxy,
					 unsigned long duration)
{
	unsigned long deadline = jiffies + duration;

	for (;;) {
		long remaining = deadline - jiffies;

		if (remaining > 0 &&
		    wait_event_idle_timeout(proxy->chip_wait,
					    vtpm_proxy_has_response(proxy) ||
					    vtpm_proxy_is_dead(proxy),
					    remaining))
			return;

		mutex_lock(&proxy->lock);
		if (proxy->slot != VTPM_PROXY_SLOT_AWAITING ||
		    time_after_eq(deadline, proxy->read_time + duration)) {
			mutex_unlock(&proxy->lock);
			return;
		}
		deadline = proxy->read_time + duration;
		mutex_unlock(&proxy->lock);
	}
}

/*
 * Queue the command for the server and sleep until its response is stored.
 * Errors: -EPIPE once the device is dead (the TPM core logs nothing for
 * it), -EFAULT for a client's SET_LOCALITY, -ETIME when the command's
 * duration runs out (see vtpm_proxy_wait_for_response()). The sleep
 * ignores signals, as a hardware TPM's does: the emulator may already be
 * executing the command, and the resource manager's view of the TPM must
 * stay in step with it. TASK_IDLE keeps a long TPM command out of the hung
 * task detector.
 */
static int vtpm_proxy_tpm_send(VTPM_PROXY_SEND_PARAMS)
{
	struct vtpm_proxy_dev *proxy = dev_get_drvdata(&chip->dev);
	u32 ordinal = vtpm_proxy_ordinal(buf, count);
	unsigned long duration;
	int rc;

	if (count > VTPM_PROXY_TPM_BUFSIZE)
		return -EIO;

	/* Only the driver may change the locality. */
	if (ordinal == TPM2_CC_SET_LOCALITY && !proxy->driver_command)
		return -EFAULT;

	duration = tpm_calc_ordinal_duration(chip, ordinal);

	mutex_lock(&proxy->lock);
	if (vtpm_proxy_is_dead(proxy)) {
		mutex_unlock(&proxy->lock);
		return -EPIPE;
	}
	memcpy(proxy->buffer, buf, count);
	proxy->length = count;
	vtpm_proxy_set_slot(proxy, VTPM_PROXY_SLOT_COMMAND);
	mutex_unlock(&proxy->lock);
	wake_up_interruptible_poll(&proxy->server_wait, EPOLLIN | EPOLLRDNORM);

	vtpm_proxy_wait_for_response(proxy, duration);

	mutex_lock(&proxy->lock);
	if (proxy->slot == VTPM_PROXY_SLOT_RESPONSE) {
		mutex_unlock(&proxy->lock);
		return 0;
	}

	if (vtpm_proxy_is_dead(proxy)) {
		vtpm_proxy_set_slot(proxy, VTPM_PROXY_SLOT_EMPTY);
		rc = -EPIPE;
	} else {
		/*
		 * Timed out. A command still queued is withdrawn; a command
		 * the server has read may still get its response, which
		 * write() then drops.
		 */
		if (proxy->slot == VTPM_PROXY_SLOT_AWAITING)
			proxy->drop_late_response = true;
		vtpm_proxy_set_slot(proxy, VTPM_PROXY_SLOT_EMPTY);
		rc = -ETIME;
	}
	mutex_unlock(&proxy->lock);

	/* The server's poll bits changed: the command is gone. */
	wake_up_interruptible(&proxy->server_wait);
	return rc;
}

/* Hand the stored response to the TPM core and empty the slot. */
static int vtpm_proxy_tpm_recv(struct tpm_chip *chip, u8 *buf, size_t count)
{
	struct vtpm_proxy_dev *proxy = dev_get_drvdata(&chip->dev);
	int rc;

	mutex_lock(&proxy->lock);
	if (proxy->slot != VTPM_PROXY_SLOT_RESPONSE) {
		rc = vtpm_proxy_is_dead(proxy) ? -EPIPE : -EIO;
	} else if (proxy->length > count) {
		vtpm_proxy_set_slot(proxy, VTPM_PROXY_SLOT_EMPTY);
		rc = -EIO;
	} else {
		memcpy(buf, proxy->buffer, proxy->length);
		rc = proxy->length;
		vtpm_proxy_set_slot(proxy, VTPM_PROXY_SLOT_EMPTY);
	}
	mutex_unlock(&proxy->lock);

	return rc;
}

/*
 * The TPM 1.2 sysfs file "cancel" calls this. It takes the chip's
 * tpm_mutex first, so it never runs while a command is in flight, and
 * there is nothing to cancel.
 */
static void vtpm_proxy_tpm_cancel(struct tpm_chip *chip)
{
}

/*
 * Send SET_LOCALITY to the emulator. The TPM core calls this before the
 * first command and keeps the locality, because we have no
 * relinquish_locality callback, so the emulator sees SET_LOCALITY once, as
 * its first command. Returns the locality or -errno; an error response
 * becomes -EIO, which aborts registration.
 */
static int vtpm_proxy_tpm_request_locality(struct tpm_chip *chip,
					   int locality)
{
	struct vtpm_proxy_dev *proxy = dev_get_drvdata(&chip->dev);
	struct tpm_buf buf;
	ssize_t rc;

	if (chip->flags & TPM_CHIP_FLAG_TPM2)
		rc = tpm_buf_init(&buf, TPM2_ST_SESSIONS, TPM2_CC_SET_LOCALITY);
	else
		rc = tpm_buf_init(&buf, VTPM_PROXY_TPM_TAG_RQU_COMMAND,
				  TPM_ORD_SET_LOCALITY);
	if (rc)
		return rc;
	tpm_buf_append_u8(&buf, locality);

	proxy->driver_command = true;
	rc = tpm_transmit_cmd(chip, &buf, 0, NULL);
	proxy->driver_command = false;
	tpm_buf_destroy(&buf);

	if (rc < 0)
		return rc;
	if (rc > 0)
		return -EIO;
	return locality;
}

/*
 * With TPM_CHIP_FLAG_IRQ set the TPM core never polls the chip, so the
 * status, req_complete_* and req_canceled members are not needed.
 */
static const struct tpm_class_ops vtpm_proxy_tpm_ops = {
	.flags = TPM_OPS_AUTO_STARTUP,
	.send = vtpm_proxy_tpm_send,
	.recv = vtpm_proxy_tpm_recv,
	.cancel = vtpm_proxy_tpm_cancel,
	.request_locality = vtpm_proxy_tpm_request_locality,
};

/*
 * The server fd's file operations.
 */

/**
 * vtpm_proxy_fops_read() - take the queued command
 * @file:  the server fd
 * @ubuf:  where to copy the command
 * @count: size of @ubuf
 * @off:   unused; the server fd is a stream
 *
 * Return: the length of the command, which the driver then considers read
 * (a response is awaited); %-EIO if @count is smaller than the command,
 * which stays queued; %-EAGAIN with %O_NONBLOCK when nothing is queued;
 * %-ERESTARTSYS when a signal interrupts the wait; %-EPIPE once the device
 * is dead; %-EFAULT for a bad @ubuf.
 */
static ssize_t vtpm_proxy_fops_read(struct file *file, char __user *ubuf,
				    size_t count, loff_t *off)
{
	struct vtpm_proxy_dev *proxy = file->private_data;
	ssize_t rc;

	mutex_lock(&proxy->lock);
	while (proxy->slot != VTPM_PROXY_SLOT_COMMAND) {
		if (vtpm_proxy_is_dead(proxy)) {
			mutex_unlock(&proxy->lock);
			return -EPIPE;
		}
		mutex_unlock(&proxy->lock);

		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		if (wait_event_interruptible(proxy->server_wait,
					     vtpm_proxy_has_command(proxy) ||
					     vtpm_proxy_is_dead(proxy)))
			return -ERESTARTSYS;

		mutex_lock(&proxy->lock);
	}

	if (count < proxy->length) {
		rc = -EIO;
	} else if (copy_to_user(ubuf, proxy->buffer, proxy->length)) {
		rc = -EFAULT;
	} else {
		rc = proxy->length;
		proxy->read_time = jiffies;
		proxy->drop_late_response = false;
		vtpm_proxy_set_slot(proxy, VTPM_PROXY_SLOT_AWAITING);
	}
	mutex_unlock(&proxy->lock);

	if (rc > 0)
		wake_up_interruptible_poll(&proxy->server_wait,
					   EPOLLOUT | EPOLLWRNORM);
	return rc;
}

/**
 * vtpm_proxy_fops_write() - store the response to the command read last
 * @file:  the server fd
 * @ubuf:  the whole response; the driver does not join partial writes
 * @count: its length, at most 4096 bytes
 * @off:   unused; the server fd is a stream
 *
 * A response to a command that already timed out is accepted and dropped.
 *
 * Return: @count when the response was accepted; %-EIO when no response is
 * awaited or @count exceeds 4096; %-EPIPE once the device is dead;
 * %-EFAULT for a bad @ubuf, after which the response is still awaited.
 */
static ssize_t vtpm_proxy_fops_write(struct file *file,
				     const char __user *ubuf,
				     size_t count, loff_t *off)
{
	struct vtpm_proxy_dev *proxy = file->private_data;
	bool stored = false;
	ssize_t rc;

	mutex_lock(&proxy->lock);
	if (vtpm_proxy_is_dead(proxy)) {
		rc = -EPIPE;
	} else if (count > VTPM_PROXY_TPM_BUFSIZE) {
		rc = -EIO;
	} else if (proxy->slot == VTPM_PROXY_SLOT_AWAITING) {
		if (copy_from_user(proxy->buffer, ubuf, count)) {
			rc = -EFAULT;
		} else {
			proxy->length = count;
			vtpm_proxy_set_slot(proxy, VTPM_PROXY_SLOT_RESPONSE);
			stored = true;
			rc = count;
		}
	} else if (proxy->drop_late_response) {
		proxy->drop_late_response = false;
		rc = count;
	} else {
		rc = -EIO;
	}
	mutex_unlock(&proxy->lock);

	if (stored)
		wake_up(&proxy->chip_wait);
	return rc;
}

/**
 * vtpm_proxy_fops_poll() - report what the server can do now
 * @file: the server fd
 * @wait: poll table
 *
 * Return: %EPOLLIN | %EPOLLRDNORM while a command is queued,
 * %EPOLLOUT | %EPOLLWRNORM while a response is awaited, %EPOLLHUP once
 * the device is dead, otherwise 0.
 */
static __poll_t vtpm_proxy_fops_poll(struct file *file,
				     struct poll_table_struct *wait)
{
	struct vtpm_proxy_dev *proxy = file->private_data;
	__poll_t mask = 0;

	poll_wait(file, &proxy->server_wait, wait);

	mutex_lock(&proxy->lock);
	if (vtpm_proxy_is_dead(proxy))
		mask = EPOLLHUP;
	else if (proxy->slot == VTPM_PROXY_SLOT_COMMAND)
		mask = EPOLLIN | EPOLLRDNORM;
	else if (proxy->slot == VTPM_PROXY_SLOT_AWAITING)
		mask = EPOLLOUT | EPOLLWRNORM;
	mutex_unlock(&proxy->lock);

	return mask;
}

/* The server fd is a stream: there is no position to seek to. */
static loff_t vtpm_proxy_fops_llseek(struct file *file, loff_t offset,
				     int whence)
{
	return -ESPIPE;
}

/*
 * Clear the ops of a registered chip before tpm_chip_unregister(), which
 * skips ops it finds cleared. The TPM core frees the chip's devres memory,
 * the command attribute table among it, in device_del() before it takes
 * ops_sem, so a /dev/tpmrmN command still finishing would read freed
 * memory. Taking ops_sem here waits for that command instead.
 */
static void vtpm_proxy_disable_ops(struct tpm_chip *chip)
{
	down_write(&chip->ops_sem);
	chip->ops = NULL;
	up_write(&chip->ops_sem);
}

/*
 * Tear the device down: fail the command in flight, wake everyone, stop
 * the registration work, then remove the chip and drop our reference
 * to it, in the reverse order of creation. Clients that still hold
 * /dev/tpmN keep the chip's memory alive. The chip's ops are cleared,
 * so their commands fail with -EPIPE and never reach us.
 */
static void vtpm_proxy_destroy(struct vtpm_proxy_dev *proxy)
{
	mutex_lock(&proxy->lock);
	vtpm_proxy_set_life(proxy, VTPM_PROXY_CLOSED);
	mutex_unlock(&proxy->lock);

	wake_up_all(&proxy->chip_wait);
	wake_up_interruptible_poll(&proxy->server_wait, EPOLLHUP);

	/*
	 * A registration that has not started never will; one that is
	 * running fails fast now that the device is closed.
	 */
	cancel_work_sync(&proxy->register_work);
	if (proxy->registered) {
		vtpm_proxy_disable_ops(proxy->chip);
		tpm_chip_unregister(proxy->chip);
	}

	dev_set_drvdata(&proxy->chip->dev, NULL);
	put_device(&proxy->chip->dev);
	kfree(proxy->buffer);
	kfree(proxy);
}

/**
 * vtpm_proxy_fops_release() - destroy the device when the server closes
 * @inode: the anonymous inode
 * @file:  the server fd
 *
 * Removes /dev/tpmN and /dev/tpmrmN; a client blocked in a command fails
 * at once with %EPIPE.
 *
 * Return: 0.
 */
static int vtpm_proxy_fops_release(struct inode *inode, struct file *file)
{
	vtpm_proxy_destroy(file->private_data);
	return 0;
}

static const struct file_operations vtpm_proxy_fops = {
	.owner = THIS_MODULE,
	.llseek = vtpm_proxy_fops_llseek,
	.read = vtpm_proxy_fops_read,
	.write = vtpm_proxy_fops_write,
	.poll = vtpm_proxy_fops_poll,
	.release = vtpm_proxy_fops_release,
};

/*
 * Registration.
 */

static void vtpm_proxy_register_work(struct work_struct *work)
{
	struct vtpm_proxy_dev *proxy =
		container_of(work, struct vtpm_proxy_dev, register_work);
	bool failed = false;
	int rc;

	rc = tpm_chip_register(proxy->chip);

	mutex_lock(&proxy->lock);
	proxy->registered = !rc;
	if (proxy->life == VTPM_PROXY_REGISTERING) {
		failed = rc != 0;
		vtpm_proxy_set_life(proxy, rc ? VTPM_PROXY_FAILED :
						VTPM_PROXY_LIVE);
	}
	mutex_unlock(&proxy->lock);

	/* A failure after the server closed is expected: log nothing. */
	if (failed) {
		dev_warn_ratelimited(&proxy->chip->dev,
				     "registration failed (%d): the emulator did not complete the TPM start-up commands\n",
				     rc);
		wake_up_interruptible_poll(&proxy->server_wait, EPOLLHUP);
	}
}

static struct vtpm_proxy_dev *vtpm_proxy_create(u32 flags)
{
	struct vtpm_proxy_dev *proxy;
	struct tpm_chip *chip;

	proxy = kzalloc(sizeof(*proxy), GFP_KERNEL);
	if (!proxy)
		return ERR_PTR(-ENOMEM);

	proxy->buffer = kmalloc(VTPM_PROXY_TPM_BUFSIZE, GFP_KERNEL);
	if (!proxy->buffer) {
		kfree(proxy);
		return ERR_PTR(-ENOMEM);
	}

	mutex_init(&proxy->lock);
	init_waitqueue_head(&proxy->server_wait);
	init_waitqueue_head(&proxy->chip_wait);
	INIT_WORK(&proxy->register_work, vtpm_proxy_register_work);

	chip = tpm_chip_alloc(NULL, &vtpm_proxy_tpm_ops);
	if (IS_ERR(chip)) {
		kfree(proxy->buffer);
		kfree(proxy);
		return ERR_CAST(chip);
	}
	proxy->chip = chip;
	dev_set_drvdata(&chip->dev, proxy);

	chip->flags |= TPM_CHIP_FLAG_IRQ;
	if (flags & VTPM_PROXY_FLAG_TPM2)
		chip->flags |= TPM_CHIP_FLAG_TPM2;

	return proxy;
}

/*
 * The control device.
 */

/*
 * Create the device and return its server fd. The order cannot leak:
 * check, allocate, reserve the fd, make the file, publish the result to
 * userspace, start registration, and install the fd last.
 */
static long vtpmx_ioc_new_dev(struct vtpm_proxy_new_dev __user *uarg)
{
	struct vtpm_proxy_new_dev req;
	struct vtpm_proxy_dev *proxy;
	struct file *file;
	int fd, rc;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.flags & ~VTPM_PROXY_FLAG_TPM2)
		return -EOPNOTSUPP;

	proxy = vtpm_proxy_create(req.flags);
	if (IS_ERR(proxy))
		return PTR_ERR(proxy);

	fd = get_unused_fd_flags(O_RDWR);
	if (fd < 0) {
		rc = fd;
		goto err_destroy;
	}

	file = anon_inode_getfile("[vtpms]", &vtpm_proxy_fops, proxy, O_RDWR);
	if (IS_ERR(file)) {
		rc = PTR_ERR(file);
		goto err_put_fd;
	}

	req.fd = fd;
	req.tpm_num = proxy->chip->dev_num;
	req.major = MAJOR(proxy->chip->dev.devt);
	req.minor = MINOR(proxy->chip->dev.devt);
	if (copy_to_user(uarg, &req, sizeof(req))) {
		rc = -EFAULT;
		goto err_put_file;
	}

	queue_work(vtpm_proxy_wq, &proxy->register_work);
	fd_install(fd, file);
	return 0;

err_put_file:
	/* The file owns the device now; its release destroys it. */
	put_unused_fd(fd);
	fput(file);
	return rc;
err_put_fd:
	put_unused_fd(fd);
err_destroy:
	vtpm_proxy_destroy(proxy);
	return rc;
}

/**
 * vtpmx_ioctl() - serve an ioctl on /dev/vtpmx
 * @file: the open control device
 * @cmd:  %VTPM_PROXY_IOC_NEW_DEV
 * @arg:  pointer to &struct vtpm_proxy_new_dev
 *
 * %VTPM_PROXY_IOC_NEW_DEV checks, in this order: %CAP_SYS_ADMIN (else
 * %-EPERM), a readable argument (else %-EFAULT) and the flags (an unknown
 * bit gives %-EOPNOTSUPP). It then creates the chip and the server fd,
 * writes the result back (on %-EFAULT the half-made device is destroyed)
 * and starts the chip's registration, which completes once the emulator
 * answers the start-up commands.
 *
 * Return: 0 on success, -errno otherwise; %-ENOTTY for an unknown @cmd.
 */
static long vtpmx_ioctl(struct file *file, unsigned int cmd,
			unsigned long arg)
{
	switch (cmd) {
	case VTPM_PROXY_IOC_NEW_DEV:
		return vtpmx_ioc_new_dev((void __user *)arg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations vtpmx_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = vtpmx_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice vtpmx_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vtpmx",
	.fops = &vtpmx_fops,
};

static int __init vtpm_proxy_init(void)
{
	int rc;

	/*
	 * Per-CPU, so that a registration usually runs on its emulator's CPU.
	 * A worker that waits for its emulator lets the next one start, up
	 * to the default limit of 256 work items per CPU.
	 */
	vtpm_proxy_wq = alloc_workqueue("vtpm_proxy", 0, 0);
	if (!vtpm_proxy_wq)
		return -ENOMEM;

	rc = misc_register(&vtpmx_miscdev);
	if (rc) {
		destroy_workqueue(vtpm_proxy_wq);
		return rc;
	}

	return 0;
}

static void __exit vtpm_proxy_exit(void)
{
	misc_deregister(&vtpmx_miscdev);
	destroy_workqueue(vtpm_proxy_wq);
}

module_init(vtpm_proxy_init);
module_exit(vtpm_proxy_exit);

MODULE_DESCRIPTION("vTPM proxy: TPM chips served by an emulator in userspace");
MODULE_LICENSE("GPL");
