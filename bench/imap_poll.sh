#!/usr/bin/env bash
# Times one `dmarcd fetch --once` over N generated report emails in a
# private Dovecot (Debian's dovecot-imapd, as the IMAP tests use it) and
# prints messages per second.
#
#   bench/imap_poll.sh [N] [DMARCD]    N defaults to 1000, DMARCD to build/release/dmarcd
#
# Needs root (Dovecot drops to nobody for the mailbox). Nothing outside a
# temporary folder is touched; Dovecot is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-1000}
dmarcd=${2:-build/release/dmarcd}
[[ -x "$dmarcd" ]] || { echo "imap_poll: $dmarcd not built" >&2; exit 2; }
[[ -x /usr/sbin/dovecot ]] || { echo "imap_poll: install dovecot-imapd (scripts/install-deps.sh --test)" >&2; exit 2; }

dir=$(mktemp -d -t dmarcd-imap-bench.XXXXXX)
chmod 755 "$dir"
pid=""
cleanup() {
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$dir"/{run,state,mail/bench/Maildir/{cur,new,tmp}}
cat > "$dir/dovecot.conf" <<CONF
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {
  driver = static
  args = password=secret
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$dir/mail/%u
}
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  separator = /
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $port
  }
  inet_listener imaps {
    port = 0
  }
}
service stats {
  inet_listener http {
    port = 0
  }
}
CONF

# One file per report email, straight into the Maildir, as local delivery does.
python3 bench/gen_aggregate.py --reports "$count" --records 20 --format eml \
  --out "$dir/generated" >/dev/null
i=0
for f in "$dir"/generated/*; do
  i=$((i + 1))
  mv "$f" "$dir/mail/bench/Maildir/new/$(date +%s).M${i}P$$.bench"
done
chown -R nobody:nogroup "$dir/mail"

/usr/sbin/dovecot -F -c "$dir/dovecot.conf" >"$dir/stdout.log" 2>&1 </dev/null &
pid=$!
for _ in $(seq 1 500); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.02
done

cat > "$dir/dmarcd.toml" <<TOML
[database]
path = "$dir/bench.db"

[[imap]]
name = "bench"
host = "127.0.0.1"
port = $port
tls = "none"
user = "bench"
password = "secret"
batch = 100
TOML

start=$(date +%s.%N)
"$dmarcd" fetch --once --config "$dir/dmarcd.toml"
end=$(date +%s.%N)

left=$(find "$dir/mail/bench/Maildir/new" "$dir/mail/bench/Maildir/cur" -type f | wc -l)
filed=$(find "$dir/mail/bench/Maildir/.Archive.Aggregate" -type f -path '*/cur/*' -o -type f -path '*/new/*' 2>/dev/null | grep -c Aggregate || true)
python3 - "$count" "$start" "$end" "$left" "$filed" <<'PY'
import sys
count, start, end, left, filed = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
seconds = end - start
print(f"imap_poll: {count} messages in {seconds:.2f} s: {count / seconds:.0f} messages/s "
      f"(left in INBOX {left}, in Archive/Aggregate {filed})")
PY
