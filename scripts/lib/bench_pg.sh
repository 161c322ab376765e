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
#   faults   Datavor -> SQLite, backlog style (the load first, then the stream reads it),
#            four runs on the same load: clean; 1% of the rows rejected by the target (a
#            trigger on id % 100 = 7: every batch takes the fallback path and sets its bad
#            rows aside in the ledger; caught up = the last row applied AND every failed
#            row in the ledger); clean with DATAVOR_LEDGER=batches (batch entries without
#            the rows' SHA-256); clean with DATAVOR_LEDGER=off (no ledger). Checks: the
#            target's rows, the ledger's batch/checksum/failed entries per mode.
#   rules    Datavor -> SQLite, backlog style as faults, on RULES_ROWS inserts (default ROWS/2):
#            the same load read with no rules and with 10 rules on t (2 filters that keep every
#            row, 2 masks, 2 casts, a rename, 2 derived columns, an alert that never fires),
#            added over MCP (add_rule through `datavor serve`) before the streams start; runs
#            none, ten, ten, none; rules.{none,ten} is the faster run of each, and
#            rules.ratio_ten_none their ratio (goal >= 0.85). Checks the 10-rule targets hold
#            what the rules make (renamed and derived columns, masked values, no alert).
#   large    ONE transaction: INSERT ... SELECT of LARGE_ROWS rows from generate_series,
#            then UPDATE of every tenth row (a = a + 1), then COMMIT, while the consumer
#            streams: Datavor -> SQLite, -> JSON lines (a FIFO read by `wc -l`, which
#            stands in for /dev/null and counts the lines), -> PostgreSQL, and native
#            logical replication with the subscription's streaming = on. The load alone
#            (no slot) is timed first. Per consumer: load start -> the target has it all
#            (the last row shows its update; JSON lines: the slot's confirmed_flush_lsn
#            reaches the LSN after the COMMIT), rows/s, COMMIT -> Datavor's "applying a
#            large transaction" log line -> done, CPU, peak RSS (VmHWM read just before
#            the stop; VmRSS/RssAnon sampled every 50 ms, a CSV per second in the logs),
#            the spill file's size (from that log line), pg_stat_replication_slots'
#            stream/spill counters, and checks: the target holds exactly LARGE_ROWS
#            rows, LARGE_ROWS/10 of them updated (rows_check pass/fail), and peak RSS
#            < 256 MiB (peak_rss_under_256mib pass/fail).
#
# Options: --rows N (default 1000000, a multiple of 1000), --snapshot-rows N
# (default 2*ROWS), --latency-seconds S (default 20), --rates "1000 10000",
# --large-rows N (default 10000000), --rules-rows N (default ROWS/2, a multiple of 1000),
# --skip PHASE[,PHASE] (backlog, live, pgcopydb, latency, snapshot, faults, rules, large),
# --profile (only: datavor → SQLite under valgrind --tool=callgrind, ROWS=100000 inserts
# + updates while streaming, then a --snapshot only of 2*ROWS rows; prints the top
# inclusive and self-cost functions, saves the callgrind files under build/bench/).
# DATAVOR_BENCH_BIN=PATH measures that datavor binary instead of build/server/datavor
# (for example a build of a clean checkout while build/ holds someone's work in progress).

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
# poll.py KIND TARGET QUERY EXPECTED TIMEOUT [PID]
#   KIND sqlite: TARGET is a file; pg: TARGET is port[/db] on 127.0.0.1 (psql, PGPASSFILE);
#   offset: TARGET is a JSON-lines .offset file (QUERY ignored; the value is its LSN as an integer).
#   EXPECTED "=V" (string equality) or ">=V" (integers; LSNs as X/Y are converted).
#   PID: a consumer whose exit ends the wait at once (exit 1).
# Prints time.time() when the condition first holds; exit 1 on timeout.
import os, sqlite3, subprocess, sys, time
kind, target, query, expected, timeout = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
pid = sys.argv[6] if len(sys.argv) > 6 else ''
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
    if pid and not os.path.exists(f'/proc/{pid}'):
        print(f'poll: process {pid} exited; last value {v!r}, expected {expected}', file=sys.stderr)
        sys.exit(1)
    time.sleep(0.01)
PY
  cat >"$BP_WORK/large_watch.py" <<'PY'
# large_watch.py: follows one consumer through the large transaction, until the
# target holds it. Options (all "--name value"):
#   --kind sqlite|pg --target T --query Q --expected E   the condition, as in poll.py; E may be
#                       "@FILE": ">=" + the first word of FILE, once FILE exists (an LSN known later)
#   --timeout S         give up after S seconds (exit 1)
#   --pid P             the consumer: VmRSS, RssAnon, VmHWM sampled every 0.05 s, CPU; its exit
#                       fails the wait unless --exit-fails 0 (then sampling stops; exit_seen= says when)
#   --ws P              the walsender serving it: CPU
#   --extra P           one more process whose CPU is followed (the PostgreSQL target's backend)
#                       CPU readings are the last ones seen: a process that ends keeps its last value
#   --log F             Datavor's log: the time "applying a large transaction" appears, failures
#   --series F          one CSV line a second: seconds, rss_mib, rss_anon_mib, cpu_s, walsender_cpu_s, spill_mib
# Prints key=value lines (times are epoch seconds); exit 0 when the condition held.
import os, sqlite3, subprocess, sys, time
a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
kind, target, query, expected = a['--kind'], a['--target'], a['--query'], a['--expected']
timeout = float(a['--timeout'])
pid, ws, logf = a.get('--pid', ''), a.get('--ws', ''), a.get('--log', '')
extra = a.get('--extra', '')
last_cpu = {}
exit_fails = a.get('--exit-fails', '1') == '1'
hz = os.sysconf('SC_CLK_TCK')
def lsn(v):
    v = str(v).strip()
    if '/' in v:
        hi, lo = v.split('/')
        return (int(hi, 16) << 32) + int(lo, 16)
    return int(v or 0)
def ok(v, exp):
    if exp is None: return False
    if exp.startswith('>='):
        return v is not None and v != '' and lsn(v) >= lsn(exp[2:])
    return str(v) == exp[1:]
def cpu(p):
    if not p: return ''
    try:
        with open(f'/proc/{p}/stat') as f: s = f.read()
        fl = s[s.rindex(')') + 2:].split()
        last_cpu[p] = (int(fl[11]) + int(fl[12])) / hz
    except (OSError, ValueError, IndexError):
        pass
    return last_cpu.get(p, '')
def status(p):
    out = {}
    try:
        with open(f'/proc/{p}/status') as f:
            for line in f:
                k, _, v = line.partition(':')
                if k in ('VmRSS', 'VmHWM', 'RssAnon'): out[k] = int(v.split()[0])
    except OSError:
        pass
    return out
def spill(p):  # bytes in the process's open, unlinked files under a spool folder
    total = 0
    try:
        for fd in os.listdir(f'/proc/{p}/fd'):
            try:
                l = os.readlink(f'/proc/{p}/fd/{fd}')
                if '/spool/' in l and l.endswith('(deleted)'): total += os.stat(f'/proc/{p}/fd/{fd}').st_size
            except OSError:
                pass
    except OSError:
        pass
    return total
