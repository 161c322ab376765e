#include "engines/ledger/ledger.hpp"

#include <algorithm>
#include <SQLiteCpp/SQLiteCpp.h>
#include <openssl/evp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <condition_variable>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace datavor::engines::ledger {
namespace {

const std::string genesis(64, '0');

std::int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Every field but the hashes and the derived status, in a fixed order.
std::string canonical(const entry& e) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartArray();
    w.Int64(e.seq);
    w.Int64(e.at_us);
    for (const std::string* s : {&e.stream, &e.kind, &e.table, &e.op, &e.row_key, &e.position, &e.error_class, &e.code,
                                 &e.message, &e.body})
        w.String(s->data(), static_cast<rapidjson::SizeType>(s->size()));
    w.EndArray();
    return {buf.GetString(), buf.GetSize()};
}

std::string chain_hash(const std::string& prev, const entry& e) { return sha256_hex(prev + "\n" + canonical(e)); }

std::string text(SQLite::Statement& q, int col) {
    auto c = q.getColumn(col);
    return c.isNull() ? std::string{} : c.getString();
}

entry read_entry(SQLite::Statement& q) {
    entry e;
    e.seq = q.getColumn(0).getInt64();
    e.at_us = q.getColumn(1).getInt64();
    e.stream = text(q, 2);
    e.kind = text(q, 3);
    e.table = text(q, 4);
    e.op = text(q, 5);
    e.row_key = text(q, 6);
    e.position = text(q, 7);
    e.error_class = text(q, 8);
    e.code = text(q, 9);
    e.message = text(q, 10);
    e.body = text(q, 11);
    e.prev_hash = text(q, 12);
    e.hash = text(q, 13);
    e.status = text(q, 14);
    return e;
}

constexpr const char* select_entries =
    "SELECT e.seq, e.at_us, e.stream, e.kind, e.tbl, e.op, e.row_key, e.position, e.error_class, e.code, e.message, "
    "e.body, e.prev_hash, e.hash, f.status FROM entries e LEFT JOIN failed_state f ON f.seq = e.seq";

std::string day_of(std::int64_t us) {
    const std::time_t t = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

// The seqs a retry or dismissal resolved: body {"seqs":[…]}.
std::vector<std::int64_t> seqs_of(const std::string& body) {
    std::vector<std::int64_t> out;
    rapidjson::Document d;
    d.Parse(body.c_str());
    if (d.HasParseError() || !d.IsObject()) return out;
    auto it = d.FindMember("resolved");
    if (it == d.MemberEnd() || !it->value.IsArray()) return out;
    for (const auto& v : it->value.GetArray())
        if (v.IsInt64()) out.push_back(v.GetInt64());
    return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
    row_digest d;
    d.add(data);
    return d.hex();
}

row_digest::row_digest() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("SHA-256 is not available from OpenSSL");
}
row_digest::~row_digest() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
row_digest::row_digest(const row_digest& other) : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_MD_CTX_copy_ex(static_cast<EVP_MD_CTX*>(ctx_), static_cast<const EVP_MD_CTX*>(other.ctx_)) != 1)
        throw std::runtime_error("cannot copy a SHA-256 state (OpenSSL)");
}
row_digest& row_digest::operator=(const row_digest& other) {
    if (this != &other &&
        EVP_MD_CTX_copy_ex(static_cast<EVP_MD_CTX*>(ctx_), static_cast<const EVP_MD_CTX*>(other.ctx_)) != 1)
        throw std::runtime_error("cannot copy a SHA-256 state (OpenSSL)");
    return *this;
}
void row_digest::add(std::string_view bytes) {
    EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size());
}
std::string row_digest::hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &n);
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (unsigned i = 0; i < n; ++i) {
        out.push_back(digits[md[i] >> 4]);
        out.push_back(digits[md[i] & 15]);
    }
    return out;
}

struct ledger::impl {
    std::filesystem::path file;
    ledger_options opts;
    std::unique_ptr<SQLite::Database> db;  // the writer's connection (guarded by write_mu)
    std::mutex write_mu;
    std::int64_t last_seq = 0;
    std::string last_hash = genesis;

