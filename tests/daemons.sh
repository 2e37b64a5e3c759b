# Sourced by tests/run and bench/run: installs Debian packages and starts a private containerd
# and dockerd (own state directories and sockets, --bridge=none --iptables=false, so nothing
# touches the host's network or its other daemons). Everything lives under $work and is
# removed on exit.

log() { printf '[%s +%ss] %s\n' "${0##*/}" "$SECONDS" "$*" >&2; }

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
daemon_stops=()
stop_daemons() {
  local code=$? pid m cmd
  # The caller runs under `set -euo pipefail`; cleanup must not turn a green run red
  # (grep finding no mounts exits 1).
  set +e
  # A failed run says what the servers saw before they go: a crash or a full disk in one
  # server otherwise shows up only as many tests failing to connect.
  if [ "$code" != 0 ]; then
    log "failed (exit $code); free disk: $(df -h --output=avail /tmp . | tail -n +2 | tr -s ' \n' ' ')"
    [ -f "$work/pg/server.log" ] && { log "PostgreSQL's log, last lines:"; tail -25 "$work/pg/server.log" >&2; }
  fi
  for cmd in "${daemon_stops[@]}"; do $cmd >/dev/null 2>&1 || true; done
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

# start_postgres: initialises and starts a throwaway PostgreSQL cluster under $work on a free
# port (trust auth on 127.0.0.1 only; fsync off: the cluster dies with the run) and exports
# BERTH_TEST_POSTGRES_URL. Returns 1 when it cannot (not root, or PostgreSQL is not
# installed).
start_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [ "$(id -u)" != 0 ] || [ -z "$bin" ] || ! id postgres >/dev/null 2>&1; then
    log "not root or no PostgreSQL server: PostgreSQL is not available"
    return 1
  fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # The postgres user must be able to reach its directory inside $work (mode 700 by mktemp).
  chmod 755 "$work"
  mkdir -p "$work/pg"
  chown postgres "$work/pg"
  if ! runuser -u postgres -- "$bin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 \
      --locale=C.UTF-8 >"$work/pg-init.log" 2>&1; then
    log "initdb failed:"; tail -20 "$work/pg-init.log" >&2
    return 1
  fi
  if ! runuser -u postgres -- "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w \
      -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=500 -c fsync=off" start >/dev/null; then
    log "PostgreSQL did not start:"; tail -20 "$work/pg/server.log" >&2
    return 1
  fi
  daemon_stops+=("runuser -u postgres -- $bin/pg_ctl -D $work/pg/data -m immediate stop")
  export BERTH_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  log "PostgreSQL is up on 127.0.0.1:$port"
}

# pip_install PACKAGE CHECK...: installs PACKAGE from PyPI unless the command CHECK already
# succeeds. Returns 1 when it cannot.
pip_install() {
  local package=$1 pip
  shift
  "$@" >/dev/null 2>&1 && return 0
  pip=$(command -v pip3 || command -v pip || true)
  if [ -z "$pip" ]; then
    log "no pip: cannot install $package"
    return 1
  fi
  log "installing $package from PyPI"
  # Debian's own Python refuses system-wide pip installs unless told otherwise.
  if ! "$pip" install -q "$package" >"$work/pip.log" 2>&1 \
    && ! "$pip" install -q --break-system-packages "$package" >>"$work/pip.log" 2>&1; then
    log "pip install $package failed:"; tail -5 "$work/pip.log" >&2
    return 1
  fi
  hash -r
}

# start_s3: starts moto's S3-compatible server (installed from PyPI when missing) on a free
# loopback port and exports BERTH_TEST_S3_ENDPOINT. Returns 1 when it cannot.
start_s3() {
  export PATH="$PATH:$HOME/.local/bin"
  pip_install 'moto[server]' command -v moto_server || return 1
  if ! command -v moto_server >/dev/null 2>&1; then
    log "moto_server is not available"
    return 1
  fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
  daemon_pids+=($!)
  for _ in $(seq 100); do
    if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then
      export BERTH_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
      log "S3 (moto) is up on 127.0.0.1:$port"
      return 0
    fi
    sleep 0.2
  done
  log "moto did not start:"; tail -10 "$work/moto.log" >&2
  return 1
}
