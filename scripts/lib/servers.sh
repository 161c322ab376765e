#!/usr/bin/env bash
# shellcheck shell=bash
# Throwaway PostgreSQL 15 and MariaDB servers for Datavor's tests.
#
# Source this file (do not execute it), then:
#   trap datavor_stop_all EXIT
#   datavor_start_pg pg
#   datavor_start_mariadb mariadb MARIADB --log-bin=mariadb-bin --server-id=1
#
# Every server listens on 127.0.0.1 only, on a free port in 20000-40000, with
# a random password generated per run. All state lives under one root made by
# `mktemp -d /tmp/datavor-test.XXXXXX` (a relative DIR is placed under it; an
# absolute DIR is used as given and never deleted). datavor_stop_all stops
# every server started from this shell and removes the root, unless
# DATAVOR_KEEP_SERVERS=1 (then the stopped servers' data and logs are kept).
#
# Works under `set -euo pipefail` (the sourcing script sets it; a library
# must not change the options of an interactive shell that sources it).
# Functions return non-zero on failure.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  echo "scripts/lib/servers.sh is a library: source it from bash" >&2
  exit 1
fi

if [[ -n "${_DATAVOR_SERVERS_SH_LOADED:-}" ]]; then
  return 0
fi
_DATAVOR_SERVERS_SH_LOADED=1

DATAVOR_PG_BINDIR=${DATAVOR_PG_BINDIR:-/usr/lib/postgresql/15/bin}

# Servers started from this shell, one "kind|name|dir|pid" entry each.
_DATAVOR_STARTED=()

_datavor_log() { printf '==> %s\n' "$*" >&2; }
_datavor_err() { printf 'servers.sh: error: %s\n' "$*" >&2; }

_datavor_is_root() { [[ $(id -u) -eq 0 ]]; }

# Create the per-run root directory once (in the current shell, so that the
# variable survives; never call this in $(...)).
datavor_init_root() {
  if [[ -z "${DATAVOR_TEST_ROOT:-}" || ! -d "${DATAVOR_TEST_ROOT}" ]]; then
    DATAVOR_TEST_ROOT=$(mktemp -d /tmp/datavor-test.XXXXXX)
    # The postgres OS user must be able to traverse it (not list it).
    chmod 0711 "$DATAVOR_TEST_ROOT"
    export DATAVOR_TEST_ROOT
    _datavor_log "test server root: $DATAVOR_TEST_ROOT"
  fi
}

