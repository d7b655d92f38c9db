# SPDX-License-Identifier: GPL-2.0
#
# Shell helpers shared by our scripts: messages and installing Debian
# packages on demand. Source it; do not run it.
#
# With NO_INSTALL=1 in the environment, need_packages only lists what is
# missing and fails instead of installing.

info() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# need_packages PKG... installs the Debian packages that are not installed.
need_packages() {
	local pkg missing=()

	for pkg in "$@"; do
		dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null |
			grep -qx installed || missing+=("$pkg")
	done
	[ ${#missing[@]} -gt 0 ] || return 0

	if [ "${NO_INSTALL:-0}" = 1 ]; then
		die "missing Debian packages: ${missing[*]} (NO_INSTALL=1 is set, so nothing was installed; run: apt-get install ${missing[*]})"
	fi
	[ "$(id -u)" = 0 ] ||
		die "missing Debian packages: ${missing[*]}; run as root to install them, or: apt-get install ${missing[*]}"

	info "installing Debian packages: ${missing[*]}"
	# The package lists may be empty on a fresh machine.
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
		apt-get update -q >/dev/null ||
			die "apt-get update failed"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}" ||
			die "could not install: ${missing[*]}"
	fi
}