    mutable std::mutex mu;  // queue, health, counters
    std::condition_variable cv, written;
    std::deque<entry> queue;
    std::uint64_t appended = 0, stored = 0;  // entries appended / written so far
    std::string health;
    std::string retention_error;  // the last automatic pass's failure
    bool stopping = false;
    std::thread writer;
    std::thread pruner;  // automatic retention, when configured

    SQLite::Database reader() const {
        SQLite::Database d(file.string(), SQLite::OPEN_READONLY);
        d.setBusyTimeout(5000);
        return d;
    }

    void open() {
        std::filesystem::create_directories(file.parent_path());
        db = std::make_unique<SQLite::Database>(file.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        db->setBusyTimeout(2000);
        db->exec("PRAGMA journal_mode=WAL");
        db->exec("PRAGMA synchronous=NORMAL");
        db->exec(R"sql(
CREATE TABLE IF NOT EXISTS entries (
  seq INTEGER PRIMARY KEY, at_us INTEGER NOT NULL, stream TEXT NOT NULL, kind TEXT NOT NULL,
  tbl TEXT NOT NULL DEFAULT '', op TEXT NOT NULL DEFAULT '', row_key TEXT NOT NULL DEFAULT '',
  position TEXT NOT NULL DEFAULT '', error_class TEXT NOT NULL DEFAULT '', code TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '', body TEXT NOT NULL DEFAULT '{}',
  prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS entries_stream_kind ON entries (stream, kind, seq);
CREATE INDEX IF NOT EXISTS entries_at ON entries (at_us);
CREATE TABLE IF NOT EXISTS failed_state (
  seq INTEGER PRIMARY KEY, stream TEXT NOT NULL, tbl TEXT NOT NULL, row_key TEXT NOT NULL,
  status TEXT NOT NULL, resolved_seq INTEGER);
CREATE INDEX IF NOT EXISTS failed_open ON failed_state (stream, status, seq);
)sql");
        read_head();
    }

    void read_head() {
        SQLite::Statement last(*db, "SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1");
        if (last.executeStep()) {
            last_seq = last.getColumn(0).getInt64();
            last_hash = last.getColumn(1).getString();
        }
    }

    // Assigns seq and hashes and inserts, inside the caller's transaction.
    void insert(entry& e) {
        if (e.at_us == 0) e.at_us = now_us();
        if (e.body.empty()) e.body = "{}";
        e.seq = last_seq + 1;
        e.prev_hash = last_hash;
        e.hash = chain_hash(e.prev_hash, e);
        SQLite::Statement ins(*db,
                              "INSERT INTO entries (seq, at_us, stream, kind, tbl, op, row_key, position, error_class, "
                              "code, message, body, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        int i = 1;
        ins.bind(i++, e.seq);
        ins.bind(i++, e.at_us);
        for (const std::string* s : {&e.stream, &e.kind, &e.table, &e.op, &e.row_key, &e.position, &e.error_class,
                                     &e.code, &e.message, &e.body, &e.prev_hash, &e.hash})
            ins.bind(i++, *s);
        ins.exec();
        if (e.kind == kind_failed) {
            SQLite::Statement f(*db, "INSERT INTO failed_state (seq, stream, tbl, row_key, status) VALUES (?,?,?,?,?)");
            f.bind(1, e.seq);
            f.bind(2, e.stream);
            f.bind(3, e.table);
            f.bind(4, e.row_key);
            f.bind(5, e.status.empty() ? std::string("open") : e.status);
            f.exec();
        } else if (e.kind == kind_retry || e.kind == kind_dismiss) {
            const std::string status = e.kind == kind_dismiss ? "dismissed" : "retried";
            for (auto s : seqs_of(e.body)) {
                SQLite::Statement u(*db, "UPDATE failed_state SET status = ?, resolved_seq = ? WHERE seq = ?");
                u.bind(1, status);
                u.bind(2, e.seq);
                u.bind(3, s);
                u.exec();
            }
        }
        last_seq = e.seq;
        last_hash = e.hash;
    }

    // Writes `batch` in one transaction; on failure nothing is written and
    // the chain's head is restored.
    void write(std::vector<entry>& batch) {
        std::lock_guard lock(write_mu);
        const auto seq0 = last_seq;
        const auto hash0 = last_hash;
        try {
            SQLite::Transaction tx(*db, SQLite::TransactionBehavior::IMMEDIATE);
            read_head();  // another process (datavor ledger retry) may have appended
            for (auto& e : batch) insert(e);
            tx.commit();
        } catch (...) {
            last_seq = seq0;
            last_hash = hash0;
            throw;
        }
    }

    void run() {
        std::unique_lock lock(mu);
        for (;;) {
            cv.wait_for(lock, opts.flush_interval, [&] { return stopping || queue.size() >= opts.flush_entries; });
            if (queue.empty()) {
                if (stopping) return;
                continue;
            }
            std::vector<entry> batch;
            const std::size_t n = std::min(queue.size(), std::max<std::size_t>(opts.flush_entries, 1) * 4);
            batch.reserve(n);
            for (std::size_t i = 0; i < n; ++i) batch.push_back(queue[i]);
            lock.unlock();
            std::string error;
            try {
                write(batch);
            } catch (const std::exception& x) {
                error = std::string("cannot write the ledger ") + file.string() + ": " + x.what() +
                        " (free disk space, or close what holds the database locked; queued entries are kept and "
                        "written as soon as it works)";
            }
            lock.lock();
            if (error.empty()) {
                queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(n));
                stored += n;
                health.clear();
                written.notify_all();
            } else {
                health = error;
                written.notify_all();
                if (stopping) return;  // give up at exit: the entries are lost with the process anyway
                cv.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
            }
        }
    }
};

ledger::ledger(std::filesystem::path file, ledger_options options)
    : file_(std::move(file)), options_(options), impl_(std::make_unique<impl>()) {
    impl_->file = file_;
    impl_->opts = options_;
    impl_->open();
    impl_->writer = std::thread([this] { impl_->run(); });
    if (options_.auto_retention) impl_->pruner = std::thread([this] { prune_loop(); });
}

void ledger::prune_loop() {
    auto wait = std::min<std::chrono::milliseconds>(options_.retention_every, std::chrono::minutes(1));
    for (;;) {
        {
            std::unique_lock lock(impl_->mu);
            if (impl_->cv.wait_for(lock, wait, [&] { return impl_->stopping; })) return;
        }
        wait = options_.retention_every;
        std::string error;
        try {
            apply_retention(*options_.auto_retention);
        } catch (const std::exception& x) {
            error = std::string("retention pass on ") + file_.string() + " failed: " + x.what() +
                    " (retried at the next pass)";
        }
        std::lock_guard lock(impl_->mu);
        impl_->retention_error = error;
    }
}

std::string ledger::retention_health() const {
    std::lock_guard lock(impl_->mu);
    return impl_->retention_error;
}

ledger::~ledger() {
    {
        std::lock_guard lock(impl_->mu);
        impl_->stopping = true;
    }
    impl_->cv.notify_all();
    if (impl_->pruner.joinable()) impl_->pruner.join();
    if (impl_->writer.joinable()) impl_->writer.join();
}

std::int64_t ledger::used_bytes() const {
    auto db = impl_->reader();
    const auto pages = db.execAndGet("PRAGMA page_count").getInt64();
    const auto free_pages = db.execAndGet("PRAGMA freelist_count").getInt64();
    return (pages - free_pages) * db.execAndGet("PRAGMA page_size").getInt64();
}

void ledger::append(entry e) {
    std::lock_guard lock(impl_->mu);
    impl_->queue.push_back(std::move(e));
    ++impl_->appended;
    if (impl_->queue.size() >= impl_->opts.flush_entries) impl_->cv.notify_all();
}

bool ledger::flush(std::chrono::milliseconds max) {
    std::unique_lock lock(impl_->mu);
    const auto target = impl_->appended;
    impl_->cv.notify_all();
    const auto deadline = std::chrono::steady_clock::now() + max;
    while (impl_->stored < target) {
        impl_->cv.notify_all();
        if (impl_->written.wait_until(lock, deadline) == std::cv_status::timeout && impl_->stored < target) return false;
    }
    return true;
}

std::uint64_t ledger::ticket() const {
    std::lock_guard lock(impl_->mu);
    impl_->cv.notify_all();
    return impl_->appended;
}

bool ledger::written(std::uint64_t ticket) const {
    std::lock_guard lock(impl_->mu);
    return impl_->stored >= ticket;
}

std::size_t ledger::backlog() const {
    std::lock_guard lock(impl_->mu);
    return impl_->queue.size();
}

std::string ledger::health() const {
    std::lock_guard lock(impl_->mu);
    return impl_->health;
}

std::vector<entry> ledger::find(const query& q) const {
    auto db = impl_->reader();
    std::string sql = select_entries;
    std::vector<std::string> conds;
    std::vector<std::string> args;
    auto eq = [&](const std::string& v, const char* col) {
        if (v.empty()) return;
        conds.push_back(std::string(col) + " = ?");
        args.push_back(v);
    };
    eq(q.stream, "e.stream");
    eq(q.kind, "e.kind");
    eq(q.table, "e.tbl");
    eq(q.row_key, "e.row_key");
    eq(q.error_class, "e.error_class");
    if (!q.status.empty()) {
        conds.push_back("f.status = ?");
        args.push_back(q.status);
    }
    if (q.from_us) conds.push_back("e.at_us >= " + std::to_string(q.from_us));
    if (q.to_us) conds.push_back("e.at_us < " + std::to_string(q.to_us));
    if (q.after_seq) conds.push_back(std::string("e.seq ") + (q.newest_first ? "< " : "> ") + std::to_string(q.after_seq));
    for (std::size_t i = 0; i < conds.size(); ++i) sql += (i ? " AND " : " WHERE ") + conds[i];
    sql += std::string(" ORDER BY e.seq ") + (q.newest_first ? "DESC" : "ASC") + " LIMIT " +
           std::to_string(std::min<std::size_t>(q.limit, 10000));
    SQLite::Statement st(db, sql);
    for (std::size_t i = 0; i < args.size(); ++i) st.bind(static_cast<int>(i) + 1, args[i]);
    std::vector<entry> out;
    while (st.executeStep()) out.push_back(read_entry(st));
    return out;
}

std::optional<entry> ledger::get(std::int64_t seq) const {
    auto db = impl_->reader();
    SQLite::Statement st(db, std::string(select_entries) + " WHERE e.seq = ?");
    st.bind(1, seq);
    if (!st.executeStep()) return std::nullopt;
    return read_entry(st);
}

std::vector<class_count> ledger::failed_summary(const std::string& stream) const {
    auto db = impl_->reader();
    SQLite::Statement st(db,
                         "SELECT e.error_class, e.tbl, e.code, sum(f.status = 'open'), count(*), min(e.at_us), "
                         "max(e.at_us) FROM entries e JOIN failed_state f ON f.seq = e.seq WHERE e.stream = ? "
                         "GROUP BY e.error_class, e.tbl, e.code ORDER BY count(*) DESC");
    st.bind(1, stream);
    std::vector<class_count> out;
    while (st.executeStep()) {
        class_count c;
        c.error_class = text(st, 0);
        c.table = text(st, 1);
        c.code = text(st, 2);
        c.open = st.getColumn(3).getInt64();
        c.total = st.getColumn(4).getInt64();
        c.first_us = st.getColumn(5).getInt64();
        c.last_us = st.getColumn(6).getInt64();
        out.push_back(std::move(c));
    }
    return out;
}

verify_result ledger::verify() const {
    auto db = impl_->reader();
    verify_result r;
    // Ranges removed by retention, by first seq: {last seq, hash of the last}.
    std::map<std::int64_t, std::pair<std::int64_t, std::string>> removed;
    {
        SQLite::Statement st(db, "SELECT body FROM entries WHERE kind = 'rollup' ORDER BY seq");
        while (st.executeStep()) {
            rapidjson::Document d;
            d.Parse(st.getColumn(0).getString().c_str());
            if (d.HasParseError() || !d.IsObject() || !d.HasMember("ranges") || !d["ranges"].IsArray()) continue;
            for (const auto& g : d["ranges"].GetArray())
                if (g.IsObject() && g.HasMember("from") && g.HasMember("to") && g.HasMember("last_hash") &&
                    g["from"].IsInt64() && g["to"].IsInt64() && g["last_hash"].IsString())
                    removed[g["from"].GetInt64()] = {g["to"].GetInt64(), g["last_hash"].GetString()};
        }
    }
    // A gap [from, to] must be exactly a run of recorded ranges; returns the
    // hash of its last entry, or nullopt.
    auto explain = [&](std::int64_t from, std::int64_t to) -> std::optional<std::string> {
        std::string last;
        for (auto at = from; at <= to;) {
            auto it = removed.find(at);
            if (it == removed.end() || it->second.first > to) return std::nullopt;
            last = it->second.second;
            at = it->second.first + 1;
        }
        return last;
    };
    SQLite::Statement st(db, std::string(select_entries) + " ORDER BY e.seq");
    std::int64_t expected_seq = 1;
    std::string prev = genesis;
    while (st.executeStep()) {
        entry e = read_entry(st);
        auto fail = [&](std::string why) {
            r.ok = false;
            r.first_bad_seq = e.seq;
            r.problem = std::move(why);
        };
        if (e.seq != expected_seq) {
            auto last = e.seq > expected_seq ? explain(expected_seq, e.seq - 1) : std::nullopt;
            if (!last) {
                fail("entries " + std::to_string(expected_seq) + " to " + std::to_string(e.seq - 1) +
                     " are missing and no rollup entry records their removal");
                return r;
            }
            r.rolled_up += e.seq - expected_seq;
            prev = *last;
        }
        if (e.prev_hash != prev) {
            fail("entry " + std::to_string(e.seq) + " does not follow the entry before it (prev_hash differs)");
            return r;
        }
        if (chain_hash(e.prev_hash, e) != e.hash) {
            fail("entry " + std::to_string(e.seq) + " was altered after it was written (its hash does not match)");
            return r;
        }
        prev = e.hash;
        expected_seq = e.seq + 1;
        ++r.entries;
    }
    return r;
}

std::int64_t ledger::apply_retention(const retention& ret) {
    flush();
    auto& s = *impl_;
    const std::int64_t cutoff =
        now_us() - std::chrono::duration_cast<std::chrono::microseconds>(ret.batch_age).count();
    std::lock_guard lock(s.write_mu);
    // Size: batch entries up to `size_seq` go too, the oldest first, enough of
    // them (by their share of the entries) to come down to ~90% of the limit.
    std::int64_t size_seq = 0;
    std::int64_t used = 0;
    if (ret.max_bytes > 0) {
        const auto pages = s.db->execAndGet("PRAGMA page_count").getInt64();
        const auto free_pages = s.db->execAndGet("PRAGMA freelist_count").getInt64();
        used = (pages - free_pages) * s.db->execAndGet("PRAGMA page_size").getInt64();
        if (used > ret.max_bytes) {
            const auto all = s.db->execAndGet("SELECT count(*) FROM entries").getInt64();
            const double share = (static_cast<double>(used) - 0.9 * static_cast<double>(ret.max_bytes)) / static_cast<double>(used);
            const auto k = std::max<std::int64_t>(1, static_cast<std::int64_t>(share * static_cast<double>(all)) + 1);
            SQLite::Statement q(*s.db, "SELECT seq FROM entries WHERE kind = 'batch' ORDER BY seq LIMIT 1 OFFSET ?");
            q.bind(1, k - 1);
            if (q.executeStep()) size_seq = q.getColumn(0).getInt64();
            else size_seq = s.db->execAndGet("SELECT coalesce(max(seq), 0) FROM entries WHERE kind = 'batch'").getInt64();
        }
    }
    // Runs of consecutive seqs that are all old batch entries.
    struct range {
        std::int64_t from, to;
        std::string last_hash;
    };
    std::vector<range> ranges;
    // day -> stream -> {batches, changes}
    std::map<std::string, std::map<std::string, std::pair<std::int64_t, std::int64_t>>> summary;
    {
        SQLite::Statement st(*s.db, "SELECT seq, kind, at_us, stream, hash, body FROM entries WHERE seq <= "
                                    "max((SELECT coalesce(max(seq), 0) FROM entries WHERE at_us < ?), ?) ORDER BY seq");
        st.bind(1, cutoff);
        st.bind(2, size_seq);
        while (st.executeStep()) {
            const auto seq = st.getColumn(0).getInt64();
            const bool removable = st.getColumn(1).getString() == kind_batch &&
                                   (st.getColumn(2).getInt64() < cutoff || seq <= size_seq);
            if (!removable) continue;
            if (!ranges.empty() && ranges.back().to == seq - 1) {
                ranges.back().to = seq;
                ranges.back().last_hash = st.getColumn(4).getString();
            } else {
                ranges.push_back({seq, seq, st.getColumn(4).getString()});
            }
            rapidjson::Document d;
            d.Parse(st.getColumn(5).getString().c_str());
            std::int64_t changes = 0;
            if (!d.HasParseError() && d.IsObject() && d.HasMember("changes") && d["changes"].IsInt64())
                changes = d["changes"].GetInt64();
            auto& day = summary[day_of(st.getColumn(2).getInt64())][st.getColumn(3).getString()];
            ++day.first;
            day.second += changes;
        }
    }
    if (ranges.empty()) return 0;
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    std::int64_t removed = 0;
    w.StartObject();
    w.Key("ranges");
    w.StartArray();
    for (const auto& g : ranges) {
        w.StartObject();
        w.Key("from");
        w.Int64(g.from);
        w.Key("to");
        w.Int64(g.to);
        w.Key("last_hash");
        w.String(g.last_hash.c_str());
        w.EndObject();
        removed += g.to - g.from + 1;
    }
    w.EndArray();
    w.Key("days");
    w.StartArray();
    for (const auto& [day, streams] : summary)
        for (const auto& [stream, c] : streams) {
            w.StartObject();
            w.Key("day");
            w.String(day.c_str());
            w.Key("stream");
            w.String(stream.c_str());
            w.Key("batches");
            w.Int64(c.first);
            w.Key("changes");
            w.Int64(c.second);
            w.EndObject();
        }
    w.EndArray();
    w.Key("batch_age_hours");
    w.Int64(ret.batch_age.count());
    if (size_seq > 0) {
        w.Key("max_bytes");
        w.Int64(ret.max_bytes);
        w.Key("used_bytes");
        w.Int64(used);
    }
    w.EndObject();
    entry roll;
    roll.stream = "*";
    roll.kind = kind_rollup;
    roll.message = "retention: " + std::to_string(removed) + " batch entries older than " +
                   std::to_string(ret.batch_age.count()) + " h" +
                   (size_seq > 0 ? " or beyond the size limit (" + std::to_string(ret.max_bytes >> 20) + " MiB)" : "") +
                   " rolled up into daily summaries";
    roll.body = std::string(buf.GetString(), buf.GetSize());
    const auto seq0 = s.last_seq;
    const auto hash0 = s.last_hash;
    try {
        SQLite::Transaction tx(*s.db, SQLite::TransactionBehavior::IMMEDIATE);
        s.read_head();
        s.insert(roll);
        for (const auto& g : ranges) {
            SQLite::Statement del(*s.db, "DELETE FROM entries WHERE seq BETWEEN ? AND ? AND kind = 'batch'");
            del.bind(1, g.from);
            del.bind(2, g.to);
            del.exec();
        }
        tx.commit();
    } catch (...) {
        s.last_seq = seq0;
        s.last_hash = hash0;
        throw;
    }
    return removed;
}

}  // namespace datavor::engines::ledger