# Resolve DIR: relative -> under the run root; absolute -> as given.
_datavor_resolve_dir() {
  local dir=$1
  if [[ "$dir" == /* ]]; then
    printf '%s\n' "$dir"
  else
    printf '%s/%s\n' "$DATAVOR_TEST_ROOT" "$dir"
  fi
}

# 24 random alphanumeric characters (no pipes, so no SIGPIPE under pipefail).
_datavor_random_password() {
  local chars=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789
  local out="" b
  while ((${#out} < 24)); do
    for b in $(od -An -tu1 -N64 /dev/urandom); do
      ((b < 248)) || continue # 248 = 4*62: avoids modulo bias
      out+=${chars:b%62:1}
      ((${#out} == 24)) && break
    done
  done
  printf '%s\n' "$out"
}

# True if nothing is bound to 127.0.0.1:PORT (or 0.0.0.0:PORT).
_datavor_port_free() {
  local port=$1
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$port" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
  else
    # Fallback: a port nobody accepts connections on counts as free.
    ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
  fi
}

# Print a free loopback TCP port in 20000-40000.
datavor_pick_port() {
  local i port
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 20001))
    if _datavor_port_free "$port"; then
      printf '%s\n' "$port"
      return 0
    fi
  done
  _datavor_err "no free port found in 20000-40000"
  return 1
}

# True if PID is a live (non-zombie) process.
_datavor_pid_alive() {
  local pid=$1 state
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(ps -o stat= -p "$pid" 2>/dev/null || true)
  [[ -n "$state" && "$state" != Z* ]]
}

# Run a command as the postgres OS user when root (PostgreSQL refuses root).
_datavor_as_pg() {
  if _datavor_is_root; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# ---------------------------------------------------------------- PostgreSQL

# datavor_start_pg DIR [NAME]
# Starts PostgreSQL 15 with logical decoding enabled. Exports
# DATAVOR_TEST_<NAME>_{HOST,PORT,USER,PASSWORD,URL,DIR,SOCKET} (NAME=PG).
datavor_start_pg() {
  local name=${2:-PG}
  if [[ $# -lt 1 || -z "$1" ]]; then
    _datavor_err "usage: datavor_start_pg DIR [NAME]"
    return 2
  fi
  datavor_init_root
  local dir bin=$DATAVOR_PG_BINDIR
  dir=$(_datavor_resolve_dir "$1")
  if [[ -e "$dir/data/PG_VERSION" ]]; then
    _datavor_err "$dir/data already holds a cluster; use a fresh DIR"
    return 1
  fi
  mkdir -p "$dir"
  if _datavor_is_root; then
    chown postgres:postgres "$dir"
  fi
  chmod 0700 "$dir"

  local password
  password=$(_datavor_random_password)

  _datavor_log "initdb PostgreSQL ($name) in $dir/data"
  # The password file is read by initdb as the postgres user, then deleted.
  (umask 077 && printf '%s\n' "$password" >"$dir/pwfile")
  if _datavor_is_root; then chown postgres:postgres "$dir/pwfile"; fi
  if ! (cd "$dir" && _datavor_as_pg "$bin/initdb" -D "$dir/data" \
    --auth-local=trust --auth-host=scram-sha-256 -U postgres \
    --pwfile="$dir/pwfile" --encoding=UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1); then
    rm -f "$dir/pwfile"
    cat "$dir/initdb.log" >&2
    _datavor_err "initdb failed"
    return 1
  fi
  rm -f "$dir/pwfile"

  # Server settings (the port is passed on the command line).
  cat >>"$dir/data/postgresql.conf" <<EOF

# --- Datavor test server ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
EOF
  # initdb already writes a scram-sha-256 "host replication" line for
  # 127.0.0.1/32; add it only if a future initdb stops doing so.
  if ! grep -Eq '^host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+scram-sha-256' \
    "$dir/data/pg_hba.conf"; then
    printf 'host    replication     all             127.0.0.1/32            scram-sha-256\n' \
      >>"$dir/data/pg_hba.conf"
  fi

  # Start; retry with another port if someone grabbed ours meanwhile.
  local port attempt
  for attempt in 1 2 3; do
    port=$(datavor_pick_port) || return 1
    _datavor_log "starting PostgreSQL ($name) on 127.0.0.1:$port (log: $dir/pg.log)"
    if (cd "$dir" && _datavor_as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" \
      -o "-p $port" -w -t 60 start >/dev/null 2>>"$dir/pg_ctl.log" </dev/null); then
      break
    fi
    # pg_ctl may have timed out with a postmaster still running: stop it.
    (cd "$dir" && _datavor_as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop) \
      >/dev/null 2>&1 || true
    if [[ $attempt -lt 3 ]] && grep -q 'could not bind' "$dir/pg.log" 2>/dev/null; then
      _datavor_log "port $port was taken, retrying"
      continue
    fi
    cat "$dir/pg_ctl.log" "$dir/pg.log" >&2 2>/dev/null || true
    _datavor_err "PostgreSQL ($name) failed to start"
    return 1
  done

  _DATAVOR_STARTED+=("pg|$name|$dir|")
  export "DATAVOR_TEST_${name}_HOST=127.0.0.1"
  export "DATAVOR_TEST_${name}_PORT=$port"
  export "DATAVOR_TEST_${name}_USER=postgres"
  export "DATAVOR_TEST_${name}_PASSWORD=$password"
  export "DATAVOR_TEST_${name}_URL=postgresql://postgres@127.0.0.1:$port/postgres"
  export "DATAVOR_TEST_${name}_DIR=$dir"
  export "DATAVOR_TEST_${name}_SOCKET=$dir"
  _datavor_log "PostgreSQL ($name) ready: DATAVOR_TEST_${name}_URL=postgresql://postgres@127.0.0.1:$port/postgres"
}

_datavor_stop_pg() {
  local name=$1 dir=$2 pid
  if [[ ! -f "$dir/data/postmaster.pid" ]]; then
    return 0 # not running (already stopped, or died)
  fi
  _datavor_log "stopping PostgreSQL ($name)"
  if (cd "$dir" && _datavor_as_pg "$DATAVOR_PG_BINDIR/pg_ctl" -D "$dir/data" \
    -m fast -w -t 30 stop) >/dev/null 2>&1; then
    return 0
  fi
  # pg_ctl failed: kill the postmaster directly.
  pid=$(head -n1 "$dir/data/postmaster.pid" 2>/dev/null || true)
  if [[ -n "$pid" ]] && _datavor_pid_alive "$pid"; then
    kill -QUIT "$pid" 2>/dev/null || true
    sleep 1
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

# ------------------------------------------------------------------- MariaDB

# datavor_start_mariadb DIR NAME [extra mariadbd args...]
# Exports DATAVOR_TEST_<NAME>_{HOST,PORT,USER,PASSWORD,URL,SOCKET,DIR,PID,CNF}.
# _CNF is a client option file: `mariadb --defaults-file=$..._CNF` logs in.
datavor_start_mariadb() {
  if [[ $# -lt 2 || -z "$1" || -z "$2" ]]; then
    _datavor_err "usage: datavor_start_mariadb DIR NAME [mariadbd args...]"
    return 2
  fi
  local name=$2
  if [[ ! "$name" =~ ^[A-Z][A-Z0-9_]*$ ]]; then
    _datavor_err "NAME must match [A-Z][A-Z0-9_]* (got '$name')"
    return 2
  fi
  datavor_init_root
  local dir
  dir=$(_datavor_resolve_dir "$1")
  shift 2
  if [[ -e "$dir/data/mysql" ]]; then
    _datavor_err "$dir/data already holds a MariaDB data directory; use a fresh DIR"
    return 1
  fi
  mkdir -p "$dir/data"

  local -a user_opt=()
  if _datavor_is_root; then user_opt=(--user=root); fi

  _datavor_log "mariadb-install-db ($name) in $dir/data"
  if ! mariadb-install-db --no-defaults --datadir="$dir/data" \
    --auth-root-authentication-method=normal "${user_opt[@]}" \
    --skip-test-db --skip-name-resolve >"$dir/install-db.log" 2>&1 </dev/null; then
    cat "$dir/install-db.log" >&2
    _datavor_err "mariadb-install-db failed"
    return 1
  fi

  local sock="$dir/mysqld.sock" pidfile="$dir/mysqld.pid" port pid attempt i up
  for attempt in 1 2 3; do
    port=$(datavor_pick_port) || return 1
    _datavor_log "starting MariaDB ($name) on 127.0.0.1:$port (log: $dir/err.log)"
    : >"$dir/err.log"
    mariadbd --no-defaults "${user_opt[@]}" --datadir="$dir/data" \
      --socket="$sock" --port="$port" --bind-address=127.0.0.1 \
      --pid-file="$pidfile" --log-error="$dir/err.log" --skip-name-resolve \
      --innodb-buffer-pool-size=64M "$@" \
      </dev/null >>"$dir/stdout.log" 2>&1 &
    pid=$!
    # Wait up to 60 s for the socket to answer.
    up=0
    for ((i = 0; i < 120; i++)); do
      if mariadb-admin --no-defaults --socket="$sock" --user=root \
        --connect-timeout=2 ping >/dev/null 2>&1; then
        up=1
        break
      fi
      _datavor_pid_alive "$pid" || break
      sleep 0.5
    done
    [[ $up -eq 1 ]] && break
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ $attempt -lt 3 ]] && grep -q 'Address already in use' "$dir/err.log"; then
      _datavor_log "port $port was taken, retrying"
      continue
    fi
    cat "$dir/err.log" "$dir/stdout.log" >&2 2>/dev/null || true
    if ((i >= 120)); then
      _datavor_err "MariaDB ($name) did not answer ping within 60 s"
    else
      _datavor_err "MariaDB ($name) exited during startup"
    fi
    return 1
  done
  _DATAVOR_STARTED+=("mariadb|$name|$dir|$pid")

  # Random root password, for the socket and for TCP from 127.0.0.1.
  local password
  password=$(_datavor_random_password)
  if ! mariadb --no-defaults --socket="$sock" --user=root <<EOF; then
ALTER USER root@localhost IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS root@'127.0.0.1' IDENTIFIED BY '$password';
ALTER USER root@'127.0.0.1' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO root@'127.0.0.1' WITH GRANT OPTION;
-- Drop the other accounts mariadb-install-db makes (anonymous, root@'::1',
-- root@<hostname>), which have no password.
DELETE FROM mysql.global_priv
  WHERE User = '' OR (User = 'root' AND Host NOT IN ('localhost', '127.0.0.1'));
FLUSH PRIVILEGES;
EOF
    _datavor_err "could not set the MariaDB ($name) root password"
    return 1
  fi
  # Client option file (also used to shut the server down).
  (umask 077 && cat >"$dir/client.cnf" <<EOF
[client]
user=root
password=$password
host=127.0.0.1
port=$port
EOF
  )

  export "DATAVOR_TEST_${name}_HOST=127.0.0.1"
  export "DATAVOR_TEST_${name}_PORT=$port"
  export "DATAVOR_TEST_${name}_USER=root"
  export "DATAVOR_TEST_${name}_PASSWORD=$password"
  export "DATAVOR_TEST_${name}_URL=mariadb://root@127.0.0.1:$port/mysql"
  export "DATAVOR_TEST_${name}_SOCKET=$sock"
  export "DATAVOR_TEST_${name}_DIR=$dir"
  export "DATAVOR_TEST_${name}_PID=$pid"
  export "DATAVOR_TEST_${name}_CNF=$dir/client.cnf"
  _datavor_log "MariaDB ($name) ready: DATAVOR_TEST_${name}_URL=mariadb://root@127.0.0.1:$port/mysql"
}

_datavor_stop_mariadb() {
  local name=$1 dir=$2 pid=$3 i
  _datavor_pid_alive "$pid" || return 0
  _datavor_log "stopping MariaDB ($name)"
  if [[ -f "$dir/client.cnf" ]]; then
    mariadb-admin --defaults-file="$dir/client.cnf" --socket="$dir/mysqld.sock" \
      --protocol=socket --connect-timeout=5 shutdown >/dev/null 2>&1 || true
  fi
  if _datavor_pid_alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
  for ((i = 0; i < 60; i++)); do
    _datavor_pid_alive "$pid" || break
    sleep 0.5
  done
  if _datavor_pid_alive "$pid"; then
    _datavor_log "MariaDB ($name) did not stop in 30 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true # reap it if it is our child
}

# --------------------------------------------------------------------- stop

# Stop every server started from this shell and remove the run root (unless
# DATAVOR_KEEP_SERVERS=1). Safe to call more than once; always returns 0.
datavor_stop_all() {
  local entry kind name dir pid i
  for ((i = ${#_DATAVOR_STARTED[@]} - 1; i >= 0; i--)); do
    entry=${_DATAVOR_STARTED[i]}
    IFS='|' read -r kind name dir pid <<<"$entry"
    case "$kind" in
      pg) _datavor_stop_pg "$name" "$dir" || true ;;
      mariadb) _datavor_stop_mariadb "$name" "$dir" "$pid" || true ;;
    esac
  done
  _DATAVOR_STARTED=()
  if [[ -n "${DATAVOR_TEST_ROOT:-}" && -d "$DATAVOR_TEST_ROOT" ]]; then
    if [[ "${DATAVOR_KEEP_SERVERS:-0}" == 1 ]]; then
      _datavor_log "keeping $DATAVOR_TEST_ROOT (DATAVOR_KEEP_SERVERS=1)"
    else
      _datavor_log "removing $DATAVOR_TEST_ROOT"
      rm -rf -- "$DATAVOR_TEST_ROOT"
    fi
  fi
  unset DATAVOR_TEST_ROOT
  return 0
}