if kind == 'pg':
    port, _, db = target.partition('/')
    proc = subprocess.Popen(['psql', '-X', '-At', '-h', '127.0.0.1', '-p', port, '-U', 'postgres', '-d', db or 'postgres'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    def get():
        proc.stdin.write(query.rstrip(';') + ';\n\\echo __poll_end__\n'); proc.stdin.flush()
        v = None
        while True:
            line = proc.stdout.readline()
            if not line or line.strip() == '__poll_end__': return v
            v = line.strip()
else:
    db = None
    def get():
        global db
        if db is None:
            if not os.path.exists(target): return None
            db = sqlite3.connect(target, timeout=10)
        try:
            r = db.execute(query).fetchone()
        except sqlite3.OperationalError:
            return None
        return None if r is None else ('' if r[0] is None else str(r[0]))
logfh = open(logf, errors='replace') if logf else None
if logfh: logfh.seek(0, 2)
series = open(a['--series'], 'w') if a.get('--series') else None
if series: series.write('seconds,rss_mib,rss_anon_mib,cpu_s,walsender_cpu_s,spill_mib\n')
t_start = time.time()
deadline = t_start + timeout
rss_max = anon_max = hwm = spill_max = 0
res = {}
last_series = last_spill = 0.0
exp = None if expected.startswith('@') else expected
v = None
def out(code):
    res.update(rss_max_kb=rss_max, rss_anon_max_kb=anon_max, hwm_kb=hwm, spill_max_bytes=spill_max, last_value=v)
    for k, val in res.items(): print(f'{k}={val}')
    sys.exit(code)
while True:
    now = time.time()
    st = status(pid) if pid else {}
    if pid and not st:
        if exit_fails:
            res['error'] = 'the consumer exited before the target held the transaction'
            out(1)
        res.setdefault('exit_seen', f'{now:.6f}')
        pid = ''
    rss_max = max(rss_max, st.get('VmRSS', 0)); anon_max = max(anon_max, st.get('RssAnon', 0)); hwm = max(hwm, st.get('VmHWM', 0))
    if pid and now - last_spill >= 1 and 'apply_start' not in res:  # the spill only grows until the apply starts
        last_spill = now
        spill_max = max(spill_max, spill(pid))
    if series and now - last_series >= 1:
        last_series = now
        c, w = cpu(pid), cpu(ws)
        cpu(extra)
        series.write(f"{now - t_start:.1f},{st.get('VmRSS', 0) / 1024:.1f},{st.get('RssAnon', 0) / 1024:.1f},"
                     f"{c},{w},{(spill(pid) if pid else 0) / 1048576:.1f}\n")
        series.flush()
    if logfh:
        for line in logfh.readlines():
            line = line.rstrip('\n')
            if 'applying a large transaction' in line and 'apply_start' not in res:
                res['apply_start'] = f'{now:.6f}'
                res['apply_line'] = line
                res['cpu_at_apply_start'] = cpu(pid)
                res['ws_cpu_at_apply_start'] = cpu(ws)
            elif line.startswith(('error:', 'warning:')):
                res.setdefault('log_problems', '')
                if len(res['log_problems']) < 2000: res['log_problems'] += line.replace('\t', ' ') + ' || '
    if exp is None and os.path.exists(expected[1:]):
        with open(expected[1:]) as f: w0 = f.read().split()
        if w0: exp = '>=' + w0[0]
    v = get()
    if ok(v, exp):
        res['done'] = f'{time.time():.6f}'
        res['cpu_done'] = cpu(pid)
        res['ws_cpu_done'] = cpu(ws)
        res['extra_cpu_done'] = cpu(extra)
        hwm = max(hwm, (status(pid) if pid else {}).get('VmHWM', 0))
        out(0)
    if now > deadline:
        res['error'] = f'timeout after {timeout:.0f} s'
        out(1)
    time.sleep(0.05)
PY
}

# ------------------------------------------------------------------ Datavor

# _bp_dv_start NAME TARGET-URL [--snapshot MODE] [nowait]: runs `datavor stream run` in the
# background (log $BP_WORK/dv-NAME.log); returns once it is streaming (its first status
# line, printed a second after the start), or at once with nowait. Sets BP_DV_PID.
_bp_dv_start() {
  local name=$1 target=$2 mode=${3:-never} log=$BP_WORK/dv-$1.log i seen
  # The log collects every run of this name: look only at what this run adds.
  seen=0
  if [[ -f $log ]]; then seen=$(wc -l <"$log"); fi
  "$BP_DATAVOR" stream run --source "$BP_SRC_URL" --target "$target" --tables public.t --name "$name" \
    --snapshot "$mode" --home "$BP_WORK/home-$name" 2>>"$log" &
  BP_DV_PID=$!
  _BP_PIDS+=("$BP_DV_PID")
  [[ $mode == only || ${4:-} == nowait ]] && return 0
  for ((i = 0; i < 600; i++)); do
    tail -n +"$((seen + 1))" "$log" 2>/dev/null | grep -q ': streaming |' && return 0
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
  # JSON lines into a device keep no PATH.offset: the slot's confirmed position
  # tells instead (reported about once a second, so up to ~1 s late).
  if [[ $kind == slot ]]; then
    _bp_wait pg "$DATAVOR_TEST_PG_PORT" \
      "SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = '$target'" \
      ">=$BP_EXACT_LSN" "$timeout"
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
  if ((BP_HAS_JSONL)); then names+=(bl_jsonl); targets+=("jsonl:$BP_WORK/null.jsonl"); kinds+=(slot); waits+=(datavor_bl_jsonl); fi
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
      slot) BP_EXACT_LSN=$(_bp_lsn) _bp_caught_up slot "${waits[i]}" ins 60 >/dev/null ;;
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
      # nowait: the first status line comes a second after the start, and a
      # small load may be applied by then; the catch-up poll starts at once.
      _bp_dv_start "${names[i]}" "${targets[i]}" never nowait
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

# ------------------------------------------------------------------ faults

# Ledger entries of a stream in HOME/ledger.db: "total batches checksummed failed"
# (0 0 0 0 when there is no ledger).
_bp_ledger_counts() {
  local db=$1/ledger.db stream=$2
  if [[ ! -f $db ]]; then echo "0 0 0 0"; return 0; fi
  sqlite3 -separator ' ' "file:$db?mode=ro" "SELECT count(*), count(*) FILTER (WHERE kind = 'batch'),
    count(*) FILTER (WHERE kind = 'batch' AND body LIKE '%\"checksum\":\"sha256:%'), count(*) FILTER (WHERE kind = 'failed')
    FROM entries WHERE stream = '$stream'" 2>/dev/null || echo "0 0 0 0"
}
# Bytes of a home's ledger (ledger.db and its WAL).
_bp_ledger_bytes() {
  local n=0 f
  for f in "$1/ledger.db" "$1/ledger.db-wal"; do [[ -f $f ]] && n=$((n + $(stat -c %s "$f"))); done
  echo "$n"
}

# Datavor -> SQLite, backlog style (the load first, then the stream reads it), four runs on
# the same load, each with its own stream, slot, target and home:
#   clean           every row applies, full ledger (batch entries with the rows' SHA-256)
#   bad_rows        1% of the rows (id % 100 = 7) rejected by a trigger on the target: every
#                   batch takes the fallback path (chunks under savepoints, then row by row) and
#                   sets its bad rows aside in the ledger; full ledger. Caught up when the target's
#                   max(id) is ROWS (the last row is good) AND the ledger holds all ROWS/100
#                   failed rows (written asynchronously by the ledger's thread).
#   ledger_batches  clean, DATAVOR_LEDGER=batches (batch entries without the rows' SHA-256)
#   ledger_off      clean, DATAVOR_LEDGER=off (no ledger at all)
# rows/s counts every source row, bad ones included.
# Warm-up of SQLite-target streams: each starts once, applies one transaction (its target then has
# a committed position and its table) and stops; their slots keep the WAL.
# Args: one "LEDGER_MODE|NAME|DB" per stream (LEDGER_MODE: DATAVOR_LEDGER, empty for the full ledger).
_bp_warm_up_sqlite() {
  local spec mode name db i
  local -a pids=() dbs=()
  for spec in "$@"; do
    IFS='|' read -r mode name db <<<"$spec"
    DATAVOR_LEDGER=$mode _bp_dv_start "$name" "sqlite:$db"
    pids+=("$BP_DV_PID")
    dbs+=("$db")
  done
  _bp_src -c "BEGIN" -c "INSERT INTO t VALUES (0, 0, 'warm-up', now())" -c "DELETE FROM t WHERE id = 0" -c "COMMIT" >/dev/null
  for i in "${!dbs[@]}"; do
    _bp_wait sqlite "${dbs[i]}" "SELECT coalesce(max(position_int), 0) FROM _datavor_offsets" ">=1" 60 >/dev/null
    _bp_dv_stop "${pids[i]}"
  done
}

_bp_phase_faults() {
  _bp_log "faults phase: 1% of rows rejected by the target vs clean, and the ledger's cost (Datavor -> SQLite, backlog)"
  _bp_reset_src
  local -a keys=(clean bad_rows ledger_batches ledger_off) names=(fl_clean fl_bad fl_batches fl_off)
  local -a modes=('' '' batches off)
  local i db home bad=$((BP_ROWS / 100)) timeout=$((60 + BP_ROWS / 4000)) bad_timeout=$((120 + BP_ROWS / 1000))
  # Every target is created beforehand with the table the SQLite sink would create, so that the
  # four runs write into the same shape; only the bad-rows target has the trigger.
  for i in "${!keys[@]}"; do
    db=$BP_WORK/faults-${keys[i]}.db
    rm -f "$db" "$db-wal" "$db-shm"
    sqlite3 "$db" >/dev/null <<'SQL'
PRAGMA journal_mode=WAL;
CREATE TABLE "t" ("id" INTEGER, "a" INTEGER, "b" TEXT, "c" TEXT, PRIMARY KEY ("id"));
SQL
  done
  sqlite3 "$BP_WORK/faults-bad_rows.db" \
    "CREATE TRIGGER bad_rows BEFORE INSERT ON \"t\" WHEN NEW.\"id\" % 100 = 7 BEGIN SELECT RAISE(ABORT, 'bad row'); END"
  _bp_put faults.bad_rows_expected "$bad"
  _bp_put faults.bad_rows_rule "SQLite trigger BEFORE INSERT WHEN NEW.id % 100 = 7: RAISE(ABORT)"

  # Warm-up, as in the backlog phase: each stream starts once (its ledger mode set), applies one
  # transaction so that its target has a committed position, and stops. Their slots keep the WAL.
  local -a warm=()
  for i in "${!keys[@]}"; do warm+=("${modes[i]}|${names[i]}|$BP_WORK/faults-${keys[i]}.db"); done
  _bp_warm_up_sqlite "${warm[@]}"

  _bp_log "faults: loading $BP_ROWS rows with no consumer running"
  _bp_load "$BP_WORK/ins.sql"
  _bp_record "faults.source_load" "$BP_ROWS" "$BP_T0" - "$BP_T1"

  local t0 tdone ttarget ws cpu ws_cpu key name rows n_bad n_total n_batch n_sum n_failed check
  for i in "${!keys[@]}"; do
    key=${keys[i]} name=${names[i]} db=$BP_WORK/faults-${keys[i]}.db home=$BP_WORK/home-${names[i]}
    _bp_put "faults.$key.ledger" "${modes[i]:-full}"
    _bp_flush
    # Not waiting for the stream's first status line (a second after the start, when a
    # short run may be over already): the wait for the target starts at once.
    t0=$(_bp_now)
    DATAVOR_LEDGER=${modes[i]} _bp_dv_start "$name" "sqlite:$db" never nowait
    tdone=''
    # The last row is good: max(id) reaches ROWS when the load is applied (as _bp_caught_up ins).
    if ttarget=$(_bp_wait sqlite "$db" "SELECT coalesce(max(id), 0) FROM t" "=$BP_ROWS" \
      "$([[ $key == bad_rows ]] && echo "$bad_timeout" || echo "$timeout")" "$BP_DV_PID"); then
      tdone=$ttarget
      if [[ $key == bad_rows ]]; then
        # The failed rows reach the ledger after the batch that set them aside commits.
        if tdone=$(_bp_wait sqlite "$home/ledger.db" \
          "SELECT count(*) FROM entries WHERE stream = '$name' AND kind = 'failed'" "=$bad" 60 "$BP_DV_PID"); then
          _bp_put "faults.$key.ledger_after_target_s" "$(_bp_sub "$tdone" "$ttarget")"
        else
          tdone=''
          _bp_put "faults.$key.error" "the target caught up but the ledger did not list $bad failed rows within 60 s"
        fi
      fi
    else
      _bp_put "faults.$key.error" "$(kill -0 "$BP_DV_PID" 2>/dev/null && echo timeout || echo 'datavor exited before the target had the load')"
    fi
    if [[ -n "$tdone" ]]; then
      ws=$(_bp_walsender "datavor_$name")
      cpu=$(_bp_cpu "$BP_DV_PID")
      ws_cpu=$(_bp_cpu "$ws")
      _bp_record "faults.$key" "$BP_ROWS" "$t0" - "$tdone" "$cpu" "$ws_cpu"
    else
      _bp_dv_status "$name" >&2
    fi
    _bp_put "faults.$key.status" "$(_bp_dv_status "$name")"
    _bp_dv_stop "$BP_DV_PID"

    # Checks: the target holds every good row and no bad one; the ledger holds what its mode says.
    read -r rows n_bad < <(sqlite3 -separator ' ' "$db" "SELECT count(*), count(*) FILTER (WHERE id % 100 = 7) FROM t" 2>/dev/null || echo "0 0")
    read -r n_total n_batch n_sum n_failed < <(_bp_ledger_counts "$home" "$name")
    _bp_put "faults.$key.rows_target" "$rows"
    _bp_put "faults.$key.ledger_entries" "$n_total"
    _bp_put "faults.$key.ledger_batch_entries" "$n_batch"
    _bp_put "faults.$key.ledger_checksummed_batches" "$n_sum"
    _bp_put "faults.$key.ledger_failed_rows" "$n_failed"
    _bp_put "faults.$key.ledger_bytes" "$(_bp_ledger_bytes "$home")"
    check=pass
    case $key in
      bad_rows)
        # Batches the target rejected, applied again change by change (the stream's warnings).
        _bp_put "faults.$key.fallback_batches" "$(grep -c 'rejected a batch' "$BP_WORK/dv-$name.log" || true)"
        [[ "$rows" == "$((BP_ROWS - bad))" && "$n_bad" == 0 && "$n_failed" == "$bad" && "$n_batch" -gt 0 && "$n_sum" == "$n_batch" ]] || check=fail
        _bp_put "faults.$key.failed_by_class" "$(sqlite3 "file:$home/ledger.db?mode=ro" \
          "SELECT group_concat(c, ', ') FROM (SELECT error_class || ' ' || code || ': ' || count(*) AS c FROM entries WHERE stream = '$name' AND kind = 'failed' GROUP BY error_class, code)" 2>/dev/null || true)"
        ;;
      clean) [[ "$rows" == "$BP_ROWS" && "$n_failed" == 0 && "$n_batch" -gt 0 && "$n_sum" == "$n_batch" ]] || check=fail ;;
      ledger_batches) [[ "$rows" == "$BP_ROWS" && "$n_failed" == 0 && "$n_batch" -gt 0 && "$n_sum" == 0 ]] || check=fail ;;
      ledger_off) [[ "$rows" == "$BP_ROWS" && "$n_total" == 0 ]] || check=fail ;;
    esac
    _bp_put "faults.$key.check" "$check"
    if [[ $check == fail ]]; then
      _bp_log "faults $key: CHECK FAILED: $rows target rows ($n_bad bad), ledger: $n_total entries, $n_batch batches ($n_sum with a checksum), $n_failed failed rows"
    fi
  done
  _bp_reset_src
}

