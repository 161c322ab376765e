// The stream runner's apply paths: bulk first, row fallback when the target
// rejects data, held keys, retries of failed rows, and the ledger's batch and
// failed-row entries. See engines/README.md, "Fault tolerance and the ledger".
#include "engines/ledger/ledger.hpp"
#include "engines/ledger/ledger_wait.hpp"
#include "engines/stream/row_json.hpp"
#include "engines/stream/stream_runner.hpp"

#include "connectors/common/change_spool.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <optional>

namespace asio = boost::asio;
using namespace datavor::connectors;

namespace datavor::engines::stream {
namespace {

constexpr std::size_t fallback_chunk = 100;
const char* const held_message =
    "held behind an earlier failed change to the same key: retry_failed applies them in order once the cause is "
    "fixed, dismiss_failed releases them";

std::string json_string(const std::string& s) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    return {buf.GetString(), buf.GetSize()};
}

void digest_change(ledger::row_digest& d, const change_event& c) {
    d.add(c.table->qualified());
    const char op = static_cast<char>(c.op);
    d.add(std::string_view(&op, 1));
    auto add_row = [&](const row& r) {
        for (const auto& v : r) {
            const char st = static_cast<char>('0' + static_cast<int>(v.st));
            d.add(std::string_view(&st, 1));
            const auto n = std::to_string(v.data.size());
            d.add(n);
            d.add(":");
            d.add(v.data);
        }
        d.add("\n");
    };
    if (c.before) add_row(*c.before);
    add_row(c.after);
}

// What a batch applied, for its ledger entry: rows per table and op, and a
// SHA-256 over them when the ledger keeps checksums.
struct batch_tally {
    std::map<std::string, std::array<std::int64_t, 4>> per_table;  // c, u, d, t
    std::optional<ledger::row_digest> digest;
    std::int64_t applied = 0;

    explicit batch_tally(bool checksums) {
        if (checksums) digest.emplace();
    }
    void add(const change_event& c) {
        ++applied;
        const auto op = c.op;
        ++per_table[c.table->qualified()][op == change_op::update ? 1 : op == change_op::erase ? 2 : op == change_op::truncate ? 3 : 0];
        if (digest) digest_change(*digest, c);
    }
    std::string extra;  // more members (the rules' counts)
    std::string body(std::size_t transactions, std::int64_t set_aside, double ms, bool large) {
        std::string b = "{\"transactions\":" + std::to_string(transactions) + (large ? ",\"large\":true" : "") +
                        ",\"changes\":" + std::to_string(applied) + ",\"set_aside\":" + std::to_string(set_aside) +
                        ",\"duration_ms\":" + std::to_string(ms) + ",\"tables\":{";
        bool first = true;
        for (const auto& [t, n] : per_table) {
            b += (first ? "" : ",") + json_string(t) + ":{\"c\":" + std::to_string(n[0]) + ",\"u\":" +
                 std::to_string(n[1]) + ",\"d\":" + std::to_string(n[2]) + ",\"t\":" + std::to_string(n[3]) + "}";
            first = false;
        }
        b += "}";
        if (digest) b += ",\"checksum\":\"sha256:" + digest->hex() + "\"";
        if (!extra.empty()) b += "," + extra;
        return b + "}";
    }
};

}  // namespace

bool stream_runner::held(const change_event& c) const {
    if (held_.empty()) return false;
    auto it = held_.find(c.table->qualified());
    if (it == held_.end() || it->second.empty()) return false;
    for (const auto& k : keys_of(c))
        if (it->second.count(k)) return true;
    return false;
}

