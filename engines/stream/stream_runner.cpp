#include "engines/stream/stream_runner.hpp"

#include "connectors/common/change_spool.hpp"
#include "engines/ledger/ledger.hpp"
#include "engines/stream/run_lock.hpp"
#include "connectors/common/sql_quote.hpp"
#include "engines/notify/webhook.hpp"
#include "engines/suggest/suggest_engine.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <utility>

namespace asio = boost::asio;
using namespace datavor::connectors;

namespace datavor::engines::stream {

stream_runner::stream_runner(stream_settings settings, std::unique_ptr<change_source> source,
                             std::unique_ptr<change_sink> sink, stream_log log, parts_factory reconnect,
                             ledger::ledger* ledger)
    : settings_(std::move(settings)),
      source_(std::move(source)),
      sink_(std::move(sink)),
      log_(std::move(log)) {
    reconnect_ = std::move(reconnect);
    ledger_ = ledger;
    status_.name = settings_.name;
    status_.started_at = std::chrono::system_clock::now();
}

stream_runner::~stream_runner() = default;

void stream_runner::set_state(std::string state, std::string error) {
    std::lock_guard lock(mu_);
    status_.state = std::move(state);
    if (!error.empty()) status_.last_error = std::move(error);
}

stream_status stream_runner::status() const {
    std::lock_guard lock(mu_);
    stream_status s = status_;
    if (source_) s.source = source_->health();
    if (!window_.empty()) {
        std::vector<double> lat;
        std::size_t changes = 0;
        for (const auto& w : window_) {
            lat.push_back(w.latency_ms);
            changes += w.changes;
        }
        std::sort(lat.begin(), lat.end());
        s.latency_p50_ms = lat[lat.size() / 2];
        s.latency_p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
        auto span = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_.front().at).count();
        s.changes_per_second = changes / std::max(span, 1.0);
    }
    if (s.snapshot.active) {
        auto& p = s.snapshot;
        p.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - p.started).count();
        if (p.rows_estimate >= 0 && p.rows > 0 && p.elapsed_seconds > 0) {
            const double left = std::max<double>(0, static_cast<double>(p.rows_estimate) - static_cast<double>(p.rows));
            p.eta_seconds = left / (p.rows / p.elapsed_seconds);
        }
    }
    s.pending_resnapshots.assign(resnapshot_queue_.begin(), resnapshot_queue_.end());
    return s;
}

std::string stream_runner::request_resnapshot(const std::string& table) {
    std::lock_guard lock(mu_);
    if (status_.state == "snapshot") return "the initial snapshot is still copying every table; wait until it streams";
    if (table_names_.empty() || status_.state != "streaming")
        return "the stream is " + status_.state + ", not streaming; re-snapshot a table once it streams";
    const std::string wanted = table.find('.') == std::string::npos ? "public." + table : table;
    if (std::find(table_names_.begin(), table_names_.end(), wanted) == table_names_.end()) {
        std::string names;
        for (const auto& n : table_names_) names += (names.empty() ? "" : ", ") + n;
        return "table " + table + " is not in this stream (its tables: " + names + ")";
    }
    // Already queued: one copy serves both requests, unless that copy has
    // begun (its snapshot may predate this request).
    const bool front_running = status_.snapshot.active && !resnapshot_queue_.empty();
    auto from = resnapshot_queue_.begin() + (front_running ? 1 : 0);
    if (std::find(from, resnapshot_queue_.end(), wanted) == resnapshot_queue_.end()) resnapshot_queue_.push_back(wanted);
    return {};
}

void stream_runner::snapshot_rows_copied(const snapshot_batch& batch) {
    std::string progress;
    {
        std::lock_guard lock(mu_);
        auto& tc = status_.tables[batch.table->qualified()];
        tc.snapshot_rows += batch.rows.size();
        tc.snapshot_bytes += batch.bytes;
        auto& p = status_.snapshot;
        p.table = batch.table->qualified();
        if (batch.table_done) ++p.tables_done;
        p.rows += batch.rows.size();
        p.bytes += batch.bytes;
        if (std::chrono::steady_clock::now() - last_snapshot_report_ > std::chrono::seconds(5)) {
            last_snapshot_report_ = std::chrono::steady_clock::now();
            progress = "stream " + settings_.name + ": " + (p.kind == "initial" ? "snapshot" : "re-snapshot") + " of " + p.table + " at " +
                       std::to_string(tc.snapshot_rows) + " rows, " + std::to_string(tc.snapshot_bytes >> 20) + " MiB";
        }
    }
    if (!progress.empty()) log_("info", progress);
}

