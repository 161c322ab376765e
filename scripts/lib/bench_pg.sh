# shellcheck shell=bash
# `scripts/bench pg`: Datavor's PostgreSQL CDC against the tools a user could pick
# instead (../shared/BASELINES.md), in one run on one machine and one workload.
# Sourced by scripts/bench (which sets -euo pipefail); call bench_pg_main ARGS.
#
# Workload: t(id bigint primary key, a int, b text, c timestamptz), ROWS inserts in
# 1,000-row transactions, then ROWS updates (a = a + 1, c = now()) in 1,000-row
# transactions, from one psql session. Two throwaway PostgreSQL 15 servers
# (servers.sh): the source (synchronous_commit = on, so commits are streamable at
# once; fsync stays off) and a second one for the peers' targets.
#
# Phases (each on a fresh table t; autovacuum off on t everywhere):
#   backlog  consumers that exist before the load but read after it: pg_recvlogical
#            (pgoutput, --endpos), Datavor into JSON lines (/dev/null), SQLite and
#            PostgreSQL (stopped, then resumed), native logical replication (the
#            subscription disabled, then enabled). Measures read/apply capacity.
#   live     the consumer runs while the load runs (the issue's end-to-end figure):
#            Datavor -> SQLite, Datavor -> PostgreSQL, native logical replication,
#            pgcopydb follow (inserts only; Debian's pgcopydb 0.10 if installable).
#   latency  pgbench -R inserting one row per transaction; Datavor's status line
#            (p50/p99 over the last minute) and native (subscriber column default
#            clock_timestamp() minus the row's clock_timestamp() on the source).
#   snapshot 2*ROWS rows: Datavor --snapshot only (SQLite, PostgreSQL) vs
#            pg_dump -t t | psql and COPY through a pipe.
#
# Options: --rows N (default 1000000, a multiple of 1000), --snapshot-rows N
# (default 2*ROWS), --latency-seconds S (default 20), --rates "1000 10000",
# --skip PHASE[,PHASE] (backlog, live, pgcopydb, latency, snapshot),
# --profile (only: datavor → SQLite under valgrind --tool=callgrind, ROWS=100000 inserts
# + updates while streaming, then a --snapshot only of 2*ROWS rows; prints the top
# inclusive and self-cost functions, saves the callgrind files under build/bench/).

_bp_log() { printf '==> %s\n' "$*" >&2; }
_bp_now() { date +%s.%N; }
_bp_sub() { python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.3f}')" "$1" "$2"; }
_bp_div() { python3 -c "import sys; b=float(sys.argv[2]); print(f'{float(sys.argv[1]) / b:.1f}' if b > 0 else 'null')" "$1" "$2"; }

# Results: one "key<TAB>value" line each; rendered as JSON and Markdown at the end.
_bp_put() { printf '%s\t%s\n' "$1" "$2" >>"$BP_RESULTS"; }

_bp_src() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DATAVOR_TEST_PG_PORT" -U postgres -d postgres "$@"; }
_bp_dst() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DATAVOR_TEST_DST_PORT" -U postgres -d "${BP_DSTDB:-postgres}" "$@"; }
_bp_lsn() { _bp_src -At -c "SELECT pg_current_wal_lsn()"; }

# CPU seconds (user + system) a live process has used; 0 if it is gone. No fork.
_bp_hz=$(getconf CLK_TCK)
_bp_cpu() {
  local pid=$1 line t
  local -a f
  if [[ -n "$pid" ]] && read -r line 2>/dev/null <"/proc/$pid/stat"; then
    read -r -a f <<<"${line##*) }"
    t=$((f[11] + f[12]))
    printf '%d.%02d\n' $((t / _bp_hz)) $((t % _bp_hz * 100 / _bp_hz))
  else
    echo 0
  fi
}
# The walsender serving a slot (empty if none).
_bp_walsender() { _bp_src -At -c "SELECT coalesce(active_pid::text, '') FROM pg_replication_slots WHERE slot_name = '$1'"; }

_bp_table_ddl='CREATE TABLE t (id bigint PRIMARY KEY, a int, b text, c timestamptz) WITH (autovacuum_enabled = off)'

# Fresh source table, no publications, no idle slots.
_bp_reset_src() {
  _bp_src <<SQL >/dev/null
DROP TABLE IF EXISTS t;
DO \$\$ DECLARE p text; BEGIN
  FOR p IN SELECT pubname FROM pg_publication LOOP EXECUTE format('DROP PUBLICATION %I', p); END LOOP;
END \$\$;
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active;
DROP SEQUENCE IF EXISTS t_id;
$_bp_table_ddl;
CREATE SEQUENCE t_id;
CHECKPOINT;
SQL
}
# Fresh target table in database ${BP_DSTDB:-postgres} of the second server ($1: DDL).
_bp_reset_dst() {
  _bp_dst -c "DROP TABLE IF EXISTS t" -c "${1:-$_bp_table_ddl}" -c "DROP TABLE IF EXISTS _datavor_offsets" -c "CHECKPOINT" >/dev/null
}

# Runs SQL file $1 on the source; sets BP_T0, BP_T1 (epoch seconds) and BP_L (LSN after).
_bp_load() {
  BP_L0=$(_bp_lsn)
  BP_T0=$(_bp_now)
  _bp_src -f "$1" >/dev/null
  BP_T1=$(_bp_now)
  BP_L=$(_bp_lsn)
}

# Poll until a condition holds; prints the epoch time it first held. See poll.py.
_bp_wait() { python3 "$BP_WORK/poll.py" "$@"; }

