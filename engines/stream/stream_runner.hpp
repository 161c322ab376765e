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
// Faults (see engines/README.md): a batch the target rejects for data
// reasons is applied again change by change under savepoints; the bad
// changes, and later changes to the same keys (held), are set aside in the
// ledger and the stream goes on. A transient failure (connection lost,
// deadlock, target restarting) closes source and sink, shows `degraded`,
// waits with backoff and reconnects from the target's position. A ledger
// that cannot write pauses the stream (`degraded`) until it can.
//
// Lifecycle: run() until cancelled (clean stop: the batch in progress is
// either committed or rolled back) or until a fatal failure (throws). One strand:
// run() and everything it awaits; status() is thread-safe (a mutex-guarded copy).
#include "connectors/common/connector_error.hpp"
#include "connectors/common/stream_parts.hpp"
#include "engines/rules/rule_set.hpp"
#include <filesystem>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <tuple>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <string>

namespace datavor::engines::ledger {
class ledger;
struct entry;
}  // namespace datavor::engines::ledger
namespace datavor::engines::suggest {
class suggest_engine;
}
namespace datavor::engines::context {
struct suggestion_record;
struct kept_value;
}  // namespace datavor::engines::context

namespace datavor::engines::stream {

struct table_counters {
    std::uint64_t snapshot_rows = 0;
    std::uint64_t snapshot_bytes = 0;
    std::int64_t snapshot_rows_estimate = -1;  // the catalog's estimate; -1 unknown
    std::uint64_t inserts = 0, updates = 0, deletes = 0, truncates = 0;
};

// The copy in progress: the initial snapshot or a re-snapshot of one table.
struct snapshot_progress {
    bool active = false;
    std::string kind;                 // "initial" or "resnapshot"
    std::string table;                // being copied now
    std::uint64_t tables_total = 0, tables_done = 0;
    std::uint64_t rows = 0, bytes = 0;
    std::int64_t rows_estimate = -1;  // the catalog's estimate for all of them; -1 unknown
    double elapsed_seconds = 0;
    double eta_seconds = -1;          // from the rate so far; -1 unknown
    std::chrono::steady_clock::time_point started;
};

// A finished re-snapshot of one table.
struct resnapshot_record {
    std::string table;
    std::uint64_t rows = 0;
    double seconds = 0;
    std::chrono::system_clock::time_point finished_at;
};

struct stream_status {
    std::string name;
    std::string state = "starting";  // starting, snapshot, streaming, degraded, stopped, failed
    std::string last_error;
    std::string degraded_reason;      // while degraded: what it waits for
    std::uint64_t reconnects = 0;     // after transient failures
    std::uint64_t rows_set_aside = 0; // failed or held, since the stream started
    std::uint64_t held_keys = 0;      // keys whose changes wait behind a failed one
    connectors::lsn applied;          // committed in the target
    std::uint64_t transactions = 0;
    std::uint64_t changes = 0;
    std::map<std::string, table_counters> tables;
    double changes_per_second = 0;    // over the last minute
    double latency_p50_ms = 0, latency_p99_ms = 0;  // commit -> applied, last minute
    std::chrono::system_clock::time_point started_at;
    connectors::source_health source;  // slot health (retained WAL, wal_status)
    snapshot_progress snapshot;        // active while a copy runs
    std::vector<std::string> pending_resnapshots;
    std::vector<resnapshot_record> resnapshots;  // finished, most recent last (the last 20)
};

struct stream_settings {
    std::string name;
    connectors::snapshot_mode snapshot = connectors::snapshot_mode::initial;
    std::size_t max_batch_changes = 10000;
    // The first open starts over (new slot, every table copied again); a
    // reconnect after that resumes as usual.
    bool start_over = false;
    // HOME/run: where the stream's run lock lives (empty: no lock, for tests).
    std::filesystem::path lock_dir;
    // The stream's rules as saved now (engines/rules); empty: none. Called when
    // the stream opens and after request_reload_rules().
    std::function<std::shared_ptr<rules::rule_set>()> load_rules;
    // Called (on the stream's strand) after an alert was recorded.
    std::function<void()> on_alert;
    // The Suggestion Engine (engines/suggest; nullptr: none). Told once per
    // source table version the stream meets (origin "snapshot": the catalog at
    // open; "relation": the log sent a new definition) with the position from
    // which it holds; drift becomes suggestions. A pending new column is
    // withheld by the rules (load_rules includes its withhold rule) and its
    // values are kept aside; accepted suggestions are carried out between
    // two batches (backfill, a target column's type).
    suggest::suggest_engine* suggest = nullptr;
    // suggest | learned | all for this run; "": the saved stream's (set_autopilot).
    std::string autopilot;
    // Called (on the stream's strand) after a suggestion was made or carried out.
    std::function<void()> on_suggestion;
    // True when another process changed the stream's context (a rule added,
    // a suggestion accepted by a `datavor serve` while `datavor stream run`
    // runs the stream): asked at most once a second between two batches,
    // then the rules are reloaded and accepted suggestions carried out.
    std::function<bool()> context_changed;
};

using stream_log = std::function<void(std::string_view level, std::string_view message)>;

// Builds a fresh source and sink (after a transient failure).
using parts_factory =
    std::function<std::pair<std::unique_ptr<connectors::change_source>, std::unique_ptr<connectors::change_sink>>()>;

struct retry_outcome {
    bool done = false;
    std::vector<std::int64_t> applied;                         // ledger seqs now in the target
    std::vector<std::pair<std::int64_t, std::string>> failed;  // still failing, why
    std::string error;                                         // the retry could not run
};

class stream_runner {
public:
    stream_runner(stream_settings settings, std::unique_ptr<connectors::change_source> source,
                  std::unique_ptr<connectors::change_sink> sink, stream_log log, parts_factory reconnect = {},
                  ledger::ledger* ledger = nullptr);
    ~stream_runner();