void stream_runner::batch_summary::count(const std::vector<change_event>& cs) {
    for (const auto& c : cs) {
        auto& tc = tables[c.table->qualified()];
        switch (c.op) {
            case change_op::insert: ++tc.inserts; break;
            case change_op::update: ++tc.updates; break;
            case change_op::erase: ++tc.deletes; break;
            case change_op::truncate: ++tc.truncates; break;
            case change_op::read: ++tc.snapshot_rows; break;
        }
    }
    changes += cs.size();
}

void stream_runner::batch_summary::add(const transaction& t) {
    end = std::max(end, t.end_lsn);
    if (t.empty()) return;  // an idle source's position, not a source transaction
    count(t.changes);
    txns.push_back({t.commit_time_us, t.change_count()});
}

void stream_runner::record_batch(const batch_summary& b) {
    const auto now = std::chrono::steady_clock::now();
    const auto wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    std::lock_guard lock(mu_);
    status_.applied = std::max(status_.applied, b.end);
    status_.transactions += b.txns.size();
    status_.changes += b.changes;
    for (const auto& [name, c] : b.tables) {
        auto& tc = status_.tables[name];
        tc.inserts += c.inserts;
        tc.updates += c.updates;
        tc.deletes += c.deletes;
        tc.truncates += c.truncates;
    }
    for (const auto& t : b.txns)
        window_.push_back({now, std::max<double>(0, (wall_us - t.commit_time_us) / 1000.0), t.changes});
    while (!window_.empty() && now - window_.front().at > std::chrono::minutes(1)) window_.pop_front();
}

void stream_runner::ledger_event(std::string op, std::string message, std::string body, std::string position) {
    if (!ledger_) return;
    ledger::entry e;
    e.stream = settings_.name;
    e.kind = ledger::kind_lifecycle;
    e.op = std::move(op);
    e.message = std::move(message);
    e.body = std::move(body);
    e.position = std::move(position);
    ledger_->append(std::move(e));
}

asio::awaitable<void> stream_runner::close_parts() {
    // Close politely even after a cancellation: the source tells the server
    // what the target has committed before it disconnects.
    co_await asio::this_coro::reset_cancellation_state();
    if (source_) co_await source_->close();
    if (sink_) co_await sink_->close();
}