void stream_runner::set_aside(const change_ref& r, const std::string& error_class, const std::string& code,
                              const std::string& message) {
    const auto& c = *r.change;
    const auto keys = keys_of(c);
    auto& table_keys = held_[c.table->qualified()];
    for (const auto& k : keys) table_keys.insert(k);
    {
        std::lock_guard lock(mu_);
        ++status_.rows_set_aside;
        std::uint64_t n = 0;
        for (const auto& [t, ks] : held_) n += ks.size();
        status_.held_keys = n;
    }
    if (!ledger_) {
        log_("error", "stream " + settings_.name + ": a change to " + c.table->qualified() + " " +
                          (keys.empty() ? std::string() : keys.front()) + " was set aside (" + error_class +
                          "): " + message + " (no ledger: it is only in this log)");
        return;
    }
    ledger::entry e;
    e.stream = settings_.name;
    e.kind = ledger::kind_failed;
    e.table = c.table->qualified();
    e.op = std::string(1, static_cast<char>(c.op));
    e.row_key = keys.empty() ? "{}" : keys.front();
    e.position = r.txn->commit_lsn.to_string();
    e.error_class = error_class;
    e.code = code;
    e.message = message;
    std::string body = "{\"keys\":[";
    for (std::size_t i = 0; i < keys.size(); ++i) body += (i ? "," : "") + json_string(keys[i]);
    body += "],\"xid\":" + std::to_string(r.txn->xid) + ",\"commit_lsn\":" + json_string(r.txn->commit_lsn.to_string()) +
            ",\"end_lsn\":" + json_string(r.txn->end_lsn.to_string()) +
            ",\"commit_time_us\":" + std::to_string(r.txn->commit_time_us) + ",\"change\":" + change_json(c) + "}";
    e.body = std::move(body);
    pending_failed_.push_back(std::move(e));
}

// The batch committed: its set-aside rows go to the ledger. (Written before
// the commit, a rolled-back batch would leave entries for rows that are
// then applied, or set aside again, on the replay.)
void stream_runner::commit_set_aside() {
    note_rejects();
    if (ledger_)
        for (auto& e : pending_failed_) ledger_->append(std::move(e));
    pending_failed_.clear();
}

asio::awaitable<bool> stream_runner::ledger_caught_up(std::chrono::milliseconds max) {
    if (!ledger_) co_return true;
    co_return co_await ledger::wait_written(*ledger_, max);
}

// After a crash the ledger may lack the last ~100 ms of entries (it writes
// asynchronously), while the target's position proves those batches were
// applied. Say so in the ledger instead of leaving a silent hole: an
// `unrecorded` entry spans the positions between the last recorded one and
// the target's, and a snapshot that committed without its snapshot_end entry
// gets one marked as recovered.
void stream_runner::record_ledger_gap(const lsn& committed) {
    if (!ledger_) return;
    ledger::query q;
    q.stream = settings_.name;
    q.limit = 500;
    q.newest_first = true;
    auto recent = ledger_->find(q);
    std::optional<lsn> last;
    bool snapshot_open = false, seen_snapshot_mark = false;
    for (const auto& e : recent) {  // newest first
        if (!seen_snapshot_mark && e.kind == ledger::kind_lifecycle &&
            (e.op == "snapshot_end" || e.op == "snapshot_begin")) {
            seen_snapshot_mark = true;
            snapshot_open = e.op == "snapshot_begin";
        }
        const bool carries = e.kind == ledger::kind_batch ||
                             (e.kind == ledger::kind_lifecycle &&
                              (e.op == "snapshot_end" || e.op == "resume" || e.op == "unrecorded"));
        if (!carries || e.position.empty()) continue;
        auto dots = e.position.find("..");
        auto p = lsn::parse(dots == std::string::npos ? e.position : e.position.substr(dots + 2));
        if (p && (!last || *p > *last)) last = p;
        if (e.kind == ledger::kind_batch || e.op == "snapshot_end") break;  // the newest position-carrying record
    }
    if (snapshot_open)
        ledger_event("snapshot_end",
                     "recorded at resume: the snapshot committed before the process stopped, and its entry was lost "
                     "(rows copied unknown)",
                     "{\"recovered\":true}", committed.to_string());
    if (last && *last < committed)
        ledger_event("unrecorded",
                     "batches from " + last->to_string() + " to " + committed.to_string() +
                         " were applied to the target (its position proves it) but their ledger entries were lost "
                         "when the process stopped: the ledger writes asynchronously, every 100 ms",
                     "{}", last->to_string() + ".." + committed.to_string());
}