    boost::asio::awaitable<void> run();
    stream_status status() const;
    // Asks for one table to be copied again while the stream keeps running
    // (between two batches: the table is emptied and copied in one target
    // transaction). Thread-safe. Returns "" when queued, or why not.
    std::string request_resnapshot(const std::string& table);
    // Before run(): start over instead of resuming (see stream_settings::start_over).
    void start_over() { settings_.start_over = true; }
    // Re-applies failed rows (ledger seqs; empty: every open one) between two
    // batches, in order; the outcome fills in when done. Thread-safe.
    std::shared_ptr<const retry_outcome> request_retry(std::vector<std::int64_t> seqs);
    // Reloads the held keys from the ledger (after dismiss_failed). Thread-safe.
    void request_reload_holds();
    // Reloads the rules (after add_rule / remove_rule), between two batches. Thread-safe.
    void request_reload_rules() { reload_rules_ = true; }
    // Carries out accepted suggestions (after accept_suggestion), between two
    // batches, after reloading the rules. Thread-safe.
    void request_apply_suggestions() {
        reload_rules_ = true;
        apply_suggestions_ = true;
    }
    retry_outcome outcome(const std::shared_ptr<const retry_outcome>& handle) const;
    // The latest source changes of a table (schema.table; as the source sent
    // them, before any rule), sampled at most one per table per batch, the
    // last 20: what test_rule tries a rule on. Thread-safe.
    std::vector<connectors::change_event> recent_changes(const std::string& table) const;

private:
    boost::asio::awaitable<void> run_steps();
    boost::asio::awaitable<void> close_parts();
    void ledger_event(std::string op, std::string message, std::string body = "{}", std::string position = {});
    boost::asio::awaitable<void> wait_for_ledger();
    boost::asio::awaitable<void> between_batches();
    // Row fallback (stream_apply.cpp).
    struct change_ref {
        const connectors::change_event* change;
        const connectors::transaction* txn;
    };
    bool held(const connectors::change_event& c) const;
    void set_aside(const change_ref& r, const std::string& error_class, const std::string& code,
                   const std::string& message);
    boost::asio::awaitable<std::optional<connectors::connector_error>> apply_guarded(
        std::vector<connectors::change_event> changes);
    boost::asio::awaitable<void> apply_isolated(std::vector<change_ref>& refs, std::uint64_t& applied);
    boost::asio::awaitable<void> retry(std::shared_ptr<retry_outcome> out, std::vector<std::int64_t> seqs);
    boost::asio::awaitable<void> load_holds();
    // Waits (without blocking the thread) until the ledger has written what
    // was appended so far, at most `max`; false on timeout.
    boost::asio::awaitable<bool> ledger_caught_up(std::chrono::milliseconds max);
    void commit_set_aside();
    void record_ledger_gap(const connectors::lsn& committed);
    void recovered();
    std::vector<ledger::entry> pending_failed_;  // set aside in the batch being applied; to the ledger once it commits
    void ledger_batch(const connectors::lsn& from, const connectors::lsn& to, const std::vector<change_ref>& refs,
                      std::size_t transactions, double ms);
    void warn_on_slot_health();
    std::chrono::steady_clock::time_point last_health_warning_{};
    std::chrono::steady_clock::time_point last_snapshot_report_{};
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
    boost::asio::awaitable<void> resnapshot(const std::string& table);
    void snapshot_rows_copied(const connectors::snapshot_batch& batch);
    connectors::lsn committed_;                     // the position the target holds
    std::vector<std::string> table_names_;          // schema.table, once the source is open (guarded by mu_)
    std::deque<std::string> resnapshot_queue_;      // guarded by mu_
    parts_factory reconnect_;
    bool wait_reset_ = false;
    bool recovering_ = false;
    bool gap_checked_ = false;  // once per process start (a reconnect has its entries)  // reconnected, and no batch applied since
    ledger::ledger* ledger_ = nullptr;
    std::map<std::string, std::set<std::string>> held_;  // table -> keys held behind a failed change
    std::map<std::string, std::shared_ptr<const connectors::table_schema>> schemas_;  // latest, by schema.table
    std::deque<std::pair<std::vector<std::int64_t>, std::shared_ptr<retry_outcome>>> retry_queue_;  // guarded by mu_
    bool reload_holds_ = false;                     // guarded by mu_
    void set_state(std::string state, std::string error = {});