asio::awaitable<void> stream_runner::run() {
    ex_ = co_await asio::this_coro::executor;
    std::exception_ptr failure;
    bool cancelled = false;
    // Before anything touches the slot, the target or the ledger.
    std::optional<run_lock> lock;
    if (!settings_.lock_dir.empty()) {
        try {
            lock.emplace(settings_.lock_dir, settings_.name);
        } catch (const std::exception& e) {
            set_state("failed", e.what());
            log_("error", "stream " + settings_.name + ": " + e.what());
            throw;
        }
    }
    ledger_event("start", "stream " + settings_.name + " starts");
    asio::steady_timer backoff(co_await asio::this_coro::executor);
    std::chrono::seconds wait{1};
    bool first_failure = true;
    for (;;) {
        std::string transient;
        try {
            co_await run_steps();
            break;  // a snapshot-only stream ends by itself
        } catch (const connector_error& e) {
            if (e.kind() != failure_kind::transient || !reconnect_) {
                failure = std::current_exception();
                break;
            }
            transient = e.what();
        } catch (const boost::system::system_error& e) {
            if (e.code() == asio::error::operation_aborted) cancelled = true;
            else failure = std::current_exception();
            break;
        } catch (const std::exception&) {
            failure = std::current_exception();
            break;
        }
        // Back off further while the failures repeat; a stream that applied a
        // batch since the last failure starts over at a second.
        wait = first_failure || wait_reset_ ? std::chrono::seconds(1) : std::min(wait * 2, std::chrono::seconds(30));
        first_failure = wait_reset_ = false;
        // Transient: nothing is set aside. Close, wait, reconnect, resume
        // from the target's committed position. Nothing is read meanwhile.
        co_await asio::this_coro::reset_cancellation_state();
        co_await close_parts();
        {
            std::lock_guard lock(mu_);
            status_.state = "degraded";
            recovering_ = true;
            status_.degraded_reason = transient + " (reconnecting in " + std::to_string(wait.count()) + " s)";
            status_.last_error = transient;
            ++status_.reconnects;
        }
        log_("warning", "stream " + settings_.name + ": " + transient + "; reconnecting in " +
                            std::to_string(wait.count()) + " s");
        ledger_event("degraded", transient);
        try {
            backoff.expires_after(wait);
            co_await backoff.async_wait(asio::use_awaitable);
            auto parts = reconnect_();
            std::lock_guard lock(mu_);
            source_ = std::move(parts.first);
            sink_ = std::move(parts.second);
        } catch (const boost::system::system_error& e) {
            if (e.code() == asio::error::operation_aborted) cancelled = true;
            else failure = std::current_exception();
            break;
        } catch (const std::exception&) {
            failure = std::current_exception();
            break;
        }

    }
    co_await asio::this_coro::reset_cancellation_state();  // a cancelled frame would refuse to await the close
    co_await close_parts();
    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            set_state("failed", e.what());
            log_("error", "stream " + settings_.name + " failed: " + e.what());
            ledger_event("error", e.what());
        }
        co_await ledger_caught_up(std::chrono::seconds(5));
        std::rethrow_exception(failure);
    }
    set_state("stopped");
    ledger_event("stop", "stream " + settings_.name + " stopped");
    co_await ledger_caught_up(std::chrono::seconds(5));
    if (cancelled) log_("info", "stream " + settings_.name + " stopped");
}

// Past 1 GiB of retained WAL, or when the slot is about to lose WAL, say so
// (at most once a minute): the source's disk is at stake.
void stream_runner::warn_on_slot_health() {
    const auto h = source_->health();
    const bool heavy = h.retained_bytes > (std::int64_t{1} << 30);
    const bool at_risk = h.wal_status == "unreserved" || h.wal_status == "lost";
    if (!heavy && !at_risk) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_health_warning_ < std::chrono::minutes(1)) return;
    last_health_warning_ = now;
    log_("warning", "stream " + settings_.name + ": the source retains " + std::to_string(h.retained_bytes >> 20) +
                        " MiB of WAL for this stream (wal_status " + h.wal_status +
                        "); the stream is behind or paused: let it catch up, or stop it with drop_slot to release the WAL");
}