# ------------------------------------------------------------------ rules

# The ten rules of the `rules` phase, as add_rule arguments (MCP). They keep every row and do
# real work on every change: two filters that hold for every row, a salted SHA-256 mask of b,
# keep_last:4 of c, casts of a and id (a mask turns its column into text and overrides a cast,
# so the casts take the two unmasked columns), a rename of a, two derived columns (from the
# source row), and an alert that never fires (it is evaluated on every change all the same).
_bp_rules_json='[
 {"kind": "filter", "condition": "a >= 0 or a is null", "note": "keeps every row"},
 {"kind": "filter", "condition": "length(b) > 0 or b is null", "note": "keeps every row"},
 {"kind": "mask", "column": "b", "method": "sha256"},
 {"kind": "mask", "column": "c", "method": "keep_last:4"},
 {"kind": "cast", "column": "a", "to": "bigint"},
 {"kind": "cast", "column": "id", "to": "bigint"},
 {"kind": "rename", "column": "a", "to": "amount"},
 {"kind": "derive", "column": "a2", "expression": "a * 2", "to": "bigint"},
 {"kind": "derive", "column": "b_lower", "expression": "lower(b)"},
 {"kind": "alert", "condition": "a < -1", "note": "never fires"}
]'

# _bp_rules_add HOME STREAM: saves the ten rules for STREAM (on public.t) in HOME's context.db,
# the way an agent does: add_rule over MCP's stdio JSON-RPC (`datavor serve`), as scripts/demo
# does. A stream picks up its saved rules when it starts. Fails unless every call succeeded.
_bp_rules_add() {
  python3 - "$BP_DATAVOR" "$1" "$2" "$_bp_rules_json" <<'PY'
import json, subprocess, sys
binary, home, stream, rules = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
msgs = [{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
         "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"}]
for i, r in enumerate(rules, 1):
    msgs.append({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                 "params": {"name": "add_rule", "arguments": dict(stream=stream, table="public.t", **r)}})
p = subprocess.run([binary, "serve", "--home", home], input="".join(json.dumps(m) + "\n" for m in msgs),
                   capture_output=True, text=True, timeout=60)
got = {}
for line in p.stdout.splitlines():
    m = json.loads(line)
    if isinstance(m.get("id"), int) and m["id"] > 0: got[m["id"]] = m
bad = []
for i, r in enumerate(rules, 1):
    res = got.get(i, {}).get("result", {})
    rule = res.get("structuredContent", {}).get("rule", {})
    if res.get("isError") or rule.get("kind") != r["kind"]:
        bad.append(f"{r}: {json.dumps(got.get(i))[:300]}")
if bad:
    print("add_rule failed:\n  " + "\n  ".join(bad) + "\n" + p.stderr[-1000:], file=sys.stderr)
    sys.exit(1)
PY
}

