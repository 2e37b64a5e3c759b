# Sourced by tests/run and bench/run: installs Debian packages and starts a private containerd
# and dockerd (own state directories and sockets, --bridge=none --iptables=false, so nothing
# touches the host's network or its other daemons). Everything lives under $work and is
# removed on exit.

log() { printf '[%s] %s\n' "${0##*/}" "$*" >&2; }

# install_packages PKG...: installs what is missing (as root, with apt).
install_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing packages (tests needing them are skipped outside CI): ${missing[*]}"
  fi
}

work=$(mktemp -d /tmp/berth-daemons.XXXXXX)
daemon_pids=()
stop_daemons() {
  local code=$? pid m
  for pid in "${daemon_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${daemon_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  # Container layers may still be mounted under the daemons' roots.
  grep -o " $work[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work" 2>/dev/null || true
  exit "$code"
}
trap stop_daemons EXIT INT TERM

# start_daemons: starts containerd and dockerd, exports BERTH_TEST_DOCKER_HOST,
# BERTH_TEST_DOCKER and BERTH_TEST_CONTAINERD. Returns 1 when it cannot (not root, or the
# daemons are not installed).
start_daemons() {
  if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null || ! command -v containerd >/dev/null; then
    log "not root or no dockerd/containerd: docker and containerd are not available"
    return 1
  fi
  cat > "$work/containerd.toml" <<TOML
version = 2
root = "$work/containerd/root"
state = "$work/containerd/state"
[grpc]
  address = "$work/containerd.sock"
[ttrpc]
  address = "$work/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
TOML
  containerd --config "$work/containerd.toml" >"$work/containerd.log" 2>&1 &
  daemon_pids+=($!)
  for _ in $(seq 100); do [ -S "$work/containerd.sock" ] && break; sleep 0.1; done
  dockerd --data-root "$work/docker" --exec-root "$work/docker-exec" --pidfile "$work/docker.pid" \
    -H "unix://$work/docker.sock" --containerd "$work/containerd.sock" \
    --bridge=none --iptables=false --ip-masq=false >"$work/dockerd.log" 2>&1 &
  daemon_pids+=($!)
  export BERTH_TEST_DOCKER_HOST="unix://$work/docker.sock"
  export BERTH_TEST_DOCKER=/usr/bin/docker  # Debian's client, matching Debian's dockerd
  export BERTH_TEST_CONTAINERD="$work/containerd.sock"
  for _ in $(seq 120); do
    if DOCKER_HOST="$BERTH_TEST_DOCKER_HOST" "$BERTH_TEST_DOCKER" info >/dev/null 2>&1; then
      log "dockerd and containerd are up under $work"
      return 0
    fi
    sleep 0.5
  done
  log "dockerd did not start:"
  tail -30 "$work/dockerd.log" >&2
  exit 1
}
