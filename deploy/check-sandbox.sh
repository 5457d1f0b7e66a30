#!/bin/bash
# Checks that microrecd keeps within the unit's SystemCallFilter= and
# MemoryDenyWriteExecute=: runs it under strace -f (every thread: the loop,
# the engine threads, libuv's pool that reloads, libmicrohttpd's admin
# thread, jemalloc's background thread), drives it through start, load,
# SIGHUP reload, admin HTTP and SIGTERM, then compares the system calls seen
# with what the unit's SystemCallFilter= lines allow (expanded by
# `systemd-analyze syscall-filter`), and looks for writable+executable
# mappings or mprotect adding PROT_EXEC.
# Needs strace, systemd-analyze and /usr/bin/python3. Usage:
#   deploy/check-sandbox.sh [BUILD_DIR]      (default: build)
set -euo pipefail
BUILD=${1:-build}
BIN=$BUILD/bin
UNIT=$(dirname "$0")/microrecd.service
for t in strace systemd-analyze; do
  command -v $t >/dev/null || { echo "check-sandbox: needs $t" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
"$BIN/microrec" model gen --preset criteo --max-rows 20000 -o "$tmp/model.safetensors" >/dev/null
port=$((20000 + RANDOM % 20000)); admin=$((port + 1))
# strace runs the server as its child and leaves SIGTERM/SIGHUP to it.
strace -f -qq -o "$tmp/trace" -ff "$BIN/microrecd" --model "$tmp/model.safetensors" \
  --listen 127.0.0.1:$port --admin 127.0.0.1:$admin --engine-threads 2 \
  >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do grep -q '^listening' "$tmp/out" 2>/dev/null && break; sleep 0.2; done
grep -q '^listening' "$tmp/out" || { cat "$tmp/err"; echo "check-sandbox: server did not start" >&2; exit 1; }
server=$(pgrep -P $pid -x microrecd)
comms=$(cat /proc/$server/task/*/comm | sort | uniq -c | tr -s ' ' | tr '\n' ',')
"$BIN/microrec-load" --server 127.0.0.1:$port --concurrency 8 --duration 2 --warmup 0 --batch 4 >/dev/null
if command -v curl >/dev/null; then curl -s 127.0.0.1:$admin/metrics >/dev/null; fi
kill -HUP $server
for _ in $(seq 100); do grep -q 'model reloaded' "$tmp/err" && break; sleep 0.2; done
"$BIN/microrec-load" --server 127.0.0.1:$port --concurrency 4 --duration 1 --warmup 0 --batch 64 >/dev/null
kill -TERM $server
wait $pid
grep -q 'msg="exit" code=0' "$tmp/err" || { cat "$tmp/err"; echo "check-sandbox: no clean exit" >&2; exit 1; }
echo "threads seen: $comms"
/usr/bin/python3 - "$tmp/trace" "$UNIT" <<'EOF'
import glob, re, subprocess, sys

def expand(group):
    out = subprocess.run(["systemd-analyze", "syscall-filter", group],
                         capture_output=True, text=True, check=True).stdout
    names = set()
    for line in out.splitlines()[1:]:
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        names |= expand(t) if t.startswith("@") else {t}
    return names

def names(items):
    out = set()
    for i in items:
        out |= expand(i) if i.startswith("@") else {i}
    return out

# SystemCallFilter= lines: an allow list, then ~deny lists taken from it.
allowed = set()
for line in open(sys.argv[2]):
    if not line.startswith("SystemCallFilter="):
        continue
    v = line.split("=", 1)[1].strip()
    if v.startswith("~"):
        allowed -= names(v[1:].split())
    else:
        allowed |= names(v.split())
used, wx = set(), []
files = glob.glob(sys.argv[1] + ".*")
for f in files:
    for line in open(f):
        m = re.match(r"\s*([a-z_0-9]+)\(", line)
        if not m:
            continue
        used.add(m.group(1))
        if m.group(1) in ("mmap", "mprotect", "pkey_mprotect") and "PROT_EXEC" in line:
            if "PROT_WRITE" in line or m.group(1) != "mmap":
                wx.append(line.strip())
bad = sorted(used - allowed)
print(f"threads traced: {len(files)}; system calls used: {len(used)}")
print("  " + " ".join(sorted(used)))
print("outside the unit's SystemCallFilter=:", bad or "none")
print("W+X mappings or mprotect(PROT_EXEC):", wx or "none")
sys.exit(1 if bad or wx else 0)
EOF