asio::awaitable<void> stream_runner::run_steps() {
    prepared_.clear();
    apply_suggestions_ = true;  // accepted while the stream was away: carried out after the first read
    // Which side failed to open goes into the error (and degraded_reason): while
    // one is down, every reconnect attempt says which.
    std::optional<lsn> committed;
    try {
        committed = co_await sink_->open(settings_.name);
    } catch (const connector_error& e) {
        throw connector_error(std::string("the target: ") + e.what(), e.kind(), e.code());
    }
    source_open_request request;
    request.resume_from = committed;
    request.snapshot = settings_.snapshot;
    request.target_keeps_position = sink_->capabilities().keeps_position;
    request.start_over = settings_.start_over;
    if (request.start_over) {
        ledger_event("start_over", "starting over: a new slot and a copy of every table (the target's position " +
                                       (committed ? committed->to_string() : std::string("none")) + " is replaced)");
        log_("info", "stream " + settings_.name + ": starting over with a new slot and a copy of every table");
    }
    // Forgotten first: a crash from here on leaves a stream without a
    // position, which the next start copies again like a new one.
    if (request.start_over && committed) co_await sink_->forget_position();
    source_open_result opened;
    try {
        opened = co_await source_->open(request);
    } catch (const connector_error& e) {
        throw connector_error(std::string("the source: ") + e.what(), e.kind(), e.code());
    }
    settings_.start_over = false;  // a reconnect resumes from what this run commits
    if (request.start_over) committed.reset();
    if (opened.resumed_from_slot) {
        log_("info", "stream " + settings_.name + ": the target keeps no position; resuming from the source's (" +
                         opened.start.to_string() + "): changes in flight when the stream last stopped are written again");
        ledger_event("resume", "resuming from the source's confirmed position (the target keeps none)", "{}",
                     opened.start.to_string());
    }
    {
        std::lock_guard lock(mu_);
        if (committed) status_.applied = *committed;
        else if (opened.resumed_from_slot) status_.applied = opened.start;
    }
    co_await load_holds();  // also waits until the ledger holds what was appended
    if (committed && !gap_checked_) record_ledger_gap(*committed);
    gap_checked_ = true;
    if (committed) ledger_event("resume", "resuming from the target's position", "{}", committed->to_string());
    rules_ = settings_.load_rules ? settings_.load_rules() : nullptr;
    reload_rules_ = false;
    alerts_in_target_ = 0;  // a batch cut short by a reconnect took alerts from the rules it replaces
    for (const auto& t : opened.tables) note_schema(t, opened.start, "snapshot");
    for (const auto& source_table : opened.tables) {
        const auto t = target_of(source_table);
        co_await sink_->prepare_table(t, opened.snapshot_needed);
        prepared_[t->relation_id] = t->version;
        schemas_[t->qualified()] = t;
    }
    committed_ = opened.start;
    if (opened.snapshot_needed) {
        {
            std::lock_guard lock(mu_);
            status_.state = "snapshot";
            auto& p = status_.snapshot;
            p = {};
            p.active = true;
            p.kind = "initial";
            p.tables_total = opened.tables.size();
            p.started = std::chrono::steady_clock::now();
            p.rows_estimate = 0;
            for (std::size_t i = 0; i < opened.tables.size(); ++i) {
                const auto est = i < opened.estimated_rows.size() ? opened.estimated_rows[i] : -1;
                status_.tables[opened.tables[i]->qualified()].snapshot_rows_estimate = est;
                if (est < 0) p.rows_estimate = -1;
                else if (p.rows_estimate >= 0) p.rows_estimate += est;
            }
        }
        log_("info", "stream " + settings_.name + ": snapshot of " + std::to_string(opened.tables.size()) +
                         " table(s) at " + opened.start.to_string());
        ledger_event("snapshot_begin", std::to_string(opened.tables.size()) + " table(s)", "{}",
                     opened.start.to_string());
        while (auto batch = co_await source_->read_snapshot()) {
            snapshot_rows_copied(*batch);
            apply_rules(*batch);
            if (!batch->rows.empty()) co_await sink_->apply_snapshot(std::move(*batch));
        }
        co_await sink_->commit_position(opened.start);
        commit_set_aside();  // rows a cast rule set aside during the copy
        source_->confirm(opened.start);
        {
            std::lock_guard lock(mu_);
            status_.applied = opened.start;
            status_.snapshot.active = false;
        }
        log_("info", "stream " + settings_.name + ": snapshot done");
        {
            std::uint64_t rows = 0;
            {
                std::lock_guard lock(mu_);
                rows = status_.snapshot.rows;
            }
            const std::string counts = rules_ ? rules_->take_counts() : std::string();
            ledger_event("snapshot_end", std::to_string(rows) + " rows copied",
                         "{\"rows\":" + std::to_string(rows) + (counts.empty() ? "" : "," + counts) + "}",
                         opened.start.to_string());
        }
        if (settings_.snapshot == snapshot_mode::only) co_return;
    }
    {
        std::lock_guard lock(mu_);
        table_names_.clear();
        for (const auto& t : opened.tables) table_names_.push_back(t->qualified());
        // After a reconnect the stream stays degraded until a batch is applied
        // (or the source has nothing to give): the target may still be away.
        if (!recovering_) {
            status_.degraded_reason.clear();
            status_.state = "streaming";
        }
    }
    for (;;) {
        auto txns = co_await source_->read_transactions(settings_.max_batch_changes);
        co_await between_batches();
        if (txns.empty()) {
            recovered();
            continue;
        }
        co_await wait_for_ledger();
        warn_on_slot_health();
        // Transactions held in memory go to the sink together; a spooled
        // (large) one alone, in parts inside one target transaction.
        std::vector<transaction> group;
        for (auto& t : txns) {
            if (!t.spooled) {
                group.push_back(std::move(t));
                continue;
            }
            if (!group.empty()) {
                auto before = std::exchange(group, {});
                co_await apply_in_memory(std::move(before));
            }
            co_await apply_spooled(t);
            t.spooled.reset();  // the spill file goes as soon as it is applied
        }
        if (!group.empty()) co_await apply_in_memory(std::move(group));
    }
}

