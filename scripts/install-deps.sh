#!/usr/bin/env bash
# Installs the Debian packages dmarcd needs to build, run and test.
# Quick when everything is already there: it only calls apt-get for what is
# missing. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache git
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libxml2-dev libxml2-utils zlib1g-dev libzip-dev libgmime-3.0-dev
  libsqlite3-dev sqlite3 libspdlog-dev libcli11-dev libtomlplusplus-dev
  libexpected-dev libssl-dev libcurl4-openssl-dev prometheus-cpp-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  clang clang-format clang-tidy
  nodejs npm curl python3 time
)
case "${1:-}" in
  --test)
    # libclang-rt-14-dev: libFuzzer and the sanitizer runtimes for clang.
    packages+=(chromium dovecot-imapd openssl libclang-rt-14-dev) ;;
  --bench)
    # wrk: bench/dashboard_bench.sh's load; dovecot-imapd: bench/imap_poll.sh.
    packages+=(wrk dovecot-imapd openssl) ;;
  "") ;;
  *) echo "usage: $0 [--test | --bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
    # npm may come from the nodejs build itself rather than the Debian package.
    if [[ "$p" == npm ]] && command -v npm >/dev/null; then continue; fi
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