_bp_write_helpers() {
  cat >"$BP_WORK/poll.py" <<'PY'
# poll.py KIND TARGET QUERY EXPECTED TIMEOUT
#   KIND sqlite: TARGET is a file; pg: TARGET is port[/db] on 127.0.0.1 (psql, PGPASSFILE);
#   offset: TARGET is a JSON-lines .offset file (QUERY ignored; the value is its LSN as an integer).
#   EXPECTED "=V" (string equality) or ">=V" (integers; LSNs as X/Y are converted).
# Prints time.time() when the condition first holds; exit 1 on timeout.
import os, sqlite3, subprocess, sys, time
kind, target, query, expected, timeout = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
def lsn(v):
    v = str(v).strip()
    if '/' in v:
        hi, lo = v.split('/')
        return (int(hi, 16) << 32) + int(lo, 16)
    return int(v or 0)
def ok(v):
    if expected.startswith('>='):
        return v is not None and v != '' and lsn(v) >= lsn(expected[2:])
    return str(v) == expected[1:]
deadline = time.time() + timeout
if kind == 'pg':
    port, _, db = target.partition('/')
    p = subprocess.Popen(['psql', '-X', '-At', '-h', '127.0.0.1', '-p', port, '-U', 'postgres', '-d', db or 'postgres'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    def get():  # an error (a table not there yet) prints nothing before the marker
        p.stdin.write(query.rstrip(';') + ';\n\\echo __poll_end__\n'); p.stdin.flush()
        v = None
        while True:
            line = p.stdout.readline()
            if not line or line.strip() == '__poll_end__': return v
            v = line.strip()
elif kind == 'sqlite':
    db = None
    def get():
        global db
        if db is None:
            if not os.path.exists(target): return None
            db = sqlite3.connect(target, timeout=10)
        try:
            r = db.execute(query).fetchone()
        except sqlite3.OperationalError:
            return None  # the table is not there yet
        return None if r is None else ('' if r[0] is None else str(r[0]))
else:
    def get():
        try:
            with open(target) as f: return f.read().split()[1]
        except (OSError, IndexError):
            return None
v = None
while True:
    v = get()
    if ok(v):
        print(f'{time.time():.6f}')
        sys.exit(0)
    if time.time() > deadline:
        print(f'poll: timed out; last value {v!r}, expected {expected}', file=sys.stderr)
        sys.exit(1)
    time.sleep(0.01)
PY
}

# ------------------------------------------------------------------ Datavor

# _bp_dv_start NAME TARGET-URL [--snapshot MODE]: runs `datavor stream run` in the
# background (log $BP_WORK/dv-NAME.log); returns once it is streaming. Sets BP_DV_PID.
_bp_dv_start() {
  local name=$1 target=$2 mode=${3:-never} log=$BP_WORK/dv-$1.log i
  "$BP_DATAVOR" stream run --source "$BP_SRC_URL" --target "$target" --tables public.t --name "$name" \
    --snapshot "$mode" --home "$BP_WORK/home-$name" 2>>"$log" &
  BP_DV_PID=$!
  _BP_PIDS+=("$BP_DV_PID")
  [[ $mode == only ]] && return 0
  for ((i = 0; i < 600; i++)); do
    grep -q ': streaming |' "$log" 2>/dev/null && return 0
    if ! kill -0 "$BP_DV_PID" 2>/dev/null; then
      cat "$log" >&2
      return 1
    fi
    sleep 0.05
  done
  _bp_log "datavor stream $name did not start streaming"
  return 1
}
# Stop a stream with SIGTERM. A datavor that has finished its work but does not exit
# (seen once: the status ticker re-arms itself when it fires as the run completes, and
# SIGTERM is then ignored) is killed after 10 s and counted in meta.datavor_hung_exits.
_bp_dv_stop() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    _bp_log "datavor (pid $pid) did not exit 10 s after SIGTERM: killing it"
    BP_HUNG=$((BP_HUNG + 1))
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
# Wait for a `--snapshot only` run to end. Sets BP_EXIT_T (its exit, or the first
# final status line if it does not exit) and BP_EXIT_CPU (its CPU seconds, sampled).
_bp_dv_wait_exit() {
  local pid=$1 name=$2 stopped_at='' now
  BP_EXIT_CPU=0
  while kill -0 "$pid" 2>/dev/null; do
    now=$(_bp_now)
    BP_EXIT_CPU=$(_bp_cpu "$pid")
    if [[ -z "$stopped_at" ]] && grep -qE ': (stopped|failed) \|' "$BP_WORK/dv-$name.log"; then stopped_at=$now; fi
    if [[ -n "$stopped_at" ]] && python3 -c "import sys; sys.exit(0 if $now - $stopped_at > 5 else 1)"; then
      _bp_dv_stop "$pid"
      BP_EXIT_T=$stopped_at
      return 0
    fi
    sleep 0.05
  done
  BP_EXIT_T=$(_bp_now)
  wait "$pid" 2>/dev/null || _bp_log "datavor stream $name exited with an error"
}
# The backend serving Datavor's PostgreSQL target (database dv on the second server).
_bp_dv_backend() {
  BP_DSTDB=dv _bp_dst -At -c "SELECT coalesce(max(pid)::text, '') FROM pg_stat_activity WHERE datname = 'dv' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
}
# Last status line of a stream's log.
_bp_dv_status() { grep -E '^stream .*: [a-z]+ \|' "$BP_WORK/dv-$1.log" | tail -n 1; }

# The conditions "the target holds the whole load" for one target kind.
#   _bp_caught_up KIND TARGET PHASE TIMEOUT   (KIND sqlite|pg|offset; PHASE ins|upd)
# For offset (JSON lines), BP_EXACT_LSN must hold the exact end LSN of the load's last
# transaction (taken from the SQLite target's _datavor_offsets in the same phase).
_bp_caught_up() {
  local kind=$1 target=$2 phase=$3 timeout=$4 q expect
  if [[ $kind == offset ]]; then
    _bp_wait offset "$target" - ">=$BP_EXACT_LSN" "$timeout"
    return
  fi
  if [[ $phase == ins ]]; then
    q="SELECT coalesce(max(id), 0) FROM t"
    expect="=$BP_ROWS"
  else
    q="SELECT a FROM t WHERE id = $BP_ROWS"
    expect="=$((BP_ROWS % 1000 + 1))"
  fi
  _bp_wait "$kind" "$target" "$q" "$expect" "$timeout"
}

# Record one measured run: KEY ROWS T0 T1 TDONE [CPU-consumer] [CPU-walsender].
_bp_record() {
  local key=$1 rows=$2 t0=$3 t1=$4 tdone=$5
  local secs
  secs=$(_bp_sub "$tdone" "$t0")
  _bp_put "$key.rows" "$rows"
  _bp_put "$key.seconds" "$secs"
  _bp_put "$key.rows_per_s" "$(_bp_div "$rows" "$secs")"
  if [[ "$t1" != - ]]; then _bp_put "$key.lag_after_source_s" "$(_bp_sub "$tdone" "$t1")"; fi
  if [[ -n "${6:-}" ]]; then _bp_put "$key.consumer_cpu_s" "$6"; fi
  if [[ -n "${7:-}" ]]; then _bp_put "$key.walsender_cpu_s" "$7"; fi
  _bp_log "$key: $rows rows in $secs s ($(_bp_div "$rows" "$secs") rows/s)"
}

# ------------------------------------------------------------------ phases

# Before each phase: drop the previous phases' files and flush dirty pages, so that
# writeback of earlier phases (GBs of WAL with fsync off, SQLite files, pgcopydb's
# JSON) does not throttle the next one's writes.
_bp_settle() {
  rm -rf "$BP_WORK"/*.db "$BP_WORK"/*.db-wal "$BP_WORK"/*.db-shm "$BP_WORK/pgcopydb"
  _bp_flush
}
# Between runs inside a phase: checkpoint both servers and flush dirty pages.
_bp_flush() {
  _bp_src -c "CHECKPOINT" >/dev/null
  _bp_dst -c "CHECKPOINT" >/dev/null
  sync
  sleep 0.5
}

_bp_phase_backlog() {
  _bp_log "backlog phase: consumers read the load after it finished"
  _bp_reset_src
  _bp_src -c "CREATE PUBLICATION bench_pub FOR TABLE t" >/dev/null
  BP_DSTDB=postgres _bp_reset_dst
  BP_DSTDB=dv _bp_reset_dst
  ln -sf /dev/null "$BP_WORK/null.jsonl"
  rm -f "$BP_WORK/null.jsonl.offset" "$BP_WORK/backlog.db"*

  # Datavor streams: start each once, apply one warm-up transaction (so each target
  # has a committed position to resume from), stop them. Their slots keep the WAL.
  local -a names=(bl_sqlite) targets=("sqlite:$BP_WORK/backlog.db") kinds=(sqlite) waits=("$BP_WORK/backlog.db")
  if ((BP_HAS_JSONL)); then names+=(bl_jsonl); targets+=("jsonl:$BP_WORK/null.jsonl"); kinds+=(offset); waits+=("$BP_WORK/null.jsonl.offset"); fi
  if ((BP_HAS_PGSINK)); then names+=(bl_pg); targets+=("$BP_DST_DV_URL"); kinds+=(pg); waits+=("$DATAVOR_TEST_DST_PORT/dv"); fi
  local -a pids=()
  local i
  for i in "${!names[@]}"; do
    _bp_dv_start "${names[i]}" "${targets[i]}"
    pids+=("$BP_DV_PID")
  done
  _bp_src -c "BEGIN" -c "INSERT INTO t VALUES (0, 0, 'warm-up', now())" -c "DELETE FROM t WHERE id = 0" -c "COMMIT" >/dev/null
  for i in "${!names[@]}"; do
    case ${kinds[i]} in
      sqlite) _bp_wait sqlite "${waits[i]}" "SELECT coalesce(max(position_int), 0) FROM _datavor_offsets" ">=1" 60 >/dev/null ;;
      offset) _bp_wait offset "${waits[i]}" - ">=1" 60 >/dev/null ;;
      pg) _bp_wait pg "${waits[i]}" "SELECT count(*) FROM _datavor_offsets" "=1" 60 >/dev/null ;;
    esac
    _bp_dv_stop "${pids[i]}"
  done

  # pg_recvlogical's slot, and a native subscription created then disabled.
  pg_recvlogical -h 127.0.0.1 -p "$DATAVOR_TEST_PG_PORT" -U postgres -d postgres --slot bench_recv \
    --create-slot -P pgoutput >/dev/null
  _bp_dst -c "CREATE SUBSCRIPTION bench_bl CONNECTION '$BP_SUBCONN' PUBLICATION bench_pub WITH (copy_data = false)" >/dev/null
  _bp_wait pg "$DATAVOR_TEST_PG_PORT" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_bl' AND active" "=1" 60 >/dev/null
  _bp_dst -c "ALTER SUBSCRIPTION bench_bl DISABLE" >/dev/null
  _bp_wait pg "$DATAVOR_TEST_PG_PORT" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_bl' AND active" "=0" 60 >/dev/null

  local phase file t0 tdone cpu ws ws_cpu wal secs rl_pid timeout=$((60 + BP_ROWS / 4000))
  for phase in ins upd; do
    file=$BP_WORK/$phase.sql
    if [[ $phase == upd ]]; then
      # A resumed slot decodes from its restart_lsn, which may still lie before the
      # insert WAL (it moves only past a running-xacts record after the confirmed
      # position). Move every idle slot past it, so that each reader decodes just the
      # update WAL, as a reader that never stopped would.
      _bp_src -c "CHECKPOINT" -c "SELECT count(pg_replication_slot_advance(slot_name, pg_current_wal_lsn())) FROM pg_replication_slots WHERE NOT active" \
        -c "CHECKPOINT" -c "SELECT count(pg_replication_slot_advance(slot_name, pg_current_wal_lsn())) FROM pg_replication_slots WHERE NOT active" >/dev/null
    fi
    _bp_log "backlog $phase: loading $BP_ROWS rows with no consumer running"
    _bp_load "$file"
    _bp_record "source_load.$phase" "$BP_ROWS" "$BP_T0" - "$BP_T1"
    local l0=$BP_L0 l1=$BP_L
    wal=$(_bp_src -At -c "SELECT pg_wal_lsn_diff('$l1', '$l0')")
    _bp_put "wal_bytes.$phase" "$wal"
    _bp_put "backlog.slot_wal_to_decode_mb.$phase" "$(_bp_src -At -c "SELECT string_agg(slot_name || '=' || round(pg_wal_lsn_diff('$l1', restart_lsn) / 1e6), ' ' ORDER BY slot_name) FROM pg_replication_slots")"

    # pg_recvlogical (pgoutput) to /dev/null, up to the LSN after the load.
    _bp_flush
    t0=$(_bp_now)
    pg_recvlogical -h 127.0.0.1 -p "$DATAVOR_TEST_PG_PORT" -U postgres -d postgres --slot bench_recv --start \
      -o proto_version=1 -o publication_names=bench_pub -f /dev/null --endpos="$l1" --no-loop &
    rl_pid=$!
    ws=''
    ws_cpu=0
    while kill -0 "$rl_pid" 2>/dev/null; do
      [[ -n "$ws" ]] || ws=$(_bp_walsender bench_recv)
      cpu=$(_bp_cpu "$rl_pid")
      if [[ -n "$ws" && -r /proc/$ws/stat ]]; then ws_cpu=$(_bp_cpu "$ws"); fi
      sleep 0.1
    done
    wait "$rl_pid"
    tdone=$(_bp_now)
    _bp_record "backlog.pg_recvlogical.$phase" "$BP_ROWS" "$t0" - "$tdone" "$cpu" "$ws_cpu"
    secs=$(_bp_sub "$tdone" "$t0")
    _bp_put "backlog.pg_recvlogical.$phase.wal_mb_per_s" "$(python3 -c "print(f'{$wal / 1e6 / $secs:.1f}')")"

    # Datavor, resumed: SQLite first (its _datavor_offsets gives the exact end LSN of
    # the load's last transaction, which the JSON-lines target is then waited for).
    for i in "${!names[@]}"; do
      _bp_flush
      t0=$(_bp_now)
      _bp_dv_start "${names[i]}" "${targets[i]}"
      if tdone=$(_bp_caught_up "${kinds[i]}" "${waits[i]}" "$phase" "$timeout"); then
        ws=$(_bp_walsender "datavor_${names[i]}")
        cpu=$(_bp_cpu "$BP_DV_PID")
        ws_cpu=$(_bp_cpu "$ws")
        _bp_record "backlog.datavor_${names[i]#bl_}.$phase" "$BP_ROWS" "$t0" - "$tdone" "$cpu" "$ws_cpu"
        if [[ ${kinds[i]} == pg ]]; then
          _bp_put "backlog.datavor_pg.$phase.target_backend_cpu_s" "$(_bp_cpu "$(_bp_dv_backend)")"
        fi
      else
        _bp_put "backlog.datavor_${names[i]#bl_}.$phase.error" "timeout"
        _bp_dv_status "${names[i]}" >&2
      fi
      if [[ ${kinds[i]} == sqlite ]]; then
        BP_EXACT_LSN=$(sqlite3 "$BP_WORK/backlog.db" "SELECT max(position_int) FROM _datavor_offsets")
      fi
      _bp_dv_stop "$BP_DV_PID"
    done

    # Native logical replication: enable the subscription, wait, disable it.
    _bp_flush
    t0=$(_bp_now)
    _bp_dst -c "ALTER SUBSCRIPTION bench_bl ENABLE" >/dev/null
    if tdone=$(_bp_caught_up pg "$DATAVOR_TEST_DST_PORT" "$phase" "$timeout"); then
      ws=$(_bp_walsender bench_bl)
      _bp_record "backlog.native.$phase" "$BP_ROWS" "$t0" - "$tdone" \
        "$(_bp_cpu "$(_bp_dst -At -c "SELECT coalesce(max(pid)::text, '') FROM pg_stat_subscription WHERE subname = 'bench_bl'")")" \
        "$(_bp_cpu "$ws")"
    else
      _bp_put "backlog.native.$phase.error" "timeout"
    fi
    _bp_dst -c "ALTER SUBSCRIPTION bench_bl DISABLE" >/dev/null
    _bp_wait pg "$DATAVOR_TEST_PG_PORT" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_bl' AND active" "=0" 60 >/dev/null
  done
  _bp_dst -c "DROP SUBSCRIPTION bench_bl" >/dev/null
}

# One live run of a consumer already streaming: inserts then updates.
#   _bp_live_run KEY KIND TARGET CONSUMER-PID SLOT
_bp_live_run() {
  local key=$1 kind=$2 target=$3 pid=$4 slot=$5 phase tdone c0 w0 b0 ws backend='' timeout=$((60 + BP_ROWS / 4000))
  ws=$(_bp_walsender "$slot")
  if [[ $key == datavor_pg ]]; then backend=$(_bp_dv_backend); fi
  for phase in ins upd; do
    _bp_flush
    c0=$(_bp_cpu "$pid")
    w0=$(_bp_cpu "$ws")
    b0=$(_bp_cpu "$backend")
    _bp_load "$BP_WORK/$phase.sql"
    if tdone=$(_bp_caught_up "$kind" "$target" "$phase" "$timeout"); then
      _bp_record "live.$key.$phase" "$BP_ROWS" "$BP_T0" "$BP_T1" "$tdone" \
        "$(_bp_sub "$(_bp_cpu "$pid")" "$c0")" "$(_bp_sub "$(_bp_cpu "$ws")" "$w0")"
      _bp_put "live.$key.$phase.source_seconds" "$(_bp_sub "$BP_T1" "$BP_T0")"
      if [[ -n "$backend" ]]; then _bp_put "live.$key.$phase.target_backend_cpu_s" "$(_bp_sub "$(_bp_cpu "$backend")" "$b0")"; fi
    else
      _bp_put "live.$key.$phase.error" "timeout"
      return 1
    fi
  done
}

_bp_phase_live() {
  _bp_log "live phase: consumers run while the load runs"
  # Datavor -> SQLite
  _bp_reset_src
  rm -f "$BP_WORK/live.db"*
  _bp_dv_start bench "sqlite:$BP_WORK/live.db"
  _bp_live_run datavor_sqlite sqlite "$BP_WORK/live.db" "$BP_DV_PID" datavor_bench || _bp_dv_status bench >&2
  _bp_put "live.datavor_sqlite.status" "$(_bp_dv_status bench)"
  _bp_dv_stop "$BP_DV_PID"

  # Datavor -> PostgreSQL (second server, database dv)
  if ((BP_HAS_PGSINK)); then
    _bp_reset_src
    BP_DSTDB=dv _bp_reset_dst
    _bp_dv_start bench_pg "$BP_DST_DV_URL"
    _bp_live_run datavor_pg pg "$DATAVOR_TEST_DST_PORT/dv" "$BP_DV_PID" datavor_bench_pg || _bp_dv_status bench_pg >&2
    _bp_dv_stop "$BP_DV_PID"
  fi

  # Native logical replication
  _bp_reset_src
  _bp_src -c "CREATE PUBLICATION bench_pub FOR TABLE t" >/dev/null
  BP_DSTDB=postgres _bp_reset_dst
  _bp_dst -c "CREATE SUBSCRIPTION bench_live CONNECTION '$BP_SUBCONN' PUBLICATION bench_pub WITH (copy_data = false)" >/dev/null
  _bp_wait pg "$DATAVOR_TEST_PG_PORT" "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'bench_live' AND state = 'streaming'" "=1" 60 >/dev/null
  local apply_pid
  apply_pid=$(_bp_dst -At -c "SELECT coalesce(max(pid)::text, '') FROM pg_stat_subscription WHERE subname = 'bench_live'")
  _bp_live_run native pg "$DATAVOR_TEST_DST_PORT" "$apply_pid" bench_live || true
  _bp_dst -c "DROP SUBSCRIPTION bench_live" >/dev/null
}

_bp_phase_pgcopydb() {
  if ! command -v pgcopydb >/dev/null; then
    local cand
    cand=$(apt-cache policy pgcopydb 2>/dev/null | awk '/Candidate:/ { print $2 }')
    if [[ -n "$cand" && "$cand" != "(none)" ]]; then
      _bp_log "installing pgcopydb $cand and postgresql-15-wal2json (Debian packages)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgcopydb postgresql-15-wal2json >/dev/null 2>&1 || true
    fi
  fi
  if ! command -v pgcopydb >/dev/null || [[ ! -f /usr/lib/postgresql/15/lib/wal2json.so ]]; then
    _bp_log "pgcopydb (or wal2json) is not installable here: skipped"
    _bp_put "live.pgcopydb.error" "not installable"
    return 0
  fi
  _bp_put "live.pgcopydb.version" "$(pgcopydb --version 2>/dev/null | awk '/^pgcopydb version/ { print $3 }')"
  _bp_log "pgcopydb follow (wal2json), inserts only"
  _bp_reset_src
  _bp_src -c "DROP SCHEMA IF EXISTS pgcopydb CASCADE" >/dev/null
  BP_DSTDB=postgres _bp_reset_dst
  _bp_dst -At -c "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname = 'pgcopydb'" >/dev/null
  local dir=$BP_WORK/pgcopydb log=$BP_WORK/pgcopydb.log pid i first='' tdone='' n timeout=$((120 + BP_ROWS / 5000))
  rm -rf "$dir"
  # Its own process group, so that all its workers can be stopped together.
  setsid pgcopydb follow --source "$BP_SRC_URL" --target "$DATAVOR_TEST_DST_URL" --dir "$dir" \
    --create-slot --not-consistent >"$log" 2>&1 &
  pid=$!
  _BP_PGIDS+=("$pid")
  for ((i = 0; i < 100; i++)); do
    grep -q 'Created logical replication origin' "$log" && break
    sleep 0.2
  done
  pgcopydb stream sentinel set apply --source "$BP_SRC_URL" >/dev/null 2>&1
  # The applier polls the sentinel every 10 s; start the load once it applies.
  for ((i = 0; i < 150; i++)); do
    grep -q 'sentinel has enabled applying' "$log" && break
    sleep 0.2
  done
  _bp_load "$BP_WORK/ins.sql"
  pgcopydb stream sentinel set endpos --source "$BP_SRC_URL" "$BP_L" >/dev/null 2>&1
  local deadline
  deadline=$(python3 -c "print(int($BP_T0) + $timeout)")
  while kill -0 "$pid" 2>/dev/null && (($(date +%s) < deadline)); do
    if [[ -z "$first" ]] && [[ $(_bp_dst -At -c "SELECT count(*) > 0 FROM t") == t ]]; then first=$(_bp_now); fi
    sleep 0.5
  done
  tdone=$(_bp_now)
  if kill -0 "$pid" 2>/dev/null; then
    _bp_put "live.pgcopydb.ins.error" "did not reach the end position within ${timeout} s"
    kill -TERM -- "-$pid" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  n=$(_bp_dst -At -c "SELECT count(*) FROM t")
  _bp_record "live.pgcopydb.ins" "$n" "$BP_T0" "$BP_T1" "$tdone"
  _bp_put "live.pgcopydb.ins.rows_expected" "$BP_ROWS"
  _bp_put "live.pgcopydb.ins.rows_lost" "$((BP_ROWS - n))"
  [[ -n "$first" ]] && _bp_put "live.pgcopydb.ins.first_row_after_s" "$(_bp_sub "$first" "$BP_T0")"
  _bp_src -c "SELECT pg_drop_replication_slot('pgcopydb')" -c "DROP SCHEMA IF EXISTS pgcopydb CASCADE" >/dev/null 2>&1 || true
}

_bp_phase_latency() {
  local rate secs=$BP_LAT_SECONDS key line p50 p99 tps
  cat >"$BP_WORK/lat.sql" <<'SQL'
INSERT INTO t (id, a, b, c) VALUES (nextval('t_id'), 1, md5(random()::text), clock_timestamp());
SQL
  for rate in $BP_RATES; do
    key=latency.r$rate
    # Datavor -> SQLite: a fresh stream, so its one-minute window holds only this run.
    _bp_reset_src
    rm -f "$BP_WORK/lat.db"*
    _bp_log "latency: datavor -> SQLite at $rate rows/s for $secs s"
    _bp_dv_start "lat$rate" "sqlite:$BP_WORK/lat.db"
    /usr/lib/postgresql/15/bin/pgbench -n -h 127.0.0.1 -p "$DATAVOR_TEST_PG_PORT" -U postgres -c 2 -j 2 \
      -R "$rate" -T "$secs" -f "$BP_WORK/lat.sql" postgres >"$BP_WORK/pgbench-dv-$rate.log" 2>&1
    sleep 2
    line=$(_bp_dv_status "lat$rate")
    _bp_dv_stop "$BP_DV_PID"
    p50=$(sed -E 's/.*latency p50 ([0-9.]+) ms.*/\1/' <<<"$line")
    p99=$(sed -E 's/.*p99 ([0-9.]+) ms.*/\1/' <<<"$line")
    tps=$(awk '/^tps = / { print $3; exit }' "$BP_WORK/pgbench-dv-$rate.log")
    _bp_put "$key.datavor_sqlite.p50_ms" "$p50"
    _bp_put "$key.datavor_sqlite.p99_ms" "$p99"
    _bp_put "$key.datavor_sqlite.source_tps" "${tps:-null}"
    _bp_put "$key.datavor_sqlite.rows_source" "$(_bp_src -At -c "SELECT count(*) FROM t")"
    _bp_put "$key.datavor_sqlite.rows_target" "$(sqlite3 "$BP_WORK/lat.db" "SELECT count(*) FROM t")"
    _bp_put "$key.datavor_sqlite.status" "$line"
    _bp_log "latency datavor at $rate/s: p50 $p50 ms p99 $p99 ms (source $tps tps)"

    # Native: the subscriber's extra column takes clock_timestamp() when the apply
    # worker inserts the row; the source row carries clock_timestamp() at its insert.
    _bp_reset_src
    _bp_src -c "CREATE PUBLICATION bench_pub FOR TABLE t" >/dev/null
    BP_DSTDB=postgres _bp_reset_dst "$_bp_table_ddl; ALTER TABLE t ADD COLUMN applied_at timestamptz DEFAULT clock_timestamp()"
    _bp_dst -c "CREATE SUBSCRIPTION bench_lat CONNECTION '$BP_SUBCONN' PUBLICATION bench_pub WITH (copy_data = false)" >/dev/null
    _bp_wait pg "$DATAVOR_TEST_PG_PORT" "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'bench_lat' AND state = 'streaming'" "=1" 60 >/dev/null
    _bp_log "latency: native logical replication at $rate rows/s for $secs s"
    /usr/lib/postgresql/15/bin/pgbench -n -h 127.0.0.1 -p "$DATAVOR_TEST_PG_PORT" -U postgres -c 2 -j 2 \
      -R "$rate" -T "$secs" -f "$BP_WORK/lat.sql" postgres >"$BP_WORK/pgbench-native-$rate.log" 2>&1
    local n
    n=$(_bp_src -At -c "SELECT count(*) FROM t")
    _bp_wait pg "$DATAVOR_TEST_DST_PORT" "SELECT count(*) FROM t" "=$n" 60 >/dev/null || true
    line=$(_bp_dst -At -F ' ' -c "SELECT round((percentile_disc(0.5) WITHIN GROUP (ORDER BY x))::numeric, 3), round((percentile_disc(0.99) WITHIN GROUP (ORDER BY x))::numeric, 3), count(*) FROM (SELECT extract(epoch FROM applied_at - c) * 1000 AS x FROM t) s")
    tps=$(awk '/^tps = / { print $3; exit }' "$BP_WORK/pgbench-native-$rate.log")
    read -r p50 p99 n <<<"$line"
    _bp_put "$key.native.p50_ms" "$p50"
    _bp_put "$key.native.p99_ms" "$p99"
    _bp_put "$key.native.source_tps" "${tps:-null}"
    _bp_put "$key.native.rows_target" "$n"
    _bp_log "latency native at $rate/s: p50 $p50 ms p99 $p99 ms (source $tps tps)"
    _bp_dst -c "DROP SUBSCRIPTION bench_lat" >/dev/null
  done
}

_bp_phase_snapshot() {
  local n=$BP_SNAP_ROWS t0 tdone
  _bp_log "snapshot phase: $n rows"
  _bp_reset_src
  _bp_src -c "INSERT INTO t SELECT g, g % 1000, md5(g::text), now() FROM generate_series(1, $n) g" \
    -c "VACUUM (ANALYZE) t" >/dev/null
  _bp_settle
  _bp_put "snapshot.table_bytes" "$(_bp_src -At -c "SELECT pg_total_relation_size('t')")"

  rm -f "$BP_WORK/snap.db"*
  t0=$(_bp_now)
  _bp_dv_start snap "sqlite:$BP_WORK/snap.db" only
  _bp_dv_wait_exit "$BP_DV_PID" snap
  _bp_record "snapshot.datavor_sqlite" "$(sqlite3 "$BP_WORK/snap.db" "SELECT count(*) FROM t")" "$t0" - "$BP_EXIT_T" "$BP_EXIT_CPU"

  if ((BP_HAS_PGSINK)); then
    BP_DSTDB=dv _bp_dst -c "DROP TABLE IF EXISTS t" -c "DROP TABLE IF EXISTS _datavor_offsets" -c "CHECKPOINT" >/dev/null
    t0=$(_bp_now)
    _bp_dv_start snap_pg "$BP_DST_DV_URL" only
    _bp_dv_wait_exit "$BP_DV_PID" snap_pg
    _bp_record "snapshot.datavor_pg" "$(BP_DSTDB=dv _bp_dst -At -c "SELECT count(*) FROM t")" "$t0" - "$BP_EXIT_T" "$BP_EXIT_CPU"
  fi

  _bp_dst -c "DROP TABLE IF EXISTS t" -c "CHECKPOINT" >/dev/null
  t0=$(_bp_now)
  pg_dump -h 127.0.0.1 -p "$DATAVOR_TEST_PG_PORT" -U postgres -t t postgres | _bp_dst >/dev/null
  tdone=$(_bp_now)
  _bp_record "snapshot.pg_dump_psql" "$(_bp_dst -At -c "SELECT count(*) FROM t")" "$t0" - "$tdone"

  _bp_reset_dst
  t0=$(_bp_now)
  _bp_src -c "COPY t TO STDOUT" | _bp_dst -c "COPY t FROM STDIN"
  tdone=$(_bp_now)
  _bp_record "snapshot.copy_pipe" "$(_bp_dst -At -c "SELECT count(*) FROM t")" "$t0" - "$tdone"
}

# valgrind --tool=callgrind on a short insert+update run (datavor -> SQLite).
_bp_profile() {
  local out=$1 rows=$BP_ROWS log=$BP_WORK/dv-prof.log i t0 tdone
  _bp_reset_src
  rm -f "$BP_WORK/prof.db"*
  _bp_log "profile: datavor -> SQLite under callgrind, $rows inserts + $rows updates"
  valgrind --tool=callgrind --callgrind-out-file="$out" "$BP_DATAVOR" stream run --source "$BP_SRC_URL" \
    --target "sqlite:$BP_WORK/prof.db" --tables public.t --name prof --snapshot never --home "$BP_WORK/home-prof" \
    2>"$log" &
  BP_DV_PID=$!
  _BP_PIDS+=("$BP_DV_PID")
  for ((i = 0; i < 1200; i++)); do
    grep -q ': streaming |' "$log" && break
    sleep 0.1
  done
  local phase
  for phase in ins upd; do
    _bp_load "$BP_WORK/$phase.sql"
    tdone=$(_bp_caught_up sqlite "$BP_WORK/prof.db" "$phase" 1800)
    _bp_log "profile $phase: caught up $(_bp_sub "$tdone" "$BP_T0") s after the load started (under valgrind)"
  done
  kill -TERM "$BP_DV_PID"
  for ((i = 0; i < 600; i++)); do
    kill -0 "$BP_DV_PID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$BP_DV_PID" 2>/dev/null; then
    _bp_log "datavor did not exit after SIGTERM: dumping the profile and killing it"
    callgrind_control -d "$BP_DV_PID" >/dev/null 2>&1 || true
    sleep 5
    kill -KILL "$BP_DV_PID" 2>/dev/null || true
    [[ -s "$out" ]] || mv "$out.1" "$out" 2>/dev/null || true
  fi
  wait "$BP_DV_PID" 2>/dev/null || true
  echo "# stream: $rows inserts + $rows updates, 1,000-row transactions"
  _bp_annotate "$out"

  local snap_out=${out%.out}-snapshot.out
  _bp_log "profile: datavor --snapshot only -> SQLite under callgrind, $BP_SNAP_ROWS rows"
  _bp_reset_src
  _bp_src -c "INSERT INTO t SELECT g, g % 1000, md5(g::text), now() FROM generate_series(1, $BP_SNAP_ROWS) g" \
    -c "VACUUM (ANALYZE) t" >/dev/null
  rm -f "$BP_WORK/prof-snap.db"*
  t0=$(_bp_now)
  valgrind --tool=callgrind --callgrind-out-file="$snap_out" "$BP_DATAVOR" stream run --source "$BP_SRC_URL" \
    --target "sqlite:$BP_WORK/prof-snap.db" --tables public.t --name profsnap --snapshot only \
    --home "$BP_WORK/home-profsnap" 2>"$BP_WORK/dv-profsnap.log" &
  BP_DV_PID=$!
  _BP_PIDS+=("$BP_DV_PID")
  while kill -0 "$BP_DV_PID" 2>/dev/null; do
    if grep -qE ': (stopped|failed) \|' "$BP_WORK/dv-profsnap.log"; then
      sleep 30  # valgrind writes its output at exit
      if kill -0 "$BP_DV_PID" 2>/dev/null; then
        _bp_log "datavor finished the snapshot but did not exit: dumping the profile and killing it"
        callgrind_control -d "$BP_DV_PID" >/dev/null 2>&1 || true
        sleep 5
        kill -KILL "$BP_DV_PID" 2>/dev/null || true
        [[ -s "$snap_out" ]] || mv "$snap_out.1" "$snap_out" 2>/dev/null || true
      fi
      break
    fi
    sleep 0.2
  done
  wait "$BP_DV_PID" 2>/dev/null || true
  _bp_log "profile snapshot: $(sqlite3 "$BP_WORK/prof-snap.db" "SELECT count(*) FROM t") rows in $(_bp_sub "$(_bp_now)" "$t0") s (under valgrind)"
  echo
  echo "# snapshot ($BP_SNAP_ROWS rows)"
  _bp_annotate "$snap_out"
}

_bp_annotate() {
  local out=$1
  # Function names shortened to 150 characters; the asio plumbing above run_steps left out.
  local skip='boost::asio|below main|libc_start|[?][?][?]:main '
  echo "## callgrind_annotate --inclusive=yes (top 30, without the asio/libc frames above run_steps)"
  callgrind_annotate --inclusive=yes "$out" 2>/dev/null | awk -v skip="$skip" '/^ *[0-9,]+ \(/ && $0 !~ skip && n++ < 30 { print substr($0, 1, 150) }'
  echo "## callgrind_annotate, self cost (top 30)"
  callgrind_annotate "$out" 2>/dev/null | awk '/^ *[0-9,]+ \(/ && !/PROGRAM TOTALS/ && n++ < 30 { print substr($0, 1, 150) }'
}

# ------------------------------------------------------------------ report

_bp_report() {
  python3 - "$BP_RESULTS" "$1" <<'PY'
import json, sys
res, out = sys.argv[1], sys.argv[2]
flat = {}
for line in open(res):
    k, _, v = line.rstrip('\n').partition('\t')
    try:
        v = int(v)
    except ValueError:
        try:
            v = float(v)
        except ValueError:
            v = None if v == 'null' else v
    flat[k] = v
nested = {}
for k, v in flat.items():
    d = nested
    parts = k.split('.')
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = v
json.dump(nested, open(out, 'w'), indent=2)

g = flat.get
def num(x, fmt='{:,.0f}'):
    return '–' if x is None or isinstance(x, str) else fmt.format(x)
rows = g('meta.rows')
print(f"\n### Throughput: {rows:,} rows in 1,000-row transactions (inserts, then updates)\n")
print('| run | consumer | inserts rows/s | updates rows/s | caught up after the source (ins / upd) | CPU s: consumer, walsender[, target backend] (ins / upd) | notes |')
print('|---|---|---|---|---|---|---|')
def line(mode, key, label, note=''):
    k = f'{mode}.{key}' if mode else key
    if g(f'{k}.ins.rows_per_s') is None and g(f'{k}.upd.rows_per_s') is None and g(f'{k}.ins.error') is None:
        return
    lag = ' / '.join(num(g(f'{k}.{p}.lag_after_source_s'), '{:.2f} s') for p in ('ins', 'upd'))
    def cpu1(p):
        vals = [g(f'{k}.{p}.{x}') for x in ('consumer_cpu_s', 'walsender_cpu_s', 'target_backend_cpu_s')]
        return '–' if vals[0] is None else ', '.join(f'{v:.1f}' for v in vals if isinstance(v, (int, float)))
    cpu = ' / '.join(cpu1(p) for p in ('ins', 'upd'))
    errs = [str(g(f'{k}.{p}.error')) for p in ('ins', 'upd') if g(f'{k}.{p}.error')]
    if mode == 'live' and g(f'{k}.ins.source_seconds') is not None:
        src = ' / '.join(num(g(f'{k}.{p}.source_seconds'), '{:.2f}') for p in ('ins', 'upd'))
        note = '; '.join(x for x in (note, f'source load took {src} s') if x)
    note = '; '.join([note] + errs if note else errs)
    print(f"| {mode or 'source'} | {label} | {num(g(f'{k}.ins.rows_per_s'))} | {num(g(f'{k}.upd.rows_per_s'))} | {lag} | {cpu} | {note} |")
line('', 'source_load', 'the load alone (psql, no consumer)',
     f"WAL {num((g('wal_bytes.ins') or 0) / 1e6, '{:.0f}')} MB / {num((g('wal_bytes.upd') or 0) / 1e6, '{:.0f}')} MB")
line('live', 'datavor_sqlite', 'Datavor → SQLite')
line('live', 'datavor_pg', 'Datavor → PostgreSQL')
line('live', 'native', 'native logical replication')
if g('live.pgcopydb.ins.rows_per_s') is not None:
    line('live', 'pgcopydb', f"pgcopydb {g('live.pgcopydb.version') or ''} follow (wal2json)",
         f"applied {num(g('live.pgcopydb.ins.rows'))} of {num(g('live.pgcopydb.ins.rows_expected'))}; first row after {num(g('live.pgcopydb.ins.first_row_after_s'), '{:.1f}')} s; updates not run")
elif g('live.pgcopydb.error'):
    print(f"| live | pgcopydb | – | – | – | – | {g('live.pgcopydb.error')} |")
recv = ' / '.join(num(g(f'backlog.pg_recvlogical.{p}.wal_mb_per_s'), '{:.0f}') for p in ('ins', 'upd'))
line('backlog', 'pg_recvlogical', 'pg_recvlogical (pgoutput) → /dev/null', f'{recv} MB/s of WAL')
line('backlog', 'datavor_jsonl', 'Datavor → JSON lines (/dev/null)')
line('backlog', 'datavor_sqlite', 'Datavor → SQLite')
line('backlog', 'datavor_pg', 'Datavor → PostgreSQL')
line('backlog', 'native', 'native logical replication')

lat = sorted({k.split('.')[1] for k in flat if k.startswith('latency.r')}, key=lambda r: int(r[1:]))
if lat:
    print('\n### Commit → applied latency (pgbench -R, one-row transactions)\n')
    print('| rate | consumer | source tps | p50 | p99 |')
    print('|---|---|---|---|---|')
    for r in lat:
        for c, label in (('datavor_sqlite', 'Datavor → SQLite (status line)'), ('native', 'native (subscriber default clock_timestamp())')):
            k = f'latency.{r}.{c}'
            if g(f'{k}.p50_ms') is None: continue
            print(f"| {int(r[1:]):,}/s | {label} | {num(g(f'{k}.source_tps'))} | {num(g(f'{k}.p50_ms'), '{:.2f}')} ms | {num(g(f'{k}.p99_ms'), '{:.2f}')} ms |")

if g('snapshot.pg_dump_psql.rows_per_s') is not None:
    print(f"\n### Initial snapshot ({num(g('meta.snapshot_rows'))} rows, {num((g('snapshot.table_bytes') or 0) / 1e6)} MB on the source)\n")
    print('| method | rows | seconds | rows/s |')
    print('|---|---|---|---|')
    for k, label in (('datavor_sqlite', 'Datavor `--snapshot only` → SQLite'), ('datavor_pg', 'Datavor `--snapshot only` → PostgreSQL'),
                     ('pg_dump_psql', '`pg_dump -t t | psql`'), ('copy_pipe', '`COPY t TO STDOUT | COPY t FROM STDIN` (PK present)')):
        if g(f'snapshot.{k}.rows') is None: continue
        print(f"| {label} | {num(g(f'snapshot.{k}.rows'))} | {num(g(f'snapshot.{k}.seconds'), '{:.2f}')} | {num(g(f'snapshot.{k}.rows_per_s'))} |")

print('\n### Ratios against the issue\'s goals\n')
print('| goal | Datavor | peer | ratio | met |')
print('|---|---|---|---|---|')
def ratio(label, a_key, b_key, goal, a_label='', b_label=''):
    a, b = g(a_key), g(b_key)
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        print(f'| {label} | {num(a)} | {num(b)} | – | not measured |'); return
    r = a / b
    print(f"| {label} | {num(a)} rows/s{a_label} | {num(b)} rows/s{b_label} | {r:.2f}× | {'yes' if r >= goal else 'no'} (≥ {goal}×) |")
ratio('apply, inserts, live (Datavor → SQLite / native)', 'live.datavor_sqlite.ins.rows_per_s', 'live.native.ins.rows_per_s', 1.0)
ratio('apply, updates, live (Datavor → SQLite / native)', 'live.datavor_sqlite.upd.rows_per_s', 'live.native.upd.rows_per_s', 0.8)
ratio('apply, inserts, backlog (Datavor → SQLite / native)', 'backlog.datavor_sqlite.ins.rows_per_s', 'backlog.native.ins.rows_per_s', 1.0)
ratio('apply, updates, backlog (Datavor → SQLite / native)', 'backlog.datavor_sqlite.upd.rows_per_s', 'backlog.native.upd.rows_per_s', 0.8)
if g('backlog.datavor_pg.ins.rows_per_s') is not None:
    ratio('apply, inserts, backlog (Datavor → PostgreSQL / native)', 'backlog.datavor_pg.ins.rows_per_s', 'backlog.native.ins.rows_per_s', 1.0)
    ratio('apply, updates, backlog (Datavor → PostgreSQL / native)', 'backlog.datavor_pg.upd.rows_per_s', 'backlog.native.upd.rows_per_s', 0.8)
read = 'datavor_jsonl' if g('backlog.datavor_jsonl.ins.rows_per_s') is not None else 'datavor_sqlite'
rl = 'JSON lines' if read == 'datavor_jsonl' else 'SQLite'
ratio(f'read, inserts (Datavor → {rl} / pg_recvlogical)', f'backlog.{read}.ins.rows_per_s', 'backlog.pg_recvlogical.ins.rows_per_s', 0.9)
ratio(f'read, updates (Datavor → {rl} / pg_recvlogical)', f'backlog.{read}.upd.rows_per_s', 'backlog.pg_recvlogical.upd.rows_per_s', 0.9)
for r, goal in (('r1000', True),):
    p50, p99 = g(f'latency.{r}.datavor_sqlite.p50_ms'), g(f'latency.{r}.datavor_sqlite.p99_ms')
    if p50 is not None:
        met = 'yes' if p50 <= 1 and p99 <= 5 else 'no'
        print(f"| latency at 1k rows/s: p50 ≤ 1 ms, p99 ≤ 5 ms | p50 {p50:.2f} ms, p99 {p99:.2f} ms | native p50 {num(g(f'latency.{r}.native.p50_ms'), '{:.2f}')} ms, p99 {num(g(f'latency.{r}.native.p99_ms'), '{:.2f}')} ms | – | {met} |")
ratio('snapshot (Datavor → SQLite / pg_dump | psql)', 'snapshot.datavor_sqlite.rows_per_s', 'snapshot.pg_dump_psql.rows_per_s', 1.0)
if g('snapshot.datavor_pg.rows_per_s') is not None:
    ratio('snapshot (Datavor → PostgreSQL / pg_dump | psql)', 'snapshot.datavor_pg.rows_per_s', 'snapshot.pg_dump_psql.rows_per_s', 1.0)
PY
}

# ------------------------------------------------------------------ main

# EXIT trap: stop what this run started (by process id / process group id), then the servers.
_bp_cleanup() {
  local p
  for p in "${_BP_PGIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  for p in "${_BP_PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  datavor_stop_all
}

bench_pg_main() {
  BP_ROWS=1000000
  BP_SNAP_ROWS=
  BP_LAT_SECONDS=20
  BP_RATES="1000 10000"
  local skip="" profile=0 rows_given=0
  while (($#)); do
    case $1 in
      --rows) BP_ROWS=$2; rows_given=1; shift 2 ;;
      --snapshot-rows) BP_SNAP_ROWS=$2; shift 2 ;;
      --latency-seconds) BP_LAT_SECONDS=$2; shift 2 ;;
      --rates) BP_RATES=$2; shift 2 ;;
      --skip) skip=",$2,"; shift 2 ;;
      --profile) profile=1; shift ;;
      *) printf 'scripts/bench pg: unknown option %s\n' "$1" >&2; return 2 ;;
    esac
  done
  if ((profile && !rows_given)); then BP_ROWS=100000; fi
  if ((BP_ROWS < 1000 || BP_ROWS % 1000 != 0)); then
    printf 'scripts/bench pg: --rows must be a positive multiple of 1000\n' >&2
    return 2
  fi
  BP_SNAP_ROWS=${BP_SNAP_ROWS:-$((2 * BP_ROWS))}
  BP_DATAVOR=$PWD/build/server/datavor
  [[ -x "$BP_DATAVOR" ]] || cmake --build build -j2 --target datavor >/dev/null
  export PATH=/usr/lib/postgresql/15/bin:$PATH

  # shellcheck source=scripts/lib/servers.sh
  source scripts/lib/servers.sh
  _BP_PIDS=()
  _BP_PGIDS=()
  BP_HUNG=0
  trap _bp_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  datavor_start_pg src PG
  datavor_start_pg dst DST
  BP_WORK=$DATAVOR_TEST_ROOT/bench
  mkdir -p "$BP_WORK"
  BP_RESULTS=$BP_WORK/results.tsv
  : >"$BP_RESULTS"
  _bp_write_helpers
  # Every client (psql, pg_dump, pgbench, pg_recvlogical, pgcopydb, datavor via libpq)
  # takes its password from this file; no password on a command line.
  (umask 077 && printf '127.0.0.1:%s:*:postgres:%s\n127.0.0.1:%s:*:postgres:%s\n' \
    "$DATAVOR_TEST_PG_PORT" "$DATAVOR_TEST_PG_PASSWORD" "$DATAVOR_TEST_DST_PORT" "$DATAVOR_TEST_DST_PASSWORD" \
    >"$BP_WORK/pgpass")
  export PGPASSFILE=$BP_WORK/pgpass
  unset PGPASSWORD
  BP_SRC_URL=$DATAVOR_TEST_PG_URL
  BP_DST_DV_URL=postgresql://postgres@127.0.0.1:$DATAVOR_TEST_DST_PORT/dv
  # The subscriber's walreceiver runs as the postgres OS user: it needs the password inline.
  BP_SUBCONN="host=127.0.0.1 port=$DATAVOR_TEST_PG_PORT user=postgres dbname=postgres password=$DATAVOR_TEST_PG_PASSWORD"
  _bp_src -c "ALTER SYSTEM SET synchronous_commit = on" -c "SELECT pg_reload_conf()" >/dev/null
  _bp_dst -c "CREATE DATABASE dv" >/dev/null

  python3 - "$BP_ROWS" "$BP_WORK" <<'PY'
