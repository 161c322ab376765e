#include "connectors/pg/pg_writer.hpp"

#include "connectors/common/sql_quote.hpp"
#include "connectors/pg/pg_session.hpp"

#include <algorithm>

namespace asio = boost::asio;

namespace datavor::connectors::pg {
namespace {

// Run lengths from which COPY pays: a run costs two round trips of its own
// through COPY, none row by row through the pipeline, where the server runs
// one statement per row. Measured on loopback (BENCHMARKS.md, runs
// alternating between two tables): a plain COPY of inserts beats the
// pipeline from about 32 rows, a staged run (COPY into the staging table,
// TRUNCATE between runs, the merge) from about 200.
constexpr std::size_t direct_min_rows = 64;
constexpr std::size_t staged_min_rows = 256;
// After a plain COPY into a table met a key it already held, that many of the
// table's next insert runs go through staging straight away.
constexpr int direct_backoff_runs = 16;
constexpr std::size_t copy_chunk_bytes = 256 * 1024;
// The initial snapshot commits at least this often (one transaction per table otherwise).
constexpr std::size_t snapshot_copy_rows = 1000000;
constexpr const char* unique_violation = "23505";

const char* position_sql =
    "INSERT INTO public._datavor_offsets (stream, position, updated_at) VALUES ($1, $2::pg_lsn, now()) "
    "ON CONFLICT (stream) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at";

bool same_table(const table_schema* a, const table_schema* b) {
    return a == b || (a->relation_id == b->relation_id && a->version == b->version && a->schema == b->schema &&
                      a->name == b->name);
}

}  // namespace

void pg_writer::attach(pg_session* db, std::string stream) {
    db_ = db;
    stream_ = std::move(stream);
    tables_.clear();
    pending_.clear();
    staged_.clear();
    snap_table_.reset();
    snap_rows_ = 0;
    txn_open_ = false;
}

// Opens a target transaction. One still open failed (the engine goes on
// with the same sink after a data error, to apply change by change): it
// is rolled back first.
void pg_writer::begin() {
    if (txn_open_) forget_failed("ROLLBACK");
    staged_.clear();
    pending_.push_back("BEGIN");
    txn_open_ = true;
}

// After a failure the server skipped or undid statements, so what this
// session believes it created (staging tables, prepared statements) may
// be gone: forgotten, and `undo` runs first. What was queued for the
// failed work is dropped; when it never reached the server (its opening
// statement still queued), there is nothing to undo.
void pg_writer::forget_failed(const std::string& undo) {
    const std::string opening = undo == "ROLLBACK" ? "BEGIN" : "SAVEPOINT datavor_part";
    if (auto it = std::find(pending_.begin(), pending_.end(), opening); it != pending_.end()) {
        pending_.erase(it, pending_.end());
        return;
    }
    pending_.clear();
    pending_.push_back(undo);
    if (undo != "ROLLBACK") pending_.push_back("RELEASE SAVEPOINT datavor_part");
    pending_.push_back("DEALLOCATE ALL");
    for (auto& [id, ts] : tables_) {
        ts.statements.clear();
        ts.upsert_stage_made = ts.erase_stage_made = false;  // created again IF NOT EXISTS
    }
}

// Ends the snapshot's open COPY and commits it; every other operation
// starts with this.
asio::awaitable<void> pg_writer::end_snapshot_copy() {
    if (!snap_table_) co_return;
    snap_table_.reset();
    if (auto err = co_await db_->end_copy_in()) throw *err;
    co_await db_->simple_query("COMMIT");
    txn_open_ = false;
}

pg_writer::table_state& pg_writer::state_of(const table_schema& t) {
    auto& s = tables_[t.relation_id];
    if (!s.sql || s.version != t.version || s.schema != t.schema || s.name != t.name) {
        s = table_state{};
        s.version = t.version;
        s.schema = t.schema;
        s.name = t.name;
        s.sql.emplace(t);
        for (std::size_t i = 0; i < t.columns.size(); ++i) s.all.push_back(i);
        s.upsert_stage = "datavor_stage_" + std::to_string(++names_);
        s.erase_stage = "datavor_stage_" + std::to_string(++names_);
    }
    return s;
}

// The pending statements, to run ahead of a simple query.
std::string pg_writer::take_pending() {
    std::string out;
    for (auto& p : pending_) out += p + ";\n";
    pending_.clear();
    return out;
}

// Sends the pending statements into the pipeline, ahead of what follows.
void pg_writer::pending_to_pipeline() {
    for (const auto& p : pending_) db_->pipeline_exec(p, 0, nullptr);
    pending_.clear();
}

// Runs everything queued so far.
asio::awaitable<void> pg_writer::drain() {
    if (db_->in_pipeline()) {
        pending_to_pipeline();
        co_await db_->pipeline_sync();
    } else if (!pending_.empty()) {
        std::string sql = take_pending();
        co_await db_->simple_query(std::move(sql));
    }
}

void pg_writer::queue_position(lsn position) {
    pending_to_pipeline();
    const std::string pos = position.to_string();
    const char* values[] = {stream_.c_str(), pos.c_str()};
    db_->pipeline_exec(position_sql, 2, values);
}

asio::awaitable<void> pg_writer::commit(lsn position) {
    queue_position(position);
    db_->pipeline_exec("COMMIT", 0, nullptr);
    co_await db_->pipeline_sync();
    txn_open_ = false;
    staged_.clear();  // ON COMMIT DELETE ROWS emptied them
}

const std::string& pg_writer::prepared(table_state& ts, const std::string& shape, const std::string& sql) {
    auto it = ts.statements.find(shape);
    if (it != ts.statements.end()) return it->second;
    std::string name = "datavor_" + std::to_string(++names_);
    db_->pipeline_prepare(name, sql);
    return ts.statements.emplace(shape, std::move(name)).first->second;
}

// The key of `r`: its NULL mask ('1' = NULL) and its other values, bound.
std::string pg_writer::bind_key(const table_state& ts, const row& r) {
    std::string nulls;
    for (auto k : ts.sql->keys()) {
        const value& v = r[k];
        nulls += v.is_null() ? '1' : '0';
        if (!v.is_null()) params_.push_back(v.data.c_str());
    }
    return nulls;
}
void pg_writer::bind_columns(const row& r, const std::vector<std::size_t>& columns) {
    for (auto c : columns) params_.push_back(r[c].is_null() ? nullptr : r[c].data.c_str());
}
std::string pg_writer::columns_shape(const std::vector<std::size_t>& columns) {
    std::string out;
    for (auto c : columns) out += std::to_string(c) + ",";
    return out;
}
void pg_writer::exec(const std::string& name) {
    db_->pipeline_exec_prepared(name, static_cast<int>(params_.size()), params_.data());
}

// One action as prepared statements, queued in the pipeline.
void pg_writer::write_row(table_state& ts, const apply_action& a) {
    pending_to_pipeline();
    params_.clear();
    const table_sql& sql = *ts.sql;
    switch (a.k) {
        case apply_action::kind::upsert: {
            for (const auto& v : *a.values) params_.push_back(v.is_null() ? nullptr : v.data.c_str());
            exec(prepared(ts, "u", sql.upsert()));
            break;
        }
        case apply_action::kind::update: {
            bind_columns(*a.values, *a.columns);
            const auto nulls = bind_key(ts, *a.values);
            exec(prepared(ts, "p" + nulls + ":" + columns_shape(*a.columns), sql.update(*a.columns, nulls)));
            break;
        }
        case apply_action::kind::erase: {
            const auto nulls = bind_key(ts, *a.values);
            exec(prepared(ts, "d" + nulls, sql.erase(nulls)));
            break;
        }
        case apply_action::kind::move: {
            // The old row goes if the new key is there already; then the
            // new key's row is updated, else the old row moves.
            const auto old_nulls = bind_key(ts, *a.old_key);
            const auto new_nulls = bind_key(ts, *a.values);
            exec(prepared(ts, "m" + old_nulls + new_nulls, sql.move_erase_old(old_nulls, new_nulls)));
            const auto shape = columns_shape(*a.columns);
            for (const row* key : {a.values, a.old_key}) {
                params_.clear();
                bind_columns(*a.values, *a.columns);
                const auto nulls = bind_key(ts, *key);
                exec(prepared(ts, "p" + nulls + ":" + shape, sql.update(*a.columns, nulls)));
            }
            break;
        }
        case apply_action::kind::truncate: db_->pipeline_exec(sql.truncate(), 0, nullptr); break;
    }
}

// Starts a COPY … FROM STDIN, the pending statements ahead of it.
asio::awaitable<void> pg_writer::start_copy(std::string sql) {
    if (db_->in_pipeline()) co_await db_->pipeline_sync();
    std::string all = take_pending() + sql;
    co_await db_->start_copy_in(std::move(all));
}

// The run's rows as COPY text, the given columns of each (a delete's
// key columns); `seq` numbers them first (staging).
asio::awaitable<void> pg_writer::send_rows(std::span<const apply_action> run, const std::vector<std::size_t>& columns,
                                           bool seq) {
    std::string buf;
    buf.reserve(copy_chunk_bytes + 4096);
    for (std::size_t i = 0; i < run.size(); ++i) {
        if (seq) {
            buf += std::to_string(i);
            buf += '\t';
        }
        const row& r = *run[i].values;
        for (std::size_t c = 0; c < columns.size(); ++c) {
            if (c) buf += '\t';
            append_copy_field(buf, r[columns[c]]);
        }
        buf += '\n';
        if (buf.size() >= copy_chunk_bytes) {
            co_await db_->put_copy_data(buf);
            buf.clear();
        }
    }
    if (!buf.empty()) co_await db_->put_copy_data(buf);
}

// A run of inserts straight into the table, inside a savepoint: false
// (and rolled back) when the table already held one of the keys.
asio::awaitable<bool> pg_writer::copy_direct(table_state& ts, std::span<const apply_action> run) {
    std::string sql = "SAVEPOINT datavor_run;\n" + ts.sql->copy_into_target();
    co_await start_copy(std::move(sql));
    co_await send_rows(run, ts.all, false);
    auto err = co_await db_->end_copy_in();
    if (!err) {
        pending_.push_back("RELEASE SAVEPOINT datavor_run");
        co_return true;
    }
    if (err->sqlstate() != unique_violation) throw *err;
    pending_.push_back("ROLLBACK TO SAVEPOINT datavor_run");
    pending_.push_back("RELEASE SAVEPOINT datavor_run");
    co_return false;
}

// Readies a staging table for a run: created at first use, emptied when
// an earlier run of this transaction filled it.
void pg_writer::ready_stage(const std::string& stage, bool& made, const std::string& create) {
    if (!made) pending_.push_back(create);
    if (staged_.contains(stage)) pending_.push_back("TRUNCATE pg_temp." + quote_pg_ident(stage));
}

// A run through a staging table: whole rows upserted, carried columns
// updated, or keys deleted.
asio::awaitable<void> pg_writer::copy_staged(table_state& ts, std::span<const apply_action> run) {
    const auto k = run.front().k;
    const bool erase = k == apply_action::kind::erase;
    const table_sql& q = *ts.sql;
    const std::string& stage = erase ? ts.erase_stage : ts.upsert_stage;
    bool& made = erase ? ts.erase_stage_made : ts.upsert_stage_made;
    ready_stage(stage, made, erase ? q.create_erase_stage(stage) : q.create_upsert_stage(stage));
    std::string sql;
    std::vector<std::size_t> columns;  // what is copied, from each row
    if (erase) {
        columns = q.keys();
        sql = q.copy_into_erase_stage(stage) + ";\n" + q.merge_erase_stage(stage);
    } else if (k == apply_action::kind::upsert) {
        columns = ts.all;
        sql = q.copy_into_upsert_stage(stage, nullptr) + ";\n" + q.merge_upsert_stage(stage);
    } else {
        const auto& carried = *run.front().columns;
        columns = carried;
        for (auto key : q.keys())
            if (std::find(columns.begin(), columns.end(), key) == columns.end()) columns.push_back(key);
        sql = q.copy_into_upsert_stage(stage, &columns) + ";\n" + q.merge_update_stage(stage, carried);
    }
    co_await start_copy(std::move(sql));
    // Deletes stage their keys as c0, c1, …: positions, not the columns' indexes.
    co_await send_rows(run, columns, !erase);
    if (auto err = co_await db_->end_copy_in()) throw *err;
    made = true;
    staged_.insert(stage);
}

// Applies the actions in order, run by run.
asio::awaitable<void> pg_writer::write(std::span<const apply_action> actions) {
    for (std::size_t i = 0; i < actions.size();) {
        const auto run = actions.subspan(i, run_length(actions.subspan(i)));
        i += run.size();
        auto& ts = state_of(*run.front().table);
        const auto& first = run.front();
        const bool stageable = !first.solo && first.k != apply_action::kind::truncate;
        const bool inserts = first.k == apply_action::kind::upsert &&
                             std::all_of(run.begin(), run.end(), [](const apply_action& a) { return a.insert; });
        if (inserts && ts.direct_skip == 0 && run.size() >= direct_min_rows) {
            if (co_await copy_direct(ts, run)) continue;
            ts.direct_skip = direct_backoff_runs;
        } else if (inserts && ts.direct_skip > 0) {
            --ts.direct_skip;
        }
        if (stageable && run.size() >= staged_min_rows) {
            co_await copy_staged(ts, run);
        } else {
            for (const auto& a : run) write_row(ts, a);
        }
    }
}

void pg_writer::add(const change_event& c, std::vector<apply_action>& out, std::deque<update_plan>& plans) {
    add_actions(c, state_of(*c.table).sql->keys(), out, plans);
}

asio::awaitable<void> pg_writer::write_position(lsn position) {
    co_await end_snapshot_copy();
    if (txn_open_) {  // a transaction that failed
        forget_failed("ROLLBACK");
        txn_open_ = false;
    }
    queue_position(position);
    co_await db_->pipeline_sync();
}

asio::awaitable<void> pg_writer::rollback_part() {
    if (db_->in_pipeline()) co_await db_->pipeline_sync();
    forget_failed("ROLLBACK TO SAVEPOINT datavor_part");
}

asio::awaitable<void> pg_writer::sync() {
    if (db_->in_pipeline()) co_await db_->pipeline_sync();
}

asio::awaitable<void> pg_writer::run_after_queued(std::string sql) {
    co_await end_snapshot_copy();
    if (db_->in_pipeline()) co_await db_->pipeline_sync();
    sql = take_pending() + sql;
    co_await db_->simple_query(std::move(sql));
}

// The initial snapshot goes into tables the stream has just emptied
// (prepare_table with truncate, before the first batch; a stream that dies
// mid-snapshot commits no position, so it starts over with a new snapshot and
// empties them again), and a primary key or replica identity index makes the
// source's rows unique: a plain COPY, kept open across batches, is exact.
// Under REPLICA IDENTITY FULL the source may hold the same row twice: those
// batches take the savepoint path and keep one.
asio::awaitable<void> pg_writer::write_snapshot(const snapshot_batch& batch) {
    if (batch.rows.empty() && !batch.table_done) co_return;
    const table_schema& t = *batch.table;
    std::vector<apply_action> actions(batch.rows.size());
    for (std::size_t i = 0; i < batch.rows.size(); ++i) {
        actions[i].table = &t;
        actions[i].insert = true;
        actions[i].values = &batch.rows[i];
    }
    if (snap_table_ && !same_table(snap_table_.get(), &t)) co_await end_snapshot_copy();
    if (t.replica_identity == 'f') {
        begin();
        co_await write(actions);
        pending_.push_back("COMMIT");
        co_await drain();
        txn_open_ = false;
        staged_.clear();
        co_return;
    }
    auto& ts = state_of(t);
    if (!snap_table_ && !actions.empty()) {
        begin();
        std::string sql = ts.sql->copy_into_target();
        co_await start_copy(std::move(sql));
        snap_table_ = batch.table;
        snap_rows_ = 0;
    }
    if (!actions.empty()) co_await send_rows(actions, ts.all, false);
    snap_rows_ += actions.size();
    if (batch.table_done || snap_rows_ >= snapshot_copy_rows) co_await end_snapshot_copy();
}

}  // namespace datavor::connectors::pg