// A table whose definition changed (a new column) is reshaped first.
asio::awaitable<void> stream_runner::prepare_tables(const std::vector<change_event>& changes) {
    for (const auto& c : changes) {
        auto it = prepared_.find(c.table->relation_id);
        if (it == prepared_.end() || it->second != c.table->version) {
            co_await sink_->prepare_table(c.table, false);
            prepared_[c.table->relation_id] = c.table->version;
            schemas_[c.table->qualified()] = c.table;
        }
    }
}

// A batch went in (or the source had nothing to give) after a reconnect:
// the stream is healthy again, and the next failure backs off from a second.
void stream_runner::recovered() {
    wait_reset_ = true;
    if (!recovering_) return;
    recovering_ = false;
    std::lock_guard lock(mu_);
    status_.state = "streaming";
    status_.degraded_reason.clear();
}

std::shared_ptr<const table_schema> stream_runner::target_of(const std::shared_ptr<const table_schema>& t) {
    if (!rules_ || rules_->empty()) return t;
    const bool fresh = !rules_->compiled(t);
    const auto& compiled = rules_->for_table(t);
    if (fresh)
        for (const auto& w : compiled.warnings()) log_("warning", "stream " + settings_.name + ": " + w);
    return compiled.target();
}

void stream_runner::note_schema(const std::shared_ptr<const table_schema>& t, lsn at, const char* origin) {
    if (!t || !schemas_seen_.insert({t->relation_id, t->version}).second) return;
    source_schemas_[t->qualified()] = t;
    if (!settings_.suggest) return;
    suggest::drift_outcome out;
    try {
        out = settings_.suggest->on_schema(settings_.name, *t, at.to_string(), origin, settings_.autopilot);
    } catch (const std::exception& e) {
        schemas_seen_.erase({t->relation_id, t->version});  // tried again with the next change
        log_("warning", "stream " + settings_.name + ": cannot record the definition of " + t->qualified() +
                            " in context.db (" + e.what() + "); it is recorded once context.db can be written");
        return;
    }
    if (out.version > 1)
        log_("info", "stream " + settings_.name + ": " + t->qualified() + " has a new definition (version " +
                         std::to_string(out.version) + " at " + at.to_string() + "); see schema_history");
    for (const auto& sug : out.created) {
        if (sug.status == "pending")
            log_("warning", "stream " + settings_.name + ": suggestion " + std::to_string(sug.id) + ": " + sug.message +
                                " (accept_suggestion / reject_suggestion)");
        else
            log_("info", "stream " + settings_.name + ": suggestion " + std::to_string(sug.id) + " (" + sug.kind + " " +
                             sug.table + "." + sug.column + ") " + sug.status + " by " + sug.decided_by +
                             (sug.pattern_id ? " " + std::to_string(sug.pattern_id) : std::string()));
        if (sug.status == "auto_accepted" && sug.backfilled < 0) apply_suggestions_ = true;
    }
    if (out.rules_changed && settings_.load_rules) {
        // Before this change is transformed; alerts raised earlier in the batch are kept.
        auto next = settings_.load_rules();
        if (!next) next = std::make_shared<rules::rule_set>();
        if (rules_) next->adopt_alerts(rules_->take_alerts());
        rules_ = std::move(next);
        log_("info", "stream " + settings_.name + ": rules reloaded after drift on " + t->qualified());
    }
    if (!out.created.empty() && settings_.on_suggestion) settings_.on_suggestion();
}