import sys
n, work = int(sys.argv[1]), sys.argv[2]
with open(f'{work}/ins.sql', 'w') as f:
    for k in range(1, n + 1, 1000):
        f.write(f"INSERT INTO t SELECT g, g % 1000, md5(g::text), now() FROM generate_series({k}, {k + 999}) g;\n")
with open(f'{work}/upd.sql', 'w') as f:
    for k in range(1, n + 1, 1000):
        f.write(f"UPDATE t SET a = a + 1, c = now() WHERE id BETWEEN {k} AND {k + 999};\n")
PY

  local stamp
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
  if ((profile)); then
    local out=$PWD/build/bench/pg-callgrind-$stamp.out
    _bp_profile "$out" | tee "$PWD/build/bench/pg-callgrind-$stamp.txt"
    _bp_log "saved $out and ${out%.out}.txt"
    return 0
  fi

  # Targets the binary accepts (the JSON-lines and PostgreSQL sinks are recent).
  _bp_accepts() {
    ! timeout 10 "$BP_DATAVOR" stream run --source postgresql://nobody@127.0.0.1:1/x --target "$1" \
      --tables public.t --home "$BP_WORK/home-probe" 2>&1 | grep -qiE 'unknown scheme|not available yet'
  }
  BP_HAS_JSONL=0
  BP_HAS_PGSINK=0
  if _bp_accepts "jsonl:$BP_WORK/probe.jsonl"; then BP_HAS_JSONL=1; fi
  if _bp_accepts "postgresql://nobody@127.0.0.1:2/x"; then BP_HAS_PGSINK=1; fi

  _bp_put meta.date "$(date -u +%Y-%m-%d)"
  _bp_put meta.rows "$BP_ROWS"
  _bp_put meta.snapshot_rows "$BP_SNAP_ROWS"
  _bp_put meta.cores "$(nproc)"
  _bp_put meta.kernel "$(uname -r)"
  _bp_put meta.postgres "$(_bp_src -At -c 'SHOW server_version')"
  _bp_put meta.datavor "$("$BP_DATAVOR" --version 2>&1 | head -n 1)"
  _bp_put meta.git "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  _bp_put meta.jsonl_target "$BP_HAS_JSONL"
  _bp_put meta.pg_target "$BP_HAS_PGSINK"

  local started
  started=$(_bp_now)
  local phase
  for phase in backlog live pgcopydb latency snapshot; do
    [[ $skip == *,$phase,* ]] && continue
    _bp_settle
    "_bp_phase_$phase"
  done
  _bp_put meta.total_seconds "$(_bp_sub "$(_bp_now)" "$started")"
  _bp_put meta.datavor_hung_exits "$BP_HUNG"

  local out=$PWD/build/bench/pg-$stamp.json
  _bp_report "$out"
  mkdir -p "${out%.json}-logs"
  cp "$BP_WORK"/*.log "${out%.json}-logs/" 2>/dev/null || true
  _bp_log "saved $out (logs in ${out%.json}-logs/)"
}
