# SPDX-License-Identifier: GPL-2.0
#
# The kernel log lines that fail a guest run: oops, BUG, WARNING,
# refcount and list corruption, KASAN, lockdep, debugobjects and kmemleak
# reports, hung tasks and panics. Source it; do not run it. Used by
# scripts/run-in-guest.sh on the host and scripts/stress-in-guest.sh in
# the guest.
#
# The lockdep and kmemleak patterns match their reports only: a debug
# kernel also logs "RCU lockdep checking is enabled" and "kmemleak: Kernel
# memory leak detector initialized" at every boot.
# shellcheck disable=SC2034
KERNEL_LOG_PROBLEMS='Oops|BUG:|WARNING:|refcount_t:|list_add corruption|list_del corruption|KASAN:|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|DEBUG_LOCKS_WARN_ON|ODEBUG:|suspected memory leak|memory leak detector disabled|hung_task|blocked for more than|Kernel panic|general protection fault'
