#!/bin/bash
# Installs the Debian packages cairn needs to build, test, demo and benchmark,
# only those missing. Usage: scripts/install-deps.sh [build|check|demo|bench]...
set -euo pipefail

build_pkgs=(gcc make meson ninja-build pkg-config libssl-dev libjansson-dev libsqlite3-dev
	libarchive-dev libcmocka-dev libseccomp-dev libcap-dev libfyaml-dev)
check_pkgs=(bats clang libclang-rt-14-dev python3 zstd xz-utils gzip tar busybox-static
	sqlite3 iproute2 util-linux)
demo_pkgs=(busybox-static zstd python3 curl)
bench_pkgs=(ostree hyperfine)

want=()
for set in "${@:-build}"; do
	case "$set" in
	build) want+=("${build_pkgs[@]}") ;;
	check) want+=("${build_pkgs[@]}" "${check_pkgs[@]}") ;;
	demo) want+=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
	bench) want+=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
	*) echo "install-deps: unknown set '$set'" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/cairn-apt.log 2>&1; then
	apt-get update -q >>/tmp/cairn-apt.log 2>&1
	apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/cairn-apt.log 2>&1 || {
		tail -20 /tmp/cairn-apt.log >&2
		exit 1
	}
fi