asio::awaitable<void> stream_runner::load_holds() {
    held_.clear();
    pending_failed_.clear();
    if (!ledger_) co_return;
    // Failed rows appended earlier must be readable first; a ledger that
    // cannot write makes the stream wait (wait_for_ledger) rather than
    // stream without its holds.
    while (!co_await ledger_caught_up(std::chrono::seconds(1))) co_await wait_for_ledger();
    ledger::query q;
    q.stream = settings_.name;
    q.kind = ledger::kind_failed;
    q.status = "open";
    q.limit = 10000;
    std::uint64_t n = 0;
    for (;;) {
        auto open = ledger_->find(q);
        for (const auto& e : open) {
            rapidjson::Document d;
            d.Parse(e.body.c_str());
            if (d.HasParseError() || !d.IsObject() || !d.HasMember("keys") || !d["keys"].IsArray()) continue;
            for (const auto& k : d["keys"].GetArray())
                if (k.IsString() && held_[e.table].insert(k.GetString()).second) ++n;
        }
        if (open.size() < q.limit) break;
        q.after_seq = open.back().seq;
    }
    std::lock_guard lock(mu_);
    status_.held_keys = n;
}


void stream_runner::ledger_batch(const lsn& from, const lsn& to, const std::vector<change_ref>& refs,
                                 std::size_t transactions, double ms) {
    if (!ledger_ || refs.empty()) return;  // an idle position is not a batch
    batch_tally tally(ledger_->options().row_checksums);
    for (const auto& r : refs)
        if (r.change) tally.add(*r.change);  // a null change was set aside
    ledger::entry e;
    e.stream = settings_.name;
    e.kind = ledger::kind_batch;
    e.position = from.to_string() + ".." + to.to_string();
    if (rules_) tally.extra = rules_->take_counts();
    e.body = tally.body(transactions, static_cast<std::int64_t>(refs.size()) - tally.applied, ms, false);
    ledger_->append(std::move(e));
}

// Applies `changes` under a savepoint inside the open target transaction. A
// data error (from the apply, or from the release: a sink may defer a part's
// statements until then) undoes just these changes and is returned; any
// other error propagates.
asio::awaitable<std::optional<connector_error>> stream_runner::apply_guarded(std::vector<change_event> changes) {
    std::optional<connector_error> error;
    co_await sink_->savepoint();
    try {
        co_await sink_->apply_changes(std::move(changes));
        co_await sink_->release_savepoint();
    } catch (const connector_error& e) {
        if (e.kind() != failure_kind::data) throw;
        error = e;
    }
    if (error) co_await sink_->rollback_to_savepoint();
    co_return error;
}

// Applies `refs` inside the open target transaction: chunks under a savepoint;
// a chunk the target rejects for data reasons is undone and applied change
// by change, each under its own savepoint; a rejected change is set aside
// (and its key held). A set-aside ref's change pointer is cleared.
// The sink may defer a part's statements until the savepoint is released,
// so a data error from either counts.
asio::awaitable<void> stream_runner::apply_isolated(std::vector<change_ref>& refs, std::uint64_t& applied) {
    for (std::size_t at = 0; at < refs.size(); at += fallback_chunk) {
        const std::size_t end = std::min(refs.size(), at + fallback_chunk);
        std::vector<change_event> part;
        for (std::size_t i = at; i < end; ++i) {
            if (!refs[i].change) continue;
            if (held(*refs[i].change)) {
                set_aside(refs[i], "held", "", held_message);
                refs[i].change = nullptr;
                continue;
            }
            part.push_back(*refs[i].change);
        }
        if (part.empty()) continue;
        const std::size_t size = part.size();
        if (!co_await apply_guarded(std::move(part))) {
            applied += size;
            continue;
        }
        for (std::size_t i = at; i < end; ++i) {
            if (!refs[i].change) continue;
            if (held(*refs[i].change)) {
                set_aside(refs[i], "held", "", held_message);
                refs[i].change = nullptr;
                continue;
            }
            std::vector<change_event> one{*refs[i].change};
            auto error = co_await apply_guarded(std::move(one));
            if (!error) {
                ++applied;
                continue;
            }
            set_aside(refs[i], "data", error->code(), error->what());
            refs[i].change = nullptr;
        }
    }
}