// The last change of each table in the batch: a copy per table per batch
// (at most 4 tables, looking back at most 1,000 changes), nothing per change.
void stream_runner::sample_recent(const std::vector<transaction>& txns) {
    const table_schema* seen[4] = {};
    std::size_t n = 0, looked = 0;
    for (auto t = txns.rbegin(); t != txns.rend() && n < 4 && looked < 1000; ++t)
        for (auto it = t->changes.rbegin(); it != t->changes.rend() && n < 4 && looked < 1000; ++it, ++looked) {
            if (!it->table || it->op == change_op::truncate) continue;
            if (std::find(seen, seen + n, it->table.get()) != seen + n) continue;
            seen[n++] = it->table.get();
            std::lock_guard lock(mu_);
            auto& ring = recent_[it->table->qualified()];
            ring.push_back(*it);
            if (ring.size() > 20) ring.pop_front();
        }
}

std::vector<change_event> stream_runner::recent_changes(const std::string& table) const {
    std::lock_guard lock(mu_);
    auto it = recent_.find(table);
    if (it == recent_.end()) return {};
    return {it->second.begin(), it->second.end()};
}

void stream_runner::apply_rules(std::vector<change_event>& changes, const transaction& txn, bool record_rejects) {
    if (record_rejects)
        for (const auto& c : changes) note_schema(c.table, txn.commit_lsn, "relation");
    if (!rules_ || rules_->empty()) return;
    std::string why;
    std::erase_if(changes, [&](change_event& c) {
        if (c.table) {
            target_of(c.table);  // compiled once per table version, saying what does not apply
            if (record_rejects) {
                const auto& compiled = rules_->for_table(c.table);
                if (!compiled.withheld().empty()) keep_withheld(c, compiled);
            }
        }
        switch (rules_->apply(c, why, record_rejects ? txn.commit_time_us : 0)) {
        case rules::table_rules::outcome::keep: return false;
        case rules::table_rules::outcome::filtered: return true;
        case rules::table_rules::outcome::rejected:
            // A cast rule with on_fail set_aside: into the ledger like a row
            // the target rejected (and its key's later changes held).
            if (record_rejects) set_aside({&c, &txn}, "data", "rule:cast", why);
            return true;
        }
        return false;
    });
    flush_kept();
}

void stream_runner::apply_rules(snapshot_batch& batch) {
    if (!rules_ || rules_->empty() || batch.rows.empty()) return;
    const auto target = target_of(batch.table);
    transaction header;  // snapshot rows are as of the snapshot's position
    header.commit_lsn = header.end_lsn = committed_;
    std::vector<row> kept;
    kept.reserve(batch.rows.size());
    std::string why;
    const auto& compiled = rules_->for_table(batch.table);
    for (auto& r : batch.rows) {
        change_event c{batch.table, change_op::read, std::nullopt, std::move(r)};
        if (!compiled.withheld().empty()) keep_withheld(c, compiled);
        const auto o = rules_->apply(c, why);
        if (o == rules::table_rules::outcome::keep) kept.push_back(std::move(c.after));
        else if (o == rules::table_rules::outcome::rejected) set_aside({&c, &header}, "data", "rule:cast", why);
    }
    batch.rows = std::move(kept);
    batch.table = target;
    flush_kept();
}

namespace {
// The target's alerts table: one row per alert of a rule with to_target.
std::shared_ptr<const table_schema> alerts_table() {
    static const std::shared_ptr<const table_schema> table = [] {
        auto t = std::make_shared<table_schema>();
        t->relation_id = 0xFFFFFF01;  // not a PostgreSQL relation: a table Datavor owns
        t->schema = "public";
        t->name = "_datavor_alerts";
        t->version = 1;
        auto col = [&](const char* name, std::uint32_t oid, const char* type, bool key = false) {
            column_def c;
            c.name = name;
            c.type_oid = oid;
            c.type_name = type;
            c.key = key;
            c.nullable = !key;
            t->columns.push_back(std::move(c));
        };
        col("alert_id", 25, "text", true);  // stream/rule/commit time/key: the same alert replayed is one row
        col("stream", 25, "text");
        col("rule_id", 20, "bigint");
        col("table_name", 25, "text");
        col("row_key", 25, "text");
        col("message", 25, "text");
        col("details", 25, "text");
        col("commit_time_us", 20, "bigint");
        return t;
    }();
    return table;
}
}  // namespace

