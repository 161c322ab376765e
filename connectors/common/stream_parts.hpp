#pragma once
// The source and sink interfaces a stream is assembled from. Every source
// (PostgreSQL pgoutput now, the MariaDB binlog next) and every sink (SQLite,
// PostgreSQL, JSON lines now; Kafka next) implements one of these; the stream
// engine (engines/stream) knows nothing else about them.
//
// Errors: sinks and sources throw connector_error (connector_error.hpp), whose
// kind (data, transient, fatal) the stream engine acts on.
//
// Lifecycle: open() once, then reads/applies, then close(). One coroutine at a
// time uses an instance (the stream's strand). Cancellation: every awaitable
// honours the caller's cancellation slot; a cancelled source or sink is closed
// by its owner and never reused.
#include "connectors/common/change.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string>
#include <vector>

namespace datavor::connectors {

enum class snapshot_mode { initial, never, only };

struct snapshot_batch {
    std::shared_ptr<const table_schema> table;
    std::vector<row> rows;
    std::uint64_t bytes = 0;
    bool table_done = false;  // the table's last batch (tables may be copied in parallel)
};

struct source_open_result {
    // Tables the stream reads, as the catalog describes them now.
    std::vector<std::shared_ptr<const table_schema>> tables;
    // The catalog's row estimate of each table (parallel to `tables`; -1 unknown).
    std::vector<std::int64_t> estimated_rows;
    // True when the caller must copy a snapshot (read_snapshot) before streaming.
    bool snapshot_needed = false;
    // Changes at or before this position are in the snapshot (or were applied).
    lsn start;
    // The target keeps no position and the source resumed from its own record
    // (the slot's confirmed position) rather than starting over.
    bool resumed_from_slot = false;
};

// What a source knows about its own health (PostgreSQL: the slot's retained WAL).
struct source_health {
    std::int64_t retained_bytes = -1;  // WAL held back for this stream; -1 unknown
    std::string wal_status;            // reserved, extended, unreserved, lost ("" unknown)
    std::int64_t safe_bytes = -1;      // bytes left before max_slot_wal_keep_size; -1 unlimited/unknown
};

struct source_open_request {
    // The position the target has committed; nullopt when it has none.
    std::optional<lsn> resume_from;
    snapshot_mode snapshot = snapshot_mode::initial;
    // False for a target that cannot store a position (a pipe, a device). A
    // source that keeps its own record of the stream's progress (a replication
    // slot) then resumes from it, at least once, instead of starting over:
    // starting over would skip every change made while the stream was down.
    bool target_keeps_position = true;
    // Start over: ignore the target's position, take a new slot (dropping
    // what is left of the old one, even a lost one) and copy every table again.
    bool start_over = false;
};

class change_source {
public:
    virtual ~change_source() = default;
    virtual boost::asio::awaitable<source_open_result> open(source_open_request request) = 0;
    // The next rows of the snapshot, table after table; nullopt when complete.
    virtual boost::asio::awaitable<std::optional<snapshot_batch>> read_snapshot() = 0;
    // Waits for at least one committed transaction, then returns the ones
    // already received, up to about `max_changes` changes, in commit order.
    // A transaction without changes only moves the position (an idle source).
    // Returns an empty vector after about a second with nothing to hand out,
    // so the caller can do other work (a requested re-snapshot) in between.
    virtual boost::asio::awaitable<std::vector<transaction>> read_transactions(std::size_t max_changes) = 0;
    // Re-copies one of the stream's tables while streaming: opens a snapshot
    // of the table as committed now; read_snapshot() then yields its rows
    // and nullopt at the end. Called between read_transactions calls.
    struct table_snapshot {
        std::shared_ptr<const table_schema> table;
        std::int64_t estimated_rows = -1;
    };
    virtual boost::asio::awaitable<table_snapshot> start_table_snapshot(std::string table) = 0;
    // Keeps the source's connection alive during long work between reads
    // (a large transaction's apply, a re-snapshot): call it every few seconds.
    virtual boost::asio::awaitable<void> heartbeat() { co_return; }
    // The target has committed everything up to `applied`: the source may let it go.
    virtual void confirm(lsn applied) = 0;
    // Thread-safe snapshot of the latest health reading.
    virtual source_health health() const { return {}; }
    virtual boost::asio::awaitable<void> close() = 0;
};

struct sink_capabilities {
    bool transactions = true;  // changes and position commit atomically (exactly-once)
    bool upsert = true;
    bool ddl = true;           // creates target tables
    // The target stores the stream's position (known after open): false for a
    // pipe or a device, whose progress only the source (the slot) records.
    bool keeps_position = true;
};

class change_sink {
public:
    virtual ~change_sink() = default;
    virtual sink_capabilities capabilities() const = 0;
    // Opens the target and returns the position committed for `stream`, if any.
    virtual boost::asio::awaitable<std::optional<lsn>> open(std::string stream) = 0;
    // Creates the target table when missing (mapped types, primary key);
    // with `truncate`, empties it first (a fresh snapshot).
    virtual boost::asio::awaitable<void> prepare_table(std::shared_ptr<const table_schema> table, bool truncate) = 0;
    virtual boost::asio::awaitable<void> apply_snapshot(snapshot_batch batch) = 0;
    // Applies the transactions and records `position` in one target transaction.
    // Every transaction here has its changes in memory (none is spooled).
    virtual boost::asio::awaitable<void> apply(const std::vector<transaction>& txns, lsn position) = 0;
    // A transaction too large to hold in memory, applied in parts inside one
    // target transaction: begin_transaction (its header: xid, positions,
    // commit time; no changes), apply_changes for each part in order, then
    // commit_transaction, which records `position` with it. prepare_table may
    // be called between parts (a table reshaped inside the transaction).
    // Closing the sink before the commit rolls the target transaction back.
    virtual boost::asio::awaitable<void> begin_transaction(const transaction& header) = 0;
    virtual boost::asio::awaitable<void> apply_changes(std::vector<change_event> changes) = 0;
    virtual boost::asio::awaitable<void> commit_transaction(lsn position) = 0;
    // Inside an open transaction (begin_transaction): isolates a part so that
    // a data error undoes only it. rollback_to_savepoint also releases it.
    // One at a time (not nested). A sink that cannot fail on data (JSON
    // lines) keeps the defaults.
    virtual boost::asio::awaitable<void> savepoint() { co_return; }
    virtual boost::asio::awaitable<void> rollback_to_savepoint() { co_return; }
    virtual boost::asio::awaitable<void> release_savepoint() { co_return; }
    virtual boost::asio::awaitable<void> commit_position(lsn position) = 0;
    // Changes a target column's type to the one `table` now declares for it
    // (an accepted type-change suggestion), outside any open transaction. A
    // sink whose columns take any value (SQLite, JSON lines) keeps the
    // default, which does nothing.
    virtual boost::asio::awaitable<void> alter_column_type(std::shared_ptr<const table_schema> table, std::string column) {
        (void)table;
        (void)column;
        co_return;
    }
    // Widens every target column whose type differs from the one `table`
    // declares (a table made before the stream with narrower types) and
    // returns what it changed ("col: varchar(10) -> text"); outside any open
    // transaction. Default: nothing to widen (SQLite, JSON lines).
    virtual boost::asio::awaitable<std::vector<std::string>> widen_columns(std::shared_ptr<const table_schema> table) {
        (void)table;
        co_return std::vector<std::string>{};
    }
    // Removes the stream's position (a start over): until a new one commits,
    // a restart treats the stream as new and copies its tables again.
    virtual boost::asio::awaitable<void> forget_position() = 0;
    virtual boost::asio::awaitable<void> close() = 0;
};

}  // namespace datavor::connectors
