#pragma once
// The sync ledger: ledger.db in the home folder, an append-only,
// hash-chained audit trail of what every stream did: applied batches, rows
// set aside (failed), lifecycle events, retries and dismissals, and (later)
// job runs and rule applications.
//
// Hash chain: entry n stores hash(n) = SHA-256(hash(n-1) "\n" canonical(n)),
// where canonical(n) is a JSON array of every field but the hashes, seq
// included. verify() recomputes the chain, so a removed, reordered or
// altered entry shows. Retention removes old batch entries only through a
// `rollup` entry that records, for each removed range, its first and last
// seq, the hash of its last entry and a summary (per day, stream, table: rows
// and batches); verify() accepts a gap only when a rollup explains it.
//
// Writing is off the hot path: append() queues the entry (a mutex and a
// deque); a writer thread assigns seq and hashes and inserts queued entries
// in one SQLite transaction every 100 ms or every 2,000 entries. When it
// cannot write (disk full, database locked) nothing is dropped: the entries
// stay queued, health() says why, and it tries again every second. A caller
// that must not run ahead of its audit trail watches backlog() and health().
//
// Failed rows keep a derived status (open, retried, dismissed) in
// failed_state, rebuilt from the chain's retry/dismiss entries if lost.
//
// Threads: every public member is thread-safe. Readers use their own
// connection (WAL: they never block the writer).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace datavor::engines::ledger {

// Entry kinds.
inline constexpr const char* kind_batch = "batch";          // one applied batch
inline constexpr const char* kind_failed = "failed";        // one row set aside
inline constexpr const char* kind_lifecycle = "lifecycle";  // start, stop, pause, snapshot, resume, error
inline constexpr const char* kind_retry = "retry";          // a retry of failed rows, and its outcome
inline constexpr const char* kind_dismiss = "dismiss";      // failed rows dismissed by a user
inline constexpr const char* kind_rollup = "rollup";
inline constexpr const char* kind_alert = "alert";          // an alert rule fired (engines/rules/alerts)        // retention: what was removed, summarised

struct entry {
    std::int64_t seq = 0;      // assigned by the writer
    std::int64_t at_us = 0;    // unix microseconds; now when 0
    std::string stream;
    std::string kind;
    std::string table;         // schema.table, when about one table
    std::string op;            // c u d t r, or the lifecycle event (start, stop, …)
    std::string row_key;       // JSON object of the key's values (failed rows)
    std::string position;      // source position (a range "A..B" for batches)
    std::string error_class;   // data, transient, held, …
    std::string code;          // SQLSTATE, errno, SQLite extended code
    std::string message;
    std::string body = "{}";   // JSON object with the kind's details
    std::string status;        // failed rows: open, retried, dismissed (derived, not hashed)
    std::string prev_hash, hash;
};

struct query {
    std::string stream, kind, table, status, row_key, error_class;
    std::int64_t from_us = 0, to_us = 0;  // 0: unbounded
    std::int64_t after_seq = 0;           // pagination: entries with seq > after_seq
    std::size_t limit = 100;
    bool newest_first = false;
};

struct class_count {
    std::string error_class, table, code;
    std::int64_t open = 0, total = 0;
    std::int64_t first_us = 0, last_us = 0;
};

struct verify_result {
    bool ok = true;
    std::int64_t entries = 0;       // checked
    std::int64_t rolled_up = 0;     // removed by retention, explained by rollups
    std::int64_t first_bad_seq = 0; // where the chain breaks
    std::string problem;            // what is wrong there
};

// What retention removes: batch entries only (rolled up into daily summaries
// per stream); failed rows, retries, dismissals and lifecycle entries stay.
struct retention {
    std::chrono::hours batch_age{24 * 30};  // batch entries older than this are rolled up
    // 0: no limit. Above it (pages in use), the oldest batch entries are rolled
    // up too, down to about 90% of it; freed pages are reused, so the file stops growing.
    std::int64_t max_bytes = 0;
};

struct ledger_options {
    std::size_t flush_entries = 2000;
    std::chrono::milliseconds flush_interval{100};
    bool row_checksums = true;  // batches carry a SHA-256 of their rows (see row_digest)
    // When set, a background thread applies it every `retention_every` (the
    // first pass a minute after opening, or sooner when the interval is shorter).
    std::optional<retention> auto_retention;
    std::chrono::milliseconds retention_every{std::chrono::hours(1)};
};

class ledger {
public:
    explicit ledger(std::filesystem::path file, ledger_options options = {});
    ~ledger();  // writes what is queued (when it can), then stops
    ledger(const ledger&) = delete;
    ledger& operator=(const ledger&) = delete;

    void append(entry e);
    // Waits until everything queued before the call is written, or `max`
    // passes; false on timeout (see health()).
    bool flush(std::chrono::milliseconds max = std::chrono::seconds(30));
    std::size_t backlog() const;
    // For waiting without blocking a thread: take a ticket, then poll written(ticket).
    std::uint64_t ticket() const;
    bool written(std::uint64_t ticket) const;
    // Empty when writing works, else why it does not (and what to do).
    std::string health() const;
    const ledger_options& options() const { return options_; }
    const std::filesystem::path& file() const { return file_; }

    std::vector<entry> find(const query& q) const;
    std::optional<entry> get(std::int64_t seq) const;
    std::vector<class_count> failed_summary(const std::string& stream) const;
    verify_result verify() const;
    // Rolls up batch entries older than the retention (or beyond its size) into
    // one rollup entry; returns how many went.
    std::int64_t apply_retention(const retention& r);
    // Bytes of ledger.db pages in use (the file minus its free pages).
    std::int64_t used_bytes() const;
    // The last automatic retention pass: "" when it worked (or none ran yet).
    std::string retention_health() const;

private:
    void prune_loop();
    struct impl;
    std::filesystem::path file_;
    ledger_options options_;
    std::unique_ptr<impl> impl_;
};

// Helpers shared by the writers of entries.
std::string sha256_hex(std::string_view data);
// Incremental SHA-256 of rows, for batch checksums.
class row_digest {
public:
    row_digest();
    ~row_digest();
    // Copies carry the state so far (to go back to it when a part is undone).
    row_digest(const row_digest& other);
    row_digest& operator=(const row_digest& other);
    void add(std::string_view bytes);
    std::string hex();  // finishes; call once
private:
    void* ctx_;
};

}  // namespace datavor::engines::ledger