std::vector<change_event> stream_runner::alert_rows() {
    std::vector<change_event> out;
    if (!rules_) return out;
    const auto& pending = rules_->pending_alerts();
    for (std::size_t i = alerts_in_target_; i < pending.size(); ++i) {
        const auto& a = pending[i];
        if (!a.to_target) continue;
        change_event c{alerts_table(), change_op::insert, std::nullopt, {}};
        auto text = [](std::string s) { return value::text_value(std::move(s)); };
        c.after = {text(settings_.name + "/" + std::to_string(a.rule_id) + "/" + std::to_string(a.commit_time_us) + "/" + a.key),
                   text(settings_.name), text(std::to_string(a.rule_id)), text(a.table), text(a.key), text(a.message),
                   text(a.details), text(std::to_string(a.commit_time_us))};
        out.push_back(std::move(c));
    }
    alerts_in_target_ = pending.size();
    return out;
}

// Alerts raised by the changes just committed: into the ledger, the log (an
// MCP logging notification) and the alert hook (resources/updated).
void stream_runner::emit_alerts() {
    alerts_in_target_ = 0;
    if (!rules_) return;
    for (auto& a : rules_->take_alerts()) {
        log_("warning", "stream " + settings_.name + ": " + a.message);
        if (ledger_) {
            ledger::entry e;
            e.stream = settings_.name;
            e.kind = ledger::kind_alert;
            e.table = a.table;
            e.op = "rule " + std::to_string(a.rule_id);
            e.row_key = a.key;
            e.message = a.message;
            e.body = a.details;
            e.at_us = 0;
            ledger_->append(std::move(e));
        }
        if (settings_.on_alert) settings_.on_alert();
        if (!a.webhook.empty() && ex_) {
            std::string why;
            if (auto url = notify::parse_http_url(a.webhook, why)) {
                const std::string body = "{\"stream\":" + json_quote(settings_.name) + ",\"rule_id\":" +
                                         std::to_string(a.rule_id) + ",\"table\":" + json_quote(a.table) +
                                         ",\"key\":" + a.key + ",\"message\":" + json_quote(a.message) +
                                         ",\"commit_time_us\":" + std::to_string(a.commit_time_us) +
                                         ",\"details\":" + a.details + "}";
                notify::post_webhook(ex_, std::move(*url), body, log_);
            }
        }
    }
}

// Work asked for from outside, done between two batches on this strand.
asio::awaitable<void> stream_runner::between_batches() {
    if (settings_.context_changed && std::chrono::steady_clock::now() - context_checked_ > std::chrono::seconds(1)) {
        context_checked_ = std::chrono::steady_clock::now();
        bool changed = false;
        try {
            changed = settings_.context_changed();
        } catch (const std::exception& e) {
            log_("warning", "stream " + settings_.name + ": cannot read context.db (" + e.what() + "); trying again");
        }
        if (changed) {
            reload_rules_ = true;
            apply_suggestions_ = true;
        }
    }
    if (reload_rules_.exchange(false) && settings_.load_rules) {
        rules_ = settings_.load_rules();
        log_("info", "stream " + settings_.name + ": rules reloaded (" + std::to_string(rules_ ? rules_->rules().size() : 0) +
                         " rule(s)); they apply from the next change on");
    }
    if (apply_suggestions_.exchange(false)) co_await apply_suggestions();
    for (;;) {  // re-snapshots
        std::string table;
        {
            std::lock_guard lock(mu_);
            if (resnapshot_queue_.empty()) break;
            table = resnapshot_queue_.front();
        }
        co_await resnapshot(table);
    }
    for (;;) {  // retries of failed rows
        std::pair<std::vector<std::int64_t>, std::shared_ptr<retry_outcome>> job;
        {
            std::lock_guard lock(mu_);
            if (retry_queue_.empty()) break;
            job = std::move(retry_queue_.front());
            retry_queue_.pop_front();
        }
        // A retry cut short (the target or source went away: its target
        // transaction rolled back) still answers its caller, then the stream
        // reconnects as usual.
        std::exception_ptr cut;
        try {
            co_await retry(job.second, std::move(job.first));
        } catch (...) {
            cut = std::current_exception();
        }
        if (cut) {
            {
                std::lock_guard lock(mu_);
                if (!job.second->done) {
                    job.second->done = true;
                    job.second->error =
                        "the stream lost its target or source during the retry and nothing was applied (the target "
                        "transaction rolled back); call retry_failed again once stream_status shows streaming";
                }
            }
            std::rethrow_exception(cut);
        }
    }
    bool reload = false;
    {
        std::lock_guard lock(mu_);
        reload = std::exchange(reload_holds_, false);
    }
    if (reload) co_await load_holds();
}