# Datavor -> SQLite, backlog style as in the faults phase, on a load of RULES_ROWS inserts:
# the same load read by streams with no rules and with the ten rules above, each with its own
# stream, slot, target and home, in the order none, ten, ten, none (so drift over the phase
# falls on both kinds alike). The sink creates each target table (with the rules: amount
# instead of a, b and c as text, and a2, b_lower). rules.{none,ten}.* is the faster run of each
# kind (rules.{none,ten}.runN.* every run); rules.ratio_ten_none compares those. The ten-rule
# runs check the target: the renamed and derived columns exist, every row has a2 = 2 * amount,
# a 64-hex b, lower(b) in b_lower and a masked c; no alert fired and no rule was left out.
_bp_phase_rules() {
  local rows=$BP_RULES_ROWS timeout=$((60 + BP_RULES_ROWS / 4000))
  _bp_log "rules phase: the same backlog read with no rules and with 10 rules on t (Datavor -> SQLite, $rows rows)"
  _bp_reset_src
  local -a keys=(none ten ten none) runs=(1 1 2 2)
  local i name db home
  for i in "${!keys[@]}"; do
    name=rl_${keys[i]}_${runs[i]} db=$BP_WORK/rules-${keys[i]}-${runs[i]}.db home=$BP_WORK/home-rl_${keys[i]}_${runs[i]}
    rm -rf "$db" "$db-wal" "$db-shm" "$home"
    if [[ ${keys[i]} == ten ]] && ! _bp_rules_add "$home" "$name"; then
      _bp_put rules.error "add_rule over MCP failed: nothing measured"
      _bp_log "rules: RULES NOT ADDED: the phase measures nothing"
      BP_RULES_FAILED=1
      return 0
    fi
  done
  _bp_put rules.rules "$(python3 -c 'import json, sys; print("; ".join(" ".join(f"{k}={v}" for k, v in r.items() if k != "note") for r in json.loads(sys.argv[1])))' "$_bp_rules_json")"

  # Warm-up, as in the faults phase: each stream starts once, applies one transaction (its target
  # then has a committed position and its table), and stops. Their slots keep the WAL.
  local -a warm=()
  for i in "${!keys[@]}"; do warm+=("|rl_${keys[i]}_${runs[i]}|$BP_WORK/rules-${keys[i]}-${runs[i]}.db"); done
  _bp_warm_up_sqlite "${warm[@]}"

  _bp_log "rules: loading $rows rows with no consumer running"
  head -n "$((rows / 1000))" "$BP_WORK/ins.sql" >"$BP_WORK/rules-ins.sql"
  _bp_load "$BP_WORK/rules-ins.sql"
  _bp_record "rules.source_load" "$rows" "$BP_T0" - "$BP_T1"

  local key run t0 tdone cols counts n n_a2 n_b n_low n_c n_alerts skipped check
  for i in "${!keys[@]}"; do
    key=${keys[i]} run=${runs[i]}
    name=rl_${key}_$run db=$BP_WORK/rules-$key-$run.db home=$BP_WORK/home-rl_${key}_$run
    _bp_flush
    t0=$(_bp_now)
    _bp_dv_start "$name" "sqlite:$db" never nowait
    # The last row is kept by the filters: max(id) reaches RULES_ROWS when the load is applied.
    if tdone=$(_bp_wait sqlite "$db" "SELECT coalesce(max(id), 0) FROM t" "=$rows" "$timeout" "$BP_DV_PID"); then
      _bp_record "rules.$key.run$run" "$rows" "$t0" - "$tdone" "$(_bp_cpu "$BP_DV_PID")" "$(_bp_cpu "$(_bp_walsender "datavor_$name")")"
      _bp_put "rules.$key.run$run.peak_rss_mib" "$(python3 -c "import sys; print(f'{int(sys.argv[1] or 0) / 1024:.0f}')" "$(_bp_hwm "$BP_DV_PID")")"
    else
      _bp_put "rules.$key.run$run.error" "$(kill -0 "$BP_DV_PID" 2>/dev/null && echo timeout || echo 'datavor exited before the target had the load')"
      _bp_dv_status "$name" >&2
    fi
    _bp_put "rules.$key.run$run.status" "$(_bp_dv_status "$name")"
    _bp_dv_stop "$BP_DV_PID"

    # Checks: the target's shape and values say whether the rules were applied (or not).
    cols=$(sqlite3 "$db" "SELECT group_concat(name, ',') FROM pragma_table_info('t')" 2>/dev/null || true)
    _bp_put "rules.$key.run$run.target_columns" "$cols"
    check=pass
    if [[ $key == none ]]; then
      n=$(sqlite3 "$db" "SELECT count(*) FROM t" 2>/dev/null || echo 0)
      [[ $cols == id,a,b,c && $n == "$rows" ]] || check=fail
    else
      counts=$(sqlite3 -separator ' ' "$db" "SELECT count(*), count(*) FILTER (WHERE a2 = 2 * amount),
        count(*) FILTER (WHERE length(b) = 64 AND b NOT GLOB '*[^0-9a-f]*' AND b <> b_lower),
        count(*) FILTER (WHERE length(b_lower) = 32), count(*) FILTER (WHERE c GLOB '[*][*][*][*]*' AND length(c) > 4) FROM t" 2>/dev/null || echo "0 0 0 0 0")
      read -r n n_a2 n_b n_low n_c <<<"$counts"
      n_alerts=$(sqlite3 "file:$home/ledger.db?mode=ro" "SELECT count(*) FROM entries WHERE kind = 'alert'" 2>/dev/null || echo 0)
      skipped=$(grep -cE 'is not applied|is not watched' "$BP_WORK/dv-$name.log" || true)
      _bp_put "rules.$key.run$run.rows_checked" "$n rows; a2 = 2*amount: $n_a2; b sha256: $n_b; b_lower: $n_low; c masked: $n_c; alerts: $n_alerts; rules left out: $skipped"
      [[ $cols == id,amount,b,c,a2,b_lower && $n == "$rows" && $n_a2 == "$rows" && $n_b == "$rows" && $n_low == "$rows" && $n_c == "$rows" && $n_alerts == 0 && $skipped == 0 ]] || check=fail
    fi
    _bp_put "rules.$key.run$run.check" "$check"
    if [[ $check == fail ]]; then
      _bp_log "rules $key run $run: CHECK FAILED: target columns '$cols', $(grep -F "rules.$key.run$run.rows_checked" "$BP_RESULTS" | cut -f2)"
      BP_RULES_FAILED=1
    fi
  done

  # Summary: the faster run of each kind, and the ratio of those; Datavor's CPU per run, averaged.
  python3 - "$BP_RESULTS" <<'PY' | while IFS=$'\t' read -r k v; do _bp_put "$k" "$v"; done
import sys
flat = dict(l.rstrip('\n').split('\t', 1) for l in open(sys.argv[1]) if '\t' in l)
best = {}
for kind in ('none', 'ten'):
    runs = [r for r in ('run1', 'run2') if f'rules.{kind}.{r}.rows_per_s' in flat and flat[f'rules.{kind}.{r}.rows_per_s'] != 'null']
    if not runs: continue
    r = max(runs, key=lambda r: float(flat[f'rules.{kind}.{r}.rows_per_s']))
    for f in ('rows', 'seconds', 'rows_per_s', 'consumer_cpu_s', 'walsender_cpu_s'):
        print(f'rules.{kind}.{f}\t{flat[f"rules.{kind}.{r}.{f}"]}')
    print(f'rules.{kind}.best_of\t{r} of {len(runs)}')
    cpu = [float(flat[f'rules.{kind}.{x}.consumer_cpu_s']) for x in runs]
    print(f'rules.{kind}.consumer_cpu_s_mean\t{sum(cpu) / len(cpu):.2f}')
    best[kind] = (float(flat[f'rules.{kind}.{r}.rows_per_s']), sum(cpu) / len(cpu))
if len(best) == 2 and best['none'][0] > 0:
    print(f"rules.ratio_ten_none\t{best['ten'][0] / best['none'][0]:.3f}")
    if best['none'][1] > 0: print(f"rules.cpu_ratio_ten_none\t{best['ten'][1] / best['none'][1]:.3f}")
PY
  _bp_reset_src
}

# ------------------------------------------------------------------ large transaction

# VmHWM (peak resident set) of a live process, in KiB; empty if it is gone.
_bp_hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
# Size in bytes of a server's log (to read what a run added to it).
_bp_logsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
# ERROR/FATAL/timeout lines a server logged since byte offset $2 of log $1 (at most 3, one line).
_bp_log_problems() {
  tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -E 'ERROR|FATAL|PANIC|timeout' | head -n 3 | cut -c1-300 | tr '\n' '|' || true
}

# One measured run of the large transaction against a consumer that is already connected.
#   _bp_large_run KEY KIND TARGET QUERY EXPECTED CONSUMER-PID WALSENDER-PID [DATAVOR-LOG] [EXIT-FAILS] [TARGET-BACKEND-PID]
# Starts large_watch.py (memory, CPU, spill, the apply's start, the target's condition), runs
# the load, waits. Leaves the watcher's key=value lines in BP_LW (an associative array).
_bp_large_run() {
  local key=$1 kind=$2 target=$3 query=$4 expected=$5 pid=$6 ws=$7 log=${8:-} exit_fails=${9:-1} backend=${10:-}
  local out=$BP_WORK/large-$key.watch timeout=$((120 + BP_LARGE_ROWS / 8000)) wpid rc=0 c0 w0 b0 k v
  local srclog=$DATAVOR_TEST_PG_DIR/pg.log dstlog=$DATAVOR_TEST_DST_DIR/pg.log src_off dst_off
  src_off=$(_bp_logsize "$srclog")
  dst_off=$(_bp_logsize "$dstlog")
  rm -f "$BP_WORK/large-$key.endlsn"
  c0=$(_bp_cpu "$pid")
  w0=$(_bp_cpu "$ws")
  b0=$(_bp_cpu "$backend")
  python3 "$BP_WORK/large_watch.py" --kind "$kind" --target "$target" --query "$query" --expected "$expected" \
    --timeout "$timeout" --pid "$pid" --ws "$ws" --extra "$backend" --log "$log" --exit-fails "$exit_fails" \
    --series "$BP_WORK/large-$key-series.csv" >"$out" &
  wpid=$!
  _BP_PIDS+=("$wpid")
  _bp_log "large $key: loading $BP_LARGE_ROWS rows + $((BP_LARGE_ROWS / 10)) updates in one transaction"
  _bp_load "$BP_WORK/large.sql"
  echo "$BP_L" >"$BP_WORK/large-$key.endlsn"
  _bp_log "large $key: the source committed after $(_bp_sub "$BP_T1" "$BP_T0") s; waiting for the target"
  wait "$wpid" || rc=$?
  declare -gA BP_LW=()
  while IFS='=' read -r k v; do [[ -n "$k" ]] && BP_LW[$k]=$v; done <"$out"
  local p=large.$key
  _bp_put "$p.source_seconds" "$(_bp_sub "$BP_T1" "$BP_T0")"
  _bp_put "$p.wal_bytes" "$(_bp_src -At -c "SELECT pg_wal_lsn_diff('$BP_L', '$BP_L0')")"
  if ((rc == 0)); then
    local secs
    secs=$(_bp_sub "${BP_LW[done]}" "$BP_T0")
    _bp_put "$p.seconds" "$secs"
    _bp_put "$p.rows_per_s" "$(_bp_div "$BP_LARGE_ROWS" "$secs")"
    _bp_put "$p.changes_per_s" "$(_bp_div "$((BP_LARGE_ROWS + BP_LARGE_ROWS / 10))" "$secs")"
    _bp_put "$p.lag_after_source_s" "$(_bp_sub "${BP_LW[done]}" "$BP_T1")"
    _bp_log "large $key: the target has it $secs s after the load started ($(_bp_div "$BP_LARGE_ROWS" "$secs") rows/s)"
    if [[ -n "${BP_LW[apply_start]:-}" ]]; then
      _bp_put "$p.apply_start_after_commit_s" "$(_bp_sub "${BP_LW[apply_start]}" "$BP_T1")"
      _bp_put "$p.apply_seconds" "$(_bp_sub "${BP_LW[done]}" "${BP_LW[apply_start]}")"
      _bp_put "$p.consumer_cpu_until_apply_s" "$(_bp_sub "${BP_LW[cpu_at_apply_start]}" "$c0")"
      _bp_put "$p.consumer_cpu_apply_s" "$(_bp_sub "${BP_LW[cpu_done]}" "${BP_LW[cpu_at_apply_start]}")"
    fi
    if [[ -n "${BP_LW[cpu_done]:-}" ]]; then _bp_put "$p.consumer_cpu_s" "$(_bp_sub "${BP_LW[cpu_done]}" "$c0")"; fi
    if [[ -n "${BP_LW[ws_cpu_done]:-}" ]]; then _bp_put "$p.walsender_cpu_s" "$(_bp_sub "${BP_LW[ws_cpu_done]}" "$w0")"; fi
    if [[ -n "${BP_LW[extra_cpu_done]:-}" ]]; then _bp_put "$p.target_backend_cpu_s" "$(_bp_sub "${BP_LW[extra_cpu_done]}" "$b0")"; fi
  else
    _bp_put "$p.error" "${BP_LW[error]:-the watcher failed (exit $rc)}; last value ${BP_LW[last_value]:-?}"
    _bp_log "large $key: ${BP_LW[error]:-watcher failed}"
  fi
  [[ -n "${BP_LW[exit_seen]:-}" ]] && _bp_put "$p.consumer_exited_after_s" "$(_bp_sub "${BP_LW[exit_seen]}" "$BP_T0")"
  _bp_put "$p.rss_sampled_max_mib" "$((${BP_LW[rss_max_kb]:-0} / 1024))"
  _bp_put "$p.rss_anon_sampled_max_mib" "$((${BP_LW[rss_anon_max_kb]:-0} / 1024))"
  if [[ -n "${BP_LW[apply_line]:-}" ]]; then
    _bp_put "$p.apply_log_line" "${BP_LW[apply_line]}"
    _bp_put "$p.spill_changes" "$(sed -E 's/.*, ([0-9]+) changes, .*/\1/' <<<"${BP_LW[apply_line]}")"
    _bp_put "$p.spill_mib" "$(sed -E 's/.*, ([0-9]+) MiB spilled.*/\1/' <<<"${BP_LW[apply_line]}")"
  fi
  if ((${BP_LW[spill_max_bytes]:-0} > 0)); then _bp_put "$p.spill_sampled_max_mib" "$((BP_LW[spill_max_bytes] / 1048576))"; fi
  [[ -n "${BP_LW[log_problems]:-}" ]] && _bp_put "$p.log_problems" "${BP_LW[log_problems]}"
  local lp
  lp=$(_bp_log_problems "$srclog" "$src_off")
  [[ -n "$lp" ]] && _bp_put "$p.source_server_log" "$lp"
  lp=$(_bp_log_problems "$dstlog" "$dst_off")
  [[ -n "$lp" ]] && _bp_put "$p.target_server_log" "$lp"
  return 0
}

# How the server handed the transaction over: streamed in blocks (stream_*), or spilled to its
# own disk (spill_*) when the consumer did not take a stream. The walsender reports these
# counters when it exits: call this once the consumer has disconnected.
_bp_large_slot_stats() {
  local key=$1 slot=$2
  _bp_wait pg "$DATAVOR_TEST_PG_PORT" "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot' AND active" "=0" 30 >/dev/null || true
  sleep 1
  _bp_put "large.$key.slot_stats" "$(_bp_src -At -c "SELECT format('stream_txns %s, stream_count %s, stream_bytes %s MB, spill_txns %s, spill_bytes %s MB', stream_txns, stream_count, round(stream_bytes / 1e6), spill_txns, round(spill_bytes / 1e6)) FROM pg_stat_replication_slots WHERE slot_name = '$slot'")"
}

# Peak RSS of a process just before it is stopped, and whether it is under the issue's bound.
_bp_large_rss() {
  local key=$1 pid=$2 hwm
  hwm=$(_bp_hwm "$pid")
  if [[ -z "$hwm" ]]; then
    # Gone already (it failed): the watcher's last reading is the best there is.
    hwm=${BP_LW[hwm_kb]:-0}
    _bp_put "large.$key.peak_rss_source" "watcher (the process had exited)"
  fi
  _bp_put "large.$key.peak_rss_mib" "$(python3 -c "print(f'{$hwm / 1024:.1f}')")"
  _bp_put "large.$key.peak_rss_under_256mib" "$( ((hwm > 0 && hwm < 256 * 1024)) && echo pass || echo fail)"
  _bp_log "large $key: peak RSS (VmHWM) $((hwm / 1024)) MiB"
}

# The target must hold exactly LARGE_ROWS rows, LARGE_ROWS/10 of them updated.
#   _bp_large_check KEY ROWS UPDATED
_bp_large_check() {
  local key=$1 rows=$2 upd=$3 want_upd=$((BP_LARGE_ROWS / 10))
  _bp_put "large.$key.rows_target" "$rows"
  _bp_put "large.$key.updated_target" "$upd"
  if [[ "$rows" == "$BP_LARGE_ROWS" && "$upd" == "$want_upd" ]]; then
    _bp_put "large.$key.rows_check" pass
  else
    _bp_put "large.$key.rows_check" "fail"
    _bp_log "large $key: ROW CHECK FAILED: $rows rows ($BP_LARGE_ROWS expected), $upd updated ($want_upd expected)"
  fi
}

# Datavor into one target: start the stream, run the load, measure, stop, check.
#   _bp_large_datavor NAME KEY TARGET-URL KIND POLL-TARGET
#   KIND sqlite|pg: wait until the last row shows its update in the target (one transaction,
#   so that row is visible exactly when all are); slot: until the stream's slot has confirmed
#   the LSN after the load's COMMIT (JSON lines keep no position in a pipe).
_bp_large_datavor() {
  local name=$1 key=$2 url=$3 kind=$4 ptarget=$5 n=$BP_LARGE_ROWS pid ws backend='' query expected hwm0
  _bp_flush
  _bp_dv_start "$name" "$url" || { _bp_put "large.$key.error" "datavor did not start"; return 0; }
  pid=$BP_DV_PID
  ws=$(_bp_walsender "datavor_$name")
  hwm0=$(_bp_hwm "$pid")
  _bp_put "large.$key.rss_before_load_mib" "$((${hwm0:-0} / 1024))"
  if [[ $kind == slot ]]; then
    kind=pg
    ptarget=$DATAVOR_TEST_PG_PORT
    query="SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'datavor_$name'"
    expected="@$BP_WORK/large-$key.endlsn"
  else
    query="SELECT a FROM t WHERE id = $n"
    expected="=$BP_LARGE_EXPECT_A"
  fi
  if [[ $key == datavor_pg ]]; then backend=$(_bp_dv_backend); fi
  _bp_large_run "$key" "$kind" "$ptarget" "$query" "$expected" "$pid" "$ws" "$BP_WORK/dv-$name.log" 1 "$backend"
  _bp_large_rss "$key" "$pid"
  # A stream that applied the transaction but failed afterwards still counts as a failure.
  sleep 2
  _bp_put "large.$key.status" "$(_bp_dv_status "$name")"
  if ! kill -0 "$pid" 2>/dev/null || grep -q '^error: ' "$BP_WORK/dv-$name.log"; then
    _bp_put "large.$key.stream_error" "$(grep -m1 '^error: ' "$BP_WORK/dv-$name.log" | cut -c1-300 || echo 'the process exited')"
    _bp_log "large $key: the stream failed: $(grep -m1 '^error: ' "$BP_WORK/dv-$name.log" || true)"
  fi
  _bp_dv_stop "$pid"
  _bp_large_slot_stats "$key" "datavor_$name"
}

_bp_phase_large() {
  local n=$BP_LARGE_ROWS upd=$((BP_LARGE_ROWS / 10)) rows updated
  BP_LARGE_EXPECT_A=$((n % 1000 + (n % 10 == 0 ? 1 : 0)))
  _bp_log "large phase: one transaction of $n inserts and $upd updates"
  cat >"$BP_WORK/large.sql" <<SQL
BEGIN;
INSERT INTO t SELECT g, g % 1000, md5(g::text), now() FROM generate_series(1, $n) g;
UPDATE t SET a = a + 1, c = now() WHERE id % 10 = 0;
COMMIT;
SQL
  _bp_put large.rows "$n"
  _bp_put large.updates "$upd"
  _bp_put large.logical_decoding_work_mem "$(_bp_src -At -c 'SHOW logical_decoding_work_mem')"

  # The load alone: no slot, no publication.
  _bp_reset_src
  _bp_flush
  _bp_load "$BP_WORK/large.sql"
  _bp_put large.source_load.seconds "$(_bp_sub "$BP_T1" "$BP_T0")"
  _bp_put large.source_load.rows_per_s "$(_bp_div "$n" "$(_bp_sub "$BP_T1" "$BP_T0")")"
  _bp_put large.source_load.wal_bytes "$(_bp_src -At -c "SELECT pg_wal_lsn_diff('$BP_L', '$BP_L0')")"
  _bp_log "large: the load alone took $(_bp_sub "$BP_T1" "$BP_T0") s"

  # Datavor -> SQLite
  _bp_reset_src
  rm -f "$BP_WORK/large.db"*
  _bp_large_datavor large_sqlite datavor_sqlite "sqlite:$BP_WORK/large.db" sqlite "$BP_WORK/large.db"
  read -r rows updated < <(sqlite3 -separator ' ' "$BP_WORK/large.db" "SELECT count(*), coalesce(sum(a - id % 1000), 0) FROM t" 2>/dev/null || echo "0 0")
  _bp_large_check datavor_sqlite "$rows" "$updated"
  rm -f "$BP_WORK/large.db"*

  # Datavor -> JSON lines: a FIFO read by `wc -l` stands in for /dev/null, so that the
  # lines can be counted (one per change: inserts + updates).
  if ((BP_HAS_JSONL)); then
    _bp_reset_src
    rm -f "$BP_WORK/large.jsonl" "$BP_WORK/large.jsonl.count"
    mkfifo "$BP_WORK/large.jsonl"
    wc -l <"$BP_WORK/large.jsonl" >"$BP_WORK/large.jsonl.count" &
    local wc_pid=$!
    _BP_PIDS+=("$wc_pid")
    _bp_large_datavor large_jsonl datavor_jsonl "jsonl:$BP_WORK/large.jsonl" slot -
    # If datavor never opened the FIFO, wc still waits for a writer: give it one (and EOF).
    if kill -0 "$wc_pid" 2>/dev/null; then timeout 5 bash -c ': >"$1"' _ "$BP_WORK/large.jsonl" || true; fi
    wait "$wc_pid" 2>/dev/null || true
    local lines
    lines=$(cat "$BP_WORK/large.jsonl.count" 2>/dev/null || echo 0)
    _bp_put large.datavor_jsonl.lines "$lines"
    # Lines count inserts and updates together; rows = lines - updates when the total is right.
    if [[ "$lines" == "$((n + upd))" ]]; then _bp_large_check datavor_jsonl "$n" "$upd"; else _bp_large_check datavor_jsonl "$((lines - upd))" "?"; fi
    rm -f "$BP_WORK/large.jsonl"
  fi

  # Datavor -> PostgreSQL (second server, database dv)
  if ((BP_HAS_PGSINK)); then
    _bp_reset_src
    BP_DSTDB=dv _bp_reset_dst
    _bp_large_datavor large_pg datavor_pg "$BP_DST_DV_URL" pg "$DATAVOR_TEST_DST_PORT/dv"
    read -r rows updated < <(BP_DSTDB=dv _bp_dst -At -F ' ' -c "SELECT count(*), coalesce(sum(a - id % 1000), 0) FROM t" 2>/dev/null || echo "0 0")
    _bp_large_check datavor_pg "$rows" "$updated"
    BP_DSTDB=dv _bp_dst -c "DROP TABLE IF EXISTS t" -c "CHECKPOINT" >/dev/null
  fi

  # Native logical replication, the subscription with streaming = on (PostgreSQL 15: the
  # apply worker spools the streamed blocks to files and applies them at the commit).
  _bp_reset_src
  _bp_src -c "CREATE PUBLICATION bench_pub FOR TABLE t" >/dev/null
  BP_DSTDB=postgres _bp_reset_dst
  _bp_flush
  _bp_dst -c "CREATE SUBSCRIPTION bench_large CONNECTION '$BP_SUBCONN' PUBLICATION bench_pub WITH (copy_data = false, streaming = on)" >/dev/null
  _bp_wait pg "$DATAVOR_TEST_PG_PORT" "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'bench_large' AND state = 'streaming'" "=1" 60 >/dev/null
  local apply_pid ws
  apply_pid=$(_bp_dst -At -c "SELECT coalesce(max(pid)::text, '') FROM pg_stat_subscription WHERE subname = 'bench_large'")
  ws=$(_bp_walsender bench_large)
  _bp_put large.native.subscription "$(_bp_dst -At -c "SELECT 'streaming = ' || CASE WHEN substream THEN 'on' ELSE 'off' END FROM pg_subscription WHERE subname = 'bench_large'")"
  # The apply worker is restarted if it fails: its exit does not end the wait.
  _bp_large_run native pg "$DATAVOR_TEST_DST_PORT" "SELECT a FROM t WHERE id = $n" "=$BP_LARGE_EXPECT_A" "$apply_pid" "$ws" "" 0
  if kill -0 "$apply_pid" 2>/dev/null; then
    _bp_put large.native.apply_worker_peak_rss_mib "$(python3 -c "print(f'{$(_bp_hwm "$apply_pid") / 1024:.1f}')")"
  fi
  read -r rows updated < <(_bp_dst -At -F ' ' -c "SELECT count(*), coalesce(sum(a - id % 1000), 0) FROM t" 2>/dev/null || echo "0 0")
  _bp_large_check native "$rows" "$updated"
  _bp_dst -c "ALTER SUBSCRIPTION bench_large DISABLE" >/dev/null
  _bp_large_slot_stats native bench_large
  _bp_dst -c "DROP SUBSCRIPTION bench_large" >/dev/null
  _bp_dst -c "DROP TABLE IF EXISTS t" -c "CHECKPOINT" >/dev/null
  _bp_reset_src
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
if any(k.startswith(('live.', 'backlog.')) for k in flat):
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

if any(k.startswith('faults.') and k.count('.') >= 2 for k in flat):
    print(f"\n### Rows the target rejects, and the ledger's cost (Datavor → SQLite, backlog: {rows:,} rows in 1,000-row transactions)\n")
    print(f"Load first, then the stream reads it. Bad rows: {g('faults.bad_rows_rule')} ({num(g('faults.bad_rows_expected'))} rows); "
          "rows/s counts every source row, bad ones included. The bad-rows run is caught up when the last row is in the target "
          "and every failed row is in the ledger.\n")
    print('| run | ledger | rows/s | seconds | CPU s: consumer, walsender | target rows | ledger: batches (with SHA-256), failed rows | ledger size | check | notes |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for key, label in (('clean', 'clean'), ('bad_rows', '1% bad rows'), ('ledger_batches', 'clean'), ('ledger_off', 'clean')):
        k = f'faults.{key}'
        if not any(x.startswith(k + '.') for x in flat): continue
        cpu = '–' if g(f'{k}.consumer_cpu_s') is None else f"{g(f'{k}.consumer_cpu_s'):.1f}, {num(g(f'{k}.walsender_cpu_s'), '{:.1f}')}"
        led = f"{num(g(f'{k}.ledger_batch_entries'))} ({num(g(f'{k}.ledger_checksummed_batches'))}), {num(g(f'{k}.ledger_failed_rows'))}"
        b = g(f'{k}.ledger_bytes') or 0
        size = f'{b / 1e6:.1f} MB' if b >= 1e6 else f'{b / 1e3:.0f} kB'
        notes = []
        if g(f'{k}.error'): notes.append(f"**{g(f'{k}.error')}**")
        if g(f'{k}.fallback_batches') is not None: notes.append(f"{num(g(f'{k}.fallback_batches'))} batches rejected and applied again change by change")
        if g(f'{k}.ledger_after_target_s') is not None: notes.append(f"failed rows in the ledger {g(f'{k}.ledger_after_target_s'):.2f} s after the target")
        if g(f'{k}.failed_by_class'): notes.append(f"failed: {g(f'{k}.failed_by_class')}")
        print(f"| {label} | {g(f'{k}.ledger') or '–'} | {num(g(f'{k}.rows_per_s'))} | {num(g(f'{k}.seconds'), '{:.2f}')} | {cpu} | "
              f"{num(g(f'{k}.rows_target'))} | {led} | {size} | {g(f'{k}.check') or '–'} | {'; '.join(notes)} |")

if any(k.startswith('rules.') for k in flat):
    print(f"\n### Ten rules on one table (Datavor → SQLite, backlog: {num(g('meta.rules_rows'))} inserts in 1,000-row transactions)\n")
    print(f"Load first, then the stream reads it; runs in the order none, ten, ten, none, the faster of each kind compared. "
          f"Rules (added over MCP before the streams start): {g('rules.rules') or '–'}.\n")
    if g('rules.error'): print(f"**{g('rules.error')}**\n")
    print('| run | rules | rows/s | seconds | CPU s: consumer, walsender | peak RSS | target columns | check | notes |')
    print('|---|---|---|---|---|---|---|---|---|')
    for key, n_rules in (('none', 0), ('ten', 10)):
        for r in ('run1', 'run2'):
            k = f'rules.{key}.{r}'
            if not any(x.startswith(k + '.') for x in flat): continue
            cpu = '–' if g(f'{k}.consumer_cpu_s') is None else f"{g(f'{k}.consumer_cpu_s'):.1f}, {num(g(f'{k}.walsender_cpu_s'), '{:.1f}')}"
            notes = [x for x in (g(f'{k}.error') and f"**{g(f'{k}.error')}**", g(f'{k}.rows_checked')) if x]
            print(f"| {key} {r[3:]} | {n_rules} | {num(g(f'{k}.rows_per_s'))} | {num(g(f'{k}.seconds'), '{:.2f}')} | {cpu} | "
                  f"{num(g(f'{k}.peak_rss_mib'), '{:.0f} MiB')} | "
                  f"{g(f'{k}.target_columns') or '–'} | {g(f'{k}.check') or '–'} | {'; '.join(notes)} |")

if g('large.rows') is not None:
    n, u = g('large.rows'), g('large.updates') or 0
    print(f"\n### Large transaction: {n:,} inserts + {u:,} updates in one transaction\n")
    print(f"The load alone (psql, no slot): {num(g('large.source_load.seconds'), '{:.1f}')} s, "
          f"WAL {num((g('large.source_load.wal_bytes') or 0) / 1e6)} MB; logical_decoding_work_mem {g('large.logical_decoding_work_mem')}.\n")
    print('| consumer | load start → target has it | rows/s | source COMMIT returned after | COMMIT → apply starts | apply | CPU s: consumer (until apply / apply), walsender[, target backend] | peak RSS (VmHWM) | RSS < 256 MiB | spilled | rows check |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    notes = []
    for key, label in (('datavor_sqlite', 'Datavor → SQLite'), ('datavor_jsonl', 'Datavor → JSON lines (pipe to `wc -l`)'),
                       ('datavor_pg', 'Datavor → PostgreSQL'), ('native', 'native logical replication (streaming = on)')):
        k = f'large.{key}'
        if not any(x.startswith(k + '.') for x in flat): continue
        err = g(f'{k}.error')
        total = f"**{err}**" if err else num(g(f'{k}.seconds'), '{:.1f} s')
        cu, ca, ct = g(f'{k}.consumer_cpu_until_apply_s'), g(f'{k}.consumer_cpu_apply_s'), g(f'{k}.consumer_cpu_s')
        cpu = f'{cu:.1f} / {ca:.1f}' if isinstance(cu, (int, float)) and isinstance(ca, (int, float)) else num(ct, '{:.1f}')
        cpu += ', ' + num(g(f'{k}.walsender_cpu_s'), '{:.1f}')
        if isinstance(g(f'{k}.target_backend_cpu_s'), (int, float)): cpu += f", {g(f'{k}.target_backend_cpu_s'):.1f}"
        if key == 'native':
            rss = f"{num(g(f'{k}.apply_worker_peak_rss_mib'), '{:.0f}')} MiB apply worker (anon {num(g(f'{k}.rss_anon_sampled_max_mib'), '{:.0f}')} MiB)"
            under = '–'
        else:
            rss = f"{num(g(f'{k}.peak_rss_mib'), '{:.0f}')} MiB (anon {num(g(f'{k}.rss_anon_sampled_max_mib'), '{:.0f}')} MiB)"
            under = g(f'{k}.peak_rss_under_256mib') or '–'
        spilled = f"{num(g(f'{k}.spill_mib'))} MiB ({num(g(f'{k}.spill_changes'))} changes)" if g(f'{k}.spill_mib') is not None else '–'
        check = f"{g(f'{k}.rows_check') or '–'} ({num(g(f'{k}.rows_target'))} rows)"
        print(f"| {label} | {total} | {num(g(f'{k}.rows_per_s'))} | {num(g(f'{k}.source_seconds'), '{:.1f} s')} | "
              f"{num(g(f'{k}.apply_start_after_commit_s'), '{:.1f} s')} | {num(g(f'{k}.apply_seconds'), '{:.1f} s')} | {cpu} | {rss} | {under} | {spilled} | {check} |")
        for x, what in (('log_problems', 'log'), ('source_server_log', 'source server log'), ('target_server_log', 'target server log'),
                        ('consumer_exited_after_s', 'the consumer process exited after (s)'), ('stream_error', '**the stream failed after the run**'),
                        ('slot_stats', 'pg_stat_replication_slots')):
            if g(f'{k}.{x}') is not None: notes.append(f'- {label}, {what}: {g(f"{k}.{x}")}')
    if notes:
        print()
        print('\n'.join(notes))

if any(k.startswith(('live.', 'backlog.', 'latency.', 'snapshot.', 'faults.', 'rules.')) for k in flat):
    print('\n### Ratios against the issue\'s goals\n')
    print('| goal | Datavor | peer | ratio | met |')
    print('|---|---|---|---|---|')
    def ratio(label, a_key, b_key, goal, a_label='', b_label=''):  # goal None: informational
        a, b = g(a_key), g(b_key)
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
            print(f'| {label} | {num(a)} | {num(b)} | – | not measured |'); return
        r = a / b
        met = '–' if goal is None else f"{'yes' if r >= goal else 'no'} (≥ {goal}×)"
        print(f"| {label} | {num(a)} rows/s{a_label} | {num(b)} rows/s{b_label} | {r:.2f}× | {met} |")
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
    if any(k.startswith('faults.') for k in flat):
        ratio('1% bad rows / clean (SQLite)', 'faults.bad_rows.rows_per_s', 'faults.clean.rows_per_s', 0.7, '', ' (clean)')
        ratio('ledger batches-only / full (SQLite, clean)', 'faults.ledger_batches.rows_per_s', 'faults.clean.rows_per_s', None, '', ' (full)')
        ratio('ledger off / full (SQLite, clean)', 'faults.ledger_off.rows_per_s', 'faults.clean.rows_per_s', None, '', ' (full)')
    if any(k.startswith('rules.') for k in flat):
        ratio('10 rules / no rules (SQLite, backlog inserts, faster of 2 runs each)', 'rules.ten.rows_per_s', 'rules.none.rows_per_s', 0.85, ' (10 rules)', ' (none)')
        a, b = g('rules.ten.consumer_cpu_s_mean'), g('rules.none.consumer_cpu_s_mean')
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b > 0:
            print(f"| Datavor CPU, 10 rules / no rules (mean of the runs) | {a:.2f} s | {b:.2f} s | {a / b:.2f}× | – |")
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
  BP_LARGE_ROWS=10000000
  BP_RULES_ROWS=
  BP_RULES_FAILED=0
  local skip="" profile=0 rows_given=0
  while (($#)); do
    case $1 in
      --rows) BP_ROWS=$2; rows_given=1; shift 2 ;;
      --snapshot-rows) BP_SNAP_ROWS=$2; shift 2 ;;
      --latency-seconds) BP_LAT_SECONDS=$2; shift 2 ;;
      --rates) BP_RATES=$2; shift 2 ;;
      --large-rows) BP_LARGE_ROWS=$2; shift 2 ;;
      --rules-rows) BP_RULES_ROWS=$2; shift 2 ;;
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
  if ! [[ "$BP_LARGE_ROWS" =~ ^[0-9]+$ ]] || ((BP_LARGE_ROWS < 10)); then
    printf 'scripts/bench pg: --large-rows must be a number of at least 10\n' >&2
    return 2
  fi
  BP_SNAP_ROWS=${BP_SNAP_ROWS:-$((2 * BP_ROWS))}
  BP_RULES_ROWS=${BP_RULES_ROWS:-$((BP_ROWS / 2000 * 1000))}
  if ! [[ "$BP_RULES_ROWS" =~ ^[0-9]+$ ]] || ((BP_RULES_ROWS < 1000 || BP_RULES_ROWS % 1000 != 0 || BP_RULES_ROWS > BP_ROWS)); then
    printf 'scripts/bench pg: --rules-rows must be a positive multiple of 1000, at most --rows\n' >&2
    return 2
  fi
  if [[ -n "${DATAVOR_BENCH_BIN:-}" ]]; then
    BP_DATAVOR=$(realpath "$DATAVOR_BENCH_BIN")
  else
    BP_DATAVOR=$PWD/build/server/datavor
    [[ -x "$BP_DATAVOR" ]] || cmake --build build -j2 --target datavor >/dev/null
  fi
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
  _bp_put meta.datavor_bin "$BP_DATAVOR"
  _bp_put meta.large_rows "$BP_LARGE_ROWS"
  _bp_put meta.rules_rows "$BP_RULES_ROWS"

  local started
  started=$(_bp_now)
  local phase
  for phase in backlog live pgcopydb latency snapshot faults rules large; do
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
  cp "$BP_WORK"/large-*.csv "$BP_WORK"/large-*.watch "${out%.json}-logs/" 2>/dev/null || true
  _bp_log "saved $out (logs in ${out%.json}-logs/)"
  if ((BP_RULES_FAILED)); then
    _bp_log "RULES PHASE FAILED: the rules were not added, or a target does not show what its rules do (rules.*.check, rules.error)"
    return 1
  fi
}
