#pragma once
// Copies tables from PostgreSQL with COPY … TO STDOUT, several at once, on a
// thread of its own, handing out batches of parsed rows to one consumer.
//
// Workers: up to `workers` connections, each in one REPEATABLE READ READ ONLY
// transaction that imports `snapshot` (the slot's exported snapshot: every
// worker sees the same instant) or, without one, takes its own (a
// re-snapshot of one table). Each worker copies whole tables, taking the next
// one from a shared list, so tables are copied in parallel and each table's
// rows arrive in order. COPY reading and text parsing run on the reader's
// thread while the consumer applies the previous batches.
//
// Lifecycle: the constructor starts the thread; next() until nullopt; the
// destructor stops the workers (closing their connections) and joins.
// Threads: next() from one consumer coroutine at a time, on any executor.
// Cancellation: next() honours the caller's cancellation slot.
// Memory: at most `queue_batches` batches wait for the consumer.
#include "connectors/common/stream_parts.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace datavor::connectors::pg {

struct snapshot_reader_options {
    std::map<std::string, std::string> connection;  // libpq options (canonical session settings included)
    std::optional<std::string> snapshot;            // exported snapshot name to import
    std::vector<std::shared_ptr<const table_schema>> tables;
    std::size_t workers = 2;
    std::size_t batch_rows = 5000;
    std::size_t queue_batches = 4;
};

class snapshot_reader {
public:
    explicit snapshot_reader(snapshot_reader_options options);
    ~snapshot_reader();
    snapshot_reader(const snapshot_reader&) = delete;
    snapshot_reader& operator=(const snapshot_reader&) = delete;

    // The next batch from any table; a table's last batch has table_done set
    // (possibly with no rows). nullopt when every table is copied. Throws the
    // first worker's error (pg_error) when one failed.
    boost::asio::awaitable<std::optional<snapshot_batch>> next();

private:
    struct state;
    std::shared_ptr<state> state_;
};

}  // namespace datavor::connectors::pg