// The stream never runs ahead of its audit trail: while the ledger cannot
// write, it waits (degraded) with everything since the last entry queued.
asio::awaitable<void> stream_runner::wait_for_ledger() {
    if (!ledger_) co_return;
    asio::steady_timer t(co_await asio::this_coro::executor);
    bool waited = false;
    for (;;) {
        const auto why = ledger_->health();
        if (why.empty() && ledger_->backlog() < 100000) break;
        if (!waited) {
            waited = true;
            log_("warning", "stream " + settings_.name + " pauses: " +
                                (why.empty() ? std::string("the ledger is behind") : why));
        }
        {
            std::lock_guard lock(mu_);
            status_.state = "degraded";
            status_.degraded_reason = "waiting for the ledger: " + (why.empty() ? std::string("it is behind") : why);
        }
        co_await source_->heartbeat();
        t.expires_after(std::chrono::milliseconds(500));
        co_await t.async_wait(asio::use_awaitable);
    }
    if (waited) {
        log_("info", "stream " + settings_.name + ": the ledger writes again; streaming on");
        std::lock_guard lock(mu_);
        status_.state = "streaming";
        status_.degraded_reason.clear();
    }
}

// The table is emptied and copied inside one target transaction, between
// two batches: the target never shows it half-copied, and a crash rolls the
// copy back. Changes committed before the copy's snapshot that the stream
// applies afterwards are replayed in commit order over the copy, so every row
// ends at its last committed image, as with the initial snapshot's handover.
asio::awaitable<void> stream_runner::resnapshot(const std::string& table) {
    log_("info", "stream " + settings_.name + ": re-snapshot of " + table + " begins");
    auto snap = co_await source_->start_table_snapshot(table);
    const auto began = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(mu_);
        auto& tc = status_.tables[table];
        tc.snapshot_rows = tc.snapshot_bytes = 0;
        tc.snapshot_rows_estimate = snap.estimated_rows;
        auto& p = status_.snapshot;
        p = {};
        p.active = true;
        p.kind = "resnapshot";
        p.tables_total = 1;
        p.rows_estimate = snap.estimated_rows;
        p.started = began;
    }
    transaction header;
    header.commit_lsn = header.end_lsn = committed_;
    co_await sink_->begin_transaction(header);
    const auto target = target_of(snap.table);
    co_await sink_->prepare_table(target, true);
    prepared_[target->relation_id] = target->version;
    std::uint64_t rows = 0;
    while (auto batch = co_await source_->read_snapshot()) {
        snapshot_rows_copied(*batch);
        rows += batch->rows.size();
        if (batch->rows.empty()) continue;
        std::vector<change_event> part;
        part.reserve(batch->rows.size());
        for (auto& r : batch->rows) part.push_back({batch->table, change_op::read, std::nullopt, std::move(r)});
        apply_rules(part, header);
        if (part.empty()) continue;
        co_await sink_->apply_changes(std::move(part));
        co_await source_->heartbeat();
    }
    co_await sink_->commit_transaction(committed_);
    commit_set_aside();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    {
        std::lock_guard lock(mu_);
        status_.snapshot.active = false;
        if (!resnapshot_queue_.empty() && resnapshot_queue_.front() == table) resnapshot_queue_.pop_front();
        status_.resnapshots.push_back({table, rows, seconds, std::chrono::system_clock::now()});
        if (status_.resnapshots.size() > 20) status_.resnapshots.erase(status_.resnapshots.begin());
    }
    log_("info", "stream " + settings_.name + ": re-snapshot of " + table + " done, " + std::to_string(rows) + " rows");
}

}  // namespace datavor::engines::stream
