#pragma once
// One stream: source -> (batches) -> sink, in commit order, exactly once.
//
//   open sink (its committed position) -> open source (resume there, or new slot + snapshot)
//   snapshot: tables copied in the slot's exported snapshot, then position := snapshot point
//   streaming: read committed transactions, batch what is already buffered,
//              apply batch + position in one target transaction, then confirm to the source
//
// The source is told "flushed" only up to what the target committed, so a
// crash at any point resumes from the target's position and nothing is lost
// or applied twice.
//
// Lifecycle: run() until cancelled (clean stop: the batch in progress is
// either committed or rolled back) or until a failure (throws). One strand:
// run() and everything it awaits; status() is thread-safe (a mutex-guarded copy).
#include "connectors/common/stream_parts.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace datavor::engines::stream {

struct table_counters {
    std::uint64_t snapshot_rows = 0;
    std::uint64_t snapshot_bytes = 0;
    std::uint64_t inserts = 0, updates = 0, deletes = 0, truncates = 0;
};

struct stream_status {
    std::string name;
    std::string state = "starting";  // starting, snapshot, streaming, stopped, failed
    std::string last_error;
    connectors::lsn applied;          // committed in the target
    std::uint64_t transactions = 0;
    std::uint64_t changes = 0;
    std::map<std::string, table_counters> tables;
    double changes_per_second = 0;    // over the last minute
    double latency_p50_ms = 0, latency_p99_ms = 0;  // commit -> applied, last minute
    std::chrono::system_clock::time_point started_at;
    connectors::source_health source;  // slot health (retained WAL, wal_status)
};

struct stream_settings {
    std::string name;
    connectors::snapshot_mode snapshot = connectors::snapshot_mode::initial;
    std::size_t max_batch_changes = 10000;
};

using stream_log = std::function<void(std::string_view level, std::string_view message)>;

class stream_runner {
public:
    stream_runner(stream_settings settings, std::unique_ptr<connectors::change_source> source,
                  std::unique_ptr<connectors::change_sink> sink, stream_log log);
    ~stream_runner();

    boost::asio::awaitable<void> run();
    stream_status status() const;

private:
    boost::asio::awaitable<void> run_steps();
    void warn_on_slot_health();
    std::chrono::steady_clock::time_point last_health_warning_{};
    // What a batch did, counted before it is handed to the sink and recorded
    // once the sink has committed it.
    struct batch_summary {
        struct txn_sample {
            std::int64_t commit_time_us;
            std::uint64_t changes;
        };
        std::vector<txn_sample> txns;
        std::map<std::string, table_counters> tables;
        connectors::lsn end;
        std::uint64_t changes = 0;
        void count(const std::vector<connectors::change_event>& changes);
        void add(const connectors::transaction& t);
    };
    void record_batch(const batch_summary& batch);
    boost::asio::awaitable<void> prepare_tables(const std::vector<connectors::change_event>& changes);
    boost::asio::awaitable<void> apply_in_memory(std::vector<connectors::transaction> txns);
    boost::asio::awaitable<void> apply_spooled(const connectors::transaction& txn);
    void set_state(std::string state, std::string error = {});

    stream_settings settings_;
    std::unique_ptr<connectors::change_source> source_;
    std::unique_ptr<connectors::change_sink> sink_;
    stream_log log_;
    mutable std::mutex mu_;
    stream_status status_;
    struct sample {
        std::chrono::steady_clock::time_point at;
        double latency_ms;
        std::size_t changes;
    };
    std::deque<sample> window_;  // last minute of applied transactions
    std::map<std::uint32_t, std::uint64_t> prepared_;  // relation id -> table version the sink has
};

}  // namespace datavor::engines::stream