    std::shared_ptr<rules::rule_set> rules_;  // the stream's strand only
    boost::asio::any_io_executor ex_;         // the stream's, for webhook deliveries
    std::atomic<bool> reload_rules_{false};
    // Applies the rules to changes (filtered ones removed) / snapshot rows.
    void apply_rules(std::vector<connectors::change_event>& changes, const connectors::transaction& txn,
                     bool record_rejects = true);
    void apply_rules(connectors::snapshot_batch& batch);
    void emit_alerts();
    // Inserts into the target's _datavor_alerts for the alerts raised so far
    // whose rule asks for it (to_target); taken once (they are still emitted
    // after the commit).
    std::vector<connectors::change_event> alert_rows();
    std::size_t alerts_in_target_ = 0;  // of rules_->pending_alerts(), already turned into rows
    void note_schema(const std::shared_ptr<const connectors::table_schema>& t, connectors::lsn at, const char* origin);
    // Suggestions (stream_drift.cpp): values of withheld columns kept aside,
    // accepted ones carried out.
    void keep_withheld(const connectors::change_event& c, const rules::table_rules& compiled);
    void flush_kept();
    void note_rejects();
    boost::asio::awaitable<void> apply_suggestions();
    boost::asio::awaitable<std::int64_t> backfill(const context::suggestion_record& s,
                                                  std::shared_ptr<const connectors::table_schema> source);
    std::vector<context::kept_value> kept_;  // values of withheld columns, to context.db before the batch commits
    std::map<std::tuple<std::uint32_t, std::uint64_t, std::size_t>, std::shared_ptr<const connectors::table_schema>>
        kept_shapes_;  // key columns + one withheld column, per table version
    std::map<std::string, std::shared_ptr<const connectors::table_schema>> source_schemas_;  // latest, by source name
    std::atomic<bool> apply_suggestions_{true};  // checked once after each open
    std::chrono::steady_clock::time_point context_checked_{};
    std::map<std::string, std::deque<connectors::change_event>> recent_;  // guarded by mu_
    void sample_recent(const std::vector<connectors::transaction>& txns);
    std::set<std::pair<std::uint32_t, std::uint64_t>> schemas_seen_;
    std::shared_ptr<const connectors::table_schema> target_of(const std::shared_ptr<const connectors::table_schema>& t);
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