asio::awaitable<void> stream_runner::apply_in_memory(std::vector<transaction> txns) {
    const auto started = std::chrono::steady_clock::now();
    const lsn from = committed_;
    const lsn position = txns.back().end_lsn;
    sample_recent(txns);  // for test_rule, before any rule
    for (auto& t : txns) apply_rules(t.changes, t);  // filters, masks, casts…: what the target gets
    // Alerts of rules with to_target land in the target with the batch.
    for (auto& row : alert_rows()) txns.back().changes.push_back(std::move(row));
    // Changes to held keys wait behind the failed change before them.
    if (!held_.empty())
        for (auto& t : txns) {
            if (std::none_of(t.changes.begin(), t.changes.end(), [&](const auto& c) { return held(c); })) continue;
            std::vector<change_event> keep;
            for (auto& c : t.changes) {
                if (held(c)) set_aside({&c, &t}, "held", "", held_message);
                else keep.push_back(std::move(c));
            }
            t.changes = std::move(keep);
        }
    batch_summary summary;
    for (const auto& t : txns) {
        co_await prepare_tables(t.changes);
        summary.add(t);
    }
    std::string rejected;
    try {
        co_await sink_->apply(txns, position);
    } catch (const connector_error& e) {
        if (e.kind() != failure_kind::data) throw;
        rejected = e.what();
    }
    std::vector<change_ref> refs;
    for (const auto& t : txns)
        for (const auto& c : t.changes) refs.push_back({&c, &t});
    if (!rejected.empty()) {
        log_("warning", "stream " + settings_.name + ": the target rejected a batch (" + rejected +
                            "); applying it change by change to set the bad rows aside");
        std::uint64_t applied = 0;
        co_await sink_->begin_transaction(txns.back());
        co_await apply_isolated(refs, applied);
        co_await sink_->commit_transaction(position);
        const auto set_aside_n = refs.size() - applied;
        if (set_aside_n)
            log_("warning", "stream " + settings_.name + ": " + std::to_string(set_aside_n) +
                                " change(s) set aside in the ledger (inspect_ledger), " + std::to_string(applied) +
                                " applied");
    }
    committed_ = position;
    commit_set_aside();
    emit_alerts();
    recovered();
    source_->confirm(position);
    record_batch(summary);
    ledger_batch(from, position, refs, txns.size(),
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
}

asio::awaitable<void> stream_runner::apply_spooled(const transaction& txn) {
    const auto started = std::chrono::steady_clock::now();
    const lsn from = committed_;
    auto& spool = *txn.spooled;
    const auto total = spool.changes();
    log_("info", "stream " + settings_.name + ": applying a large transaction (xid " + std::to_string(txn.xid) + ", " +
                     std::to_string(total) + " changes, " + std::to_string(spool.bytes() >> 20) +
                     " MiB spilled to disk) in one target transaction");
    transaction header;
    header.xid = txn.xid;
    header.commit_lsn = txn.commit_lsn;
    header.end_lsn = txn.end_lsn;
    header.commit_time_us = txn.commit_time_us;
    batch_summary summary;
    summary.end = txn.end_lsn;
    std::uint64_t set_aside_n = 0;
    batch_tally tally(ledger_ && ledger_->options().row_checksums);
    spool.rewind();
    co_await sink_->begin_transaction(header);
    auto last_report = std::chrono::steady_clock::now();
    for (;;) {
        const auto at = spool.read_mark();
        auto part = spool.read(settings_.max_batch_changes);
        if (part.empty()) break;
        if (at.changes == 0) {  // the transaction's first part: a sample for test_rule
            transaction sample;
            sample.changes.assign(part.end() - std::min<std::size_t>(part.size(), 100), part.end());
            sample_recent({sample});
        }
        apply_rules(part, header);
        if (part.empty()) {  // all filtered out
            co_await source_->heartbeat();
            continue;
        }
        co_await prepare_tables(part);
        summary.count(part);
        bool rejected = !held_.empty();  // held keys: the careful path
        const bool moved = !rejected;
        if (!rejected) {
            // Counted (digest, per table) before the part moves to the sink;
            // a rejected part is counted again, from the state before it, on
            // the careful path, which reads it back from the spool.
            std::optional<batch_tally> before;
            before.emplace(tally);
            for (const auto& c : part) tally.add(c);
            rejected = (co_await apply_guarded(std::move(part))).has_value();
            if (rejected) tally = std::move(*before);
        }
        if (rejected) {
            if (moved) {
                const auto next = spool.read_mark();
                spool.seek_read(at);
                part = spool.read(settings_.max_batch_changes);
                spool.seek_read(next);
                apply_rules(part, header, false);  // its cast rejects are set aside already
            }
            std::vector<change_ref> refs;
            for (const auto& c : part) refs.push_back({&c, &header});
            std::uint64_t applied = 0;
            co_await apply_isolated(refs, applied);
            set_aside_n += refs.size() - applied;
            for (const auto& r : refs)  // set-aside changes were taken out (nullptr)
                if (r.change) tally.add(*r.change);
        }
        co_await source_->heartbeat();
        if (std::chrono::steady_clock::now() - last_report > std::chrono::seconds(5)) {
            last_report = std::chrono::steady_clock::now();
            log_("info", "stream " + settings_.name + ": large transaction " + std::to_string(txn.xid) + " at " +
                             std::to_string(summary.changes) + " of " + std::to_string(total) + " changes");
        }
    }
    if (auto rows = alert_rows(); !rows.empty()) {  // in the same target transaction
        co_await prepare_tables(rows);
        summary.count(rows);
        co_await sink_->apply_changes(std::move(rows));
    }
    co_await sink_->commit_transaction(txn.end_lsn);
    committed_ = txn.end_lsn;
    commit_set_aside();
    emit_alerts();
    recovered();
    source_->confirm(txn.end_lsn);
    summary.txns.push_back({txn.commit_time_us, summary.changes});
    record_batch(summary);
    if (ledger_) {
        ledger::entry e;
        e.stream = settings_.name;
        e.kind = ledger::kind_batch;
        e.position = from.to_string() + ".." + txn.end_lsn.to_string();
        if (rules_) tally.extra = rules_->take_counts();
        e.body = tally.body(1, static_cast<std::int64_t>(set_aside_n),
                            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count(),
                            true);
        ledger_->append(std::move(e));
    }
}

std::shared_ptr<const retry_outcome> stream_runner::request_retry(std::vector<std::int64_t> seqs) {
    auto out = std::make_shared<retry_outcome>();
    std::lock_guard lock(mu_);
    if (status_.state != "streaming") {
        out->done = true;
        out->error = "the stream is " + status_.state + ", not streaming; retry once it streams";
        return out;
    }
    retry_queue_.emplace_back(std::move(seqs), out);
    return out;
}

void stream_runner::request_reload_holds() {
    std::lock_guard lock(mu_);
    reload_holds_ = true;
}

retry_outcome stream_runner::outcome(const std::shared_ptr<const retry_outcome>& handle) const {
    std::lock_guard lock(mu_);
    return *handle;
}

// Re-applies open failed rows in ledger order, each under a savepoint, in
// one target transaction that keeps the stream's position. A row whose key
// still has an earlier failure is not tried. Idempotent: only open rows are
// taken, and the outcome is recorded (retry entry) before they stop being open.
asio::awaitable<void> stream_runner::retry(std::shared_ptr<retry_outcome> out, std::vector<std::int64_t> seqs) {
    retry_outcome result;
    if (!ledger_) {
        result.error = "this stream has no ledger";
    } else {
        co_await ledger_caught_up(std::chrono::seconds(10));
        ledger::query q;
        q.stream = settings_.name;
        q.kind = ledger::kind_failed;
        q.status = "open";
        q.limit = 10000;
        auto open = ledger_->find(q);
        if (!seqs.empty())
            std::erase_if(open, [&](const ledger::entry& e) { return std::find(seqs.begin(), seqs.end(), e.seq) == seqs.end(); });
        if (!open.empty()) {
            transaction header;
            header.commit_lsn = header.end_lsn = committed_;
            co_await sink_->begin_transaction(header);
            std::map<std::string, std::set<std::string>> blocked;
            for (const auto& e : open) {
                auto schema = schemas_.find(e.table);
                if (schema == schemas_.end()) {
                    result.failed.emplace_back(e.seq, "table " + e.table + " is not in this stream any more");
                    continue;
                }
                rapidjson::Document d;
                d.Parse(e.body.c_str());
                std::optional<change_event> c;
                if (!d.HasParseError() && d.IsObject() && d.HasMember("change")) {
                    rapidjson::StringBuffer buf;
                    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
                    d["change"].Accept(w);
                    c = change_from_json(std::string(buf.GetString(), buf.GetSize()), schema->second);
                }
                if (!c) {
                    result.failed.emplace_back(e.seq, "the ledger's row image cannot be read back");
                    continue;
                }
                const auto keys = keys_of(*c);
                auto& b = blocked[e.table];
                if (std::any_of(keys.begin(), keys.end(), [&](const auto& k) { return b.count(k); })) {
                    result.failed.emplace_back(e.seq, "an earlier change to the same key still fails");
                    continue;
                }
                std::vector<change_event> one{*c};
                auto error = co_await apply_guarded(std::move(one));
                if (error) {
                    for (const auto& k : keys) b.insert(k);
                    result.failed.emplace_back(e.seq, error->what());
                } else {
                    result.applied.push_back(e.seq);
                }
            }
            co_await sink_->commit_transaction(committed_);
        }
        ledger::entry r;
        r.stream = settings_.name;
        r.kind = ledger::kind_retry;
        r.message = "retry: " + std::to_string(result.applied.size()) + " applied, " +
                    std::to_string(result.failed.size()) + " still failing";
        std::string body = "{\"resolved\":[";
        for (std::size_t i = 0; i < result.applied.size(); ++i) body += (i ? "," : "") + std::to_string(result.applied[i]);
        body += "],\"failed\":[";
        for (std::size_t i = 0; i < result.failed.size(); ++i)
            body += std::string(i ? "," : "") + "{\"seq\":" + std::to_string(result.failed[i].first) +
                    ",\"message\":" + json_string(result.failed[i].second) + "}";
        body += "]}";
        r.body = std::move(body);
        ledger_->append(std::move(r));
        co_await load_holds();  // waits for the retry entry: the retried rows are no longer open
        log_("info", "stream " + settings_.name + ": " + std::string(result.applied.size() ? "" : "") + "retry of failed rows: " +
                         std::to_string(result.applied.size()) + " applied, " + std::to_string(result.failed.size()) +
                         " still failing");
    }
    result.done = true;
    std::lock_guard lock(mu_);
    *out = std::move(result);
}

}  // namespace datavor::engines::stream
