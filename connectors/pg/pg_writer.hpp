#pragma once
// The I/O half of pg_sink: writes runs of actions (apply_plan.hpp) into one
// PostgreSQL session, in order, with as few round trips as the protocol
// allows. A run goes through COPY when it is long enough (straight into the
// table for inserts, inside a savepoint; through a temporary staging table
// and one merge statement otherwise), else row by row as prepared statements
// queued in pipeline mode. Parameter-free statements (BEGIN, SAVEPOINT,
// RELEASE, CREATE TEMPORARY TABLE, TRUNCATE of a stage) wait in a queue and
// ride in front of the next COPY or pipeline, so they cost no round trip.
//
// Knows what the session holds (prepared statements, staging tables, an
// open transaction); after a failure it forgets what the server may have
// undone. Lifecycle: attach() to a new session, then calls from pg_sink.
// Threads: the stream's strand, like the session. Private to connector_pg.
#include "connectors/common/stream_parts.hpp"
#include "connectors/pg/apply_plan.hpp"

#include <boost/asio/awaitable.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace datavor::connectors::pg {

class pg_session;

class pg_writer {
public:
    // A new session (or none): everything known about the old one is forgotten.
    void attach(pg_session* db, std::string stream);

    // Opens a target transaction (queued); one still open failed and is rolled back first.
    void begin();
    // Records the position and commits, with whatever is queued: one round trip.
    boost::asio::awaitable<void> commit(lsn position);
    // Records the position outside any transaction.
    boost::asio::awaitable<void> write_position(lsn position);
    // Queues a parameter-free statement (a part's SAVEPOINT or RELEASE).
    void queue(std::string statement) { pending_.push_back(std::move(statement)); }
    // After a failed part: back to its savepoint.
    boost::asio::awaitable<void> rollback_part();
    // Runs the queued pipeline, if any (a part's errors surface here).
    boost::asio::awaitable<void> sync();
    // Runs `sql` as one simple query after everything queued (DDL between parts).
    boost::asio::awaitable<void> run_after_queued(std::string sql);

    // The writes of one change, appended to `out` (apply_plan's add_actions).
    void add(const change_event& c, std::vector<apply_action>& out, std::deque<update_plan>& plans);
    // Applies the actions in order, run by run, inside the open transaction.
    boost::asio::awaitable<void> write(std::span<const apply_action> actions);

    // One batch of the initial snapshot (see pg_sink::apply_snapshot).
    boost::asio::awaitable<void> write_snapshot(const snapshot_batch& batch);
    // Ends and commits the snapshot's open COPY, if any: every other call starts with this.
    boost::asio::awaitable<void> end_snapshot_copy();

private:
    // What the session knows about one target table definition.
    struct table_state {
        std::uint64_t version = 0;
        std::string schema, name;
        std::optional<table_sql> sql;
        std::vector<std::size_t> all;           // 0, 1, … every column
        std::string upsert_stage, erase_stage;  // temporary tables, created at first use
        bool upsert_stage_made = false, erase_stage_made = false;
        int direct_skip = 0;
        std::unordered_map<std::string, std::string> statements;  // shape → prepared statement name
    };

    void forget_failed(const std::string& undo);
    table_state& state_of(const table_schema& t);
    std::string take_pending();
    void pending_to_pipeline();
    boost::asio::awaitable<void> drain();
    void queue_position(lsn position);
    const std::string& prepared(table_state& ts, const std::string& shape, const std::string& sql);
    std::string bind_key(const table_state& ts, const row& r);
    void bind_columns(const row& r, const std::vector<std::size_t>& columns);
    static std::string columns_shape(const std::vector<std::size_t>& columns);
    void exec(const std::string& name);
    void write_row(table_state& ts, const apply_action& a);
    boost::asio::awaitable<void> start_copy(std::string sql);
    boost::asio::awaitable<void> send_rows(std::span<const apply_action> run, const std::vector<std::size_t>& columns,
                                           bool seq);
    boost::asio::awaitable<bool> copy_direct(table_state& ts, std::span<const apply_action> run);
    void ready_stage(const std::string& stage, bool& made, const std::string& create);
    boost::asio::awaitable<void> copy_staged(table_state& ts, std::span<const apply_action> run);

    pg_session* db_ = nullptr;
    std::string stream_;
    std::unordered_map<std::uint32_t, table_state> tables_;  // by source relation id
    std::vector<std::string> pending_;                       // parameter-free statements not sent yet, in order
    std::unordered_set<std::string> staged_;                 // staging tables holding rows in the open transaction
    std::uint64_t names_ = 0;
    std::vector<const char*> params_;  // scratch for bound values
    // The initial snapshot's COPY, left open across the batches of one table.
    std::shared_ptr<const table_schema> snap_table_;
    std::size_t snap_rows_ = 0;
    bool txn_open_ = false;  // BEGIN queued or sent, COMMIT not done yet
};

}  // namespace datavor::connectors::pg
