#include "connectors/pg/pg_source.hpp"
#include "connectors/pg/type_names.hpp"

#include "connectors/common/change_spool.hpp"
#include "connectors/common/sql_quote.hpp"
#include "connectors/pg/copy_text.hpp"
#include "connectors/pg/pg_error.hpp"
#include "connectors/pg/pg_prober.hpp"
#include "connectors/pg/pg_session.hpp"
#include "connectors/pg/pgoutput_decoder.hpp"
#include "connectors/pg/replication_protocol.hpp"
#include "connectors/pg/snapshot_reader.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <unordered_map>

namespace asio = boost::asio;

namespace datavor::connectors::pg {
namespace {

// Session settings that make every value's text form canonical and exact.
constexpr const char* canonical_options =
    "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex";

std::string value_of(PGresult* r, int row, int col) {
    return PQgetisnull(r, row, col) ? std::string{} : std::string(PQgetvalue(r, row, col));
}

std::int64_t now_unix_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

constexpr const char* table_sql = R"sql(
SELECT c.oid, n.nspname, c.relname, c.relreplident
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p'))sql";

// Key columns: the primary key, or every column under REPLICA IDENTITY FULL,
// or the replica identity index.
constexpr const char* columns_sql = R"sql(
SELECT a.attname, a.atttypid, a.atttypmod, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       CASE c.relreplident
         WHEN 'f' THEN true
         WHEN 'i' THEN EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisreplident AND a.attnum = ANY (i.indkey))
         ELSE EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY (i.indkey))
       END
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum)sql";

}  // namespace

std::string default_slot_name(std::string_view stream) {
    std::string s = "datavor_";
    for (char c : stream) s.push_back(std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_');
    return s.substr(0, 63);
}

struct pg_source::impl {
    explicit impl(pg_source_options o) : opts(std::move(o)) {
        if (opts.slot.empty()) opts.slot = default_slot_name(opts.stream);
        if (opts.publication.empty()) opts.publication = opts.slot;
        if (opts.spool_dir.empty()) opts.spool_dir = std::filesystem::temp_directory_path() / "datavor-spool";
    }

    pg_source_options opts;
    std::optional<pg_session> sql;       // catalog, publication, type names
    std::optional<pg_session> repl;      // walsender
    std::optional<snapshot_reader> reader;  // the copy in progress (initial snapshot or a re-snapshot)
    std::vector<std::shared_ptr<const table_schema>> tables;
    std::vector<std::int64_t> estimates;  // parallel to tables
    lsn start;                   // deliver only transactions ending after this
    bool streaming = false;
    int proto = 1;
    pgoutput_decoder decoder{1};
    std::optional<transaction> open_txn;
    // Streamed in-progress transactions (protocol 2), by top-level xid: their
    // changes on disk, and where each subtransaction's first change starts.
    struct streamed_txn {
        std::shared_ptr<change_spool> spool;
        std::vector<std::pair<std::uint32_t, change_spool::mark_t>> subxacts;  // in order of first change
        std::unordered_map<std::uint32_t, std::size_t> subxact_index;
    };
    std::unordered_map<std::uint32_t, streamed_txn> in_progress;
    std::optional<std::uint32_t> stream_xid;  // the open stream block's transaction
    std::deque<transaction> ready;
    lsn received;                // end of the last complete transaction seen
    lsn confirmed;               // committed in the target
    lsn last_delivered;          // end of the last transaction handed out
    lsn idle_end;                // WAL end of a keepalive that arrived with nothing pending
    std::chrono::steady_clock::time_point last_status{};
    std::chrono::steady_clock::time_point last_idle{};
    std::chrono::steady_clock::time_point last_health{};
    mutable std::mutex health_mu;
    source_health health;

    // Reads the slot's retained WAL every few seconds (on the catalog connection).
    asio::awaitable<void> refresh_health() {
        if (std::chrono::steady_clock::now() - last_health < std::chrono::seconds(5)) co_return;
        last_health = std::chrono::steady_clock::now();
        pg_params p;
        p.emplace_back(opts.slot);
        auto r = co_await sql->query(
            "SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, -1), coalesce(wal_status, ''), "
            "coalesce(safe_wal_size, -1) FROM pg_replication_slots WHERE slot_name = $1",
            std::move(p));
        source_health h;
        if (PQntuples(r.get()) == 1) {
            h.retained_bytes = std::stoll(value_of(r.get(), 0, 0));
            h.wal_status = value_of(r.get(), 0, 1);
            h.safe_bytes = std::stoll(value_of(r.get(), 0, 2));
        } else {
            h.wal_status = "missing";
        }
        std::lock_guard lock(health_mu);
        health = h;
    }

    std::map<std::string, std::string> conn_options(bool replication) const {
        auto o = libpq_options(opts.spec, opts.password);
        o["options"] = canonical_options;
        if (replication) o["replication"] = "database";
        return o;
    }

    std::int64_t last_estimate = -1;  // the row estimate of the table describe() read last

    asio::awaitable<std::shared_ptr<const table_schema>> describe(const std::string& name) {
        auto qn = split_qualified(name, "public");
        pg_params p;
        p.emplace_back(quote_pg_ident(qn.schema) + "." + quote_pg_ident(qn.name));
        auto t = co_await sql->query(table_sql, std::move(p));
        if (PQntuples(t.get()) != 1)
            throw pg_error("table " + name + " not found (or not a table): check the name, schema.table", "42P01", false);
        auto schema = std::make_shared<table_schema>();
        schema->relation_id = static_cast<std::uint32_t>(std::stoul(value_of(t.get(), 0, 0)));
        schema->schema = value_of(t.get(), 0, 1);
        schema->name = value_of(t.get(), 0, 2);
        schema->replica_identity = value_of(t.get(), 0, 3)[0];
        pg_params q;
        q.emplace_back(std::to_string(schema->relation_id));
        auto cols = co_await sql->query(columns_sql, std::move(q));
        for (int i = 0; i < PQntuples(cols.get()); ++i) {
            column_def c;
            c.name = value_of(cols.get(), i, 0);
            c.type_oid = static_cast<std::uint32_t>(std::stoul(value_of(cols.get(), i, 1)));
            c.type_mod = std::stoi(value_of(cols.get(), i, 2));
            c.type_name = value_of(cols.get(), i, 3);
            c.nullable = value_of(cols.get(), i, 4) != "t";
            c.key = value_of(cols.get(), i, 5) == "t";
            schema->columns.push_back(std::move(c));
        }
        pg_params e;
        e.emplace_back(std::to_string(schema->relation_id));
        auto est = co_await sql->query(
            "SELECT CASE WHEN reltuples < 0 THEN -1 ELSE reltuples::bigint END FROM pg_class WHERE oid = $1::oid",
            std::move(e));
        last_estimate = PQntuples(est.get()) == 1 ? std::stoll(value_of(est.get(), 0, 0)) : -1;
        if (schema->key_columns().empty())
            throw pg_error("table " + schema->qualified() +
                               " has no primary key and no REPLICA IDENTITY FULL, so updates and deletes cannot be "
                               "matched: run ALTER TABLE " + quote_pg_ident(schema->schema) + "." +
                               quote_pg_ident(schema->name) + " REPLICA IDENTITY FULL; (or add a primary key)",
                           "55000", false);
        co_return schema;
    }

    asio::awaitable<void> ensure_publication() {
        pg_params p;
        p.emplace_back(opts.publication);
        auto r = co_await sql->query("SELECT puballtables FROM pg_publication WHERE pubname = $1", std::move(p));
        std::string list;
        for (const auto& t : tables)
            list += (list.empty() ? "" : ", ") + quote_pg_ident(t->schema) + "." + quote_pg_ident(t->name);
        if (PQntuples(r.get()) == 0) {
            co_await sql->query("CREATE PUBLICATION " + quote_pg_ident(opts.publication) + " FOR TABLE " + list);
            co_return;
        }
        if (value_of(r.get(), 0, 0) == "t") co_return;
        for (const auto& t : tables) {
            pg_params q;
            q.emplace_back(opts.publication);
            q.emplace_back(t->schema);
            q.emplace_back(t->name);
            auto has = co_await sql->query(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3",
                std::move(q));
            if (PQntuples(has.get()) == 0)
                co_await sql->query("ALTER PUBLICATION " + quote_pg_ident(opts.publication) + " ADD TABLE " +
                                    quote_pg_ident(t->schema) + "." + quote_pg_ident(t->name));
        }
    }

    // `resuming`: a slot that lost its WAL cannot serve the resume (a new
    // stream drops it and starts over instead).
    asio::awaitable<std::optional<lsn>> slot_confirmed_flush(bool resuming) {
        pg_params p;
        p.emplace_back(opts.slot);
        auto r = co_await sql->query(
            "SELECT coalesce(confirmed_flush_lsn::text, ''), plugin, coalesce(wal_status, '') FROM pg_replication_slots "
            "WHERE slot_name = $1",
            std::move(p));
        if (PQntuples(r.get()) == 0) co_return std::nullopt;
        if (resuming && value_of(r.get(), 0, 2) == "lost")
            throw pg_error("replication slot " + opts.slot +
                               " lost the WAL it needed (wal_status = lost: max_slot_wal_keep_size was exceeded), so "
                               "changes since the target's position can no longer be read. Re-snapshot the stream: "
                               "resume_stream with resnapshot: true (CLI: stream run --resnapshot) takes a new slot "
                               "and copies every table again",
                           "55000", false);
        co_return lsn::parse(value_of(r.get(), 0, 0)).value_or(lsn{});
    }

    asio::awaitable<void> send_status(bool reply_requested) {
        standby_status_update s;
        s.written = std::max(received, confirmed);
        s.flushed = confirmed;
        s.applied = confirmed;
        s.client_time_us = now_unix_us();
        s.reply_requested = reply_requested;
        co_await repl->send_copy(build_standby_status_update(s));
        last_status = std::chrono::steady_clock::now();
    }

    asio::awaitable<void> start_replication() {
        proto = opts.protocol_version;
        if (proto == 0) proto = PQserverVersion(repl->native()) >= 140000 ? 2 : 1;
        decoder = pgoutput_decoder(proto);
        // A Relation message carries OIDs, not names, and no nullability:
        // take them from the catalog's definition for columns it still
        // describes the same way, else PostgreSQL's name for a built-in type.
        decoder.set_enricher([this](table_schema& t) {
            const table_schema* known = nullptr;
            for (const auto& k : tables)
                if (k->relation_id == t.relation_id || (k->schema == t.schema && k->name == t.name)) known = k.get();
            for (auto& c : t.columns) {
                const column_def* named = nullptr;
                if (known)
                    for (const auto& k : known->columns)
                        if (k.name == c.name) named = &k;
                if (named) c.nullable = named->nullable;  // a type change keeps NOT NULL
                if (named && named->type_oid == c.type_oid && named->type_mod == c.type_mod) c.type_name = named->type_name;
                else c.type_name = builtin_type_name(c.type_oid, c.type_mod);
            }
        });
        const std::string options = proto >= 2 ? "proto_version '2', streaming 'on'" : "proto_version '1'";
        co_await repl->start_copy("START_REPLICATION SLOT " + quote_pg_ident(opts.slot) + " LOGICAL " +
                                  start.to_string() + " (" + options + ", publication_names " +
                                  quote_pg_literal(quote_pg_ident(opts.publication)) + ")");
        streaming = true;
    }

    // Whether nothing received is waiting to be applied. A streamed
    // transaction still in progress does not count: its commit lies ahead of
    // any WAL end confirmed now, so after a restart the server sends it again
    // in full.
    bool idle() const { return !open_txn && ready.empty() && last_delivered <= confirmed; }

    // A change of the open transaction: regular (in memory until it grows
    // past spill_after_changes, then on disk) or streamed (always on disk).
    void add_change(std::optional<std::uint32_t> xid, change_event c) {
        if (stream_xid) {
            auto& st = in_progress[*stream_xid];
            if (!st.spool) st.spool = std::make_shared<change_spool>(opts.spool_dir);
            const auto sub = xid.value_or(*stream_xid);
            if (sub != *stream_xid && !st.subxact_index.count(sub)) {
                st.subxact_index.emplace(sub, st.subxacts.size());
                st.subxacts.emplace_back(sub, st.spool->mark());
            }
            st.spool->append(c);
            return;
        }
        if (!open_txn) return;
        if (open_txn->spooled) {
            open_txn->spooled->append(c);
            return;
        }
        open_txn->changes.push_back(std::move(c));
        if (open_txn->changes.size() >= opts.spill_after_changes) {
            open_txn->spooled = std::make_shared<change_spool>(opts.spool_dir);
            for (const auto& held : open_txn->changes) open_txn->spooled->append(held);
            open_txn->changes = {};
        }
    }

    void stream_abort(const stream_abort_msg& m) {
        auto it = in_progress.find(m.xid);
        if (it == in_progress.end()) return;
        if (m.subxid == m.xid) {
            in_progress.erase(it);  // the whole transaction: its spill file goes
            return;
        }
        // A subtransaction: its changes and those of every subtransaction
        // begun after it (its children) are dropped.
        auto& st = it->second;
        auto sub = st.subxact_index.find(m.subxid);
        if (sub == st.subxact_index.end()) return;  // it had no changes
        const auto from = sub->second;
        st.spool->truncate(st.subxacts[from].second);
        for (auto i = from; i < st.subxacts.size(); ++i) st.subxact_index.erase(st.subxacts[i].first);
        st.subxacts.resize(from);
    }

    void stream_commit(const stream_commit_msg& m) {
        auto it = in_progress.find(m.xid);
        received = std::max(received, m.end_lsn);
        if (it == in_progress.end()) return;
        auto spool = std::move(it->second.spool);
        in_progress.erase(it);
        // Already in the target (resume): skip, never apply twice.
        if (m.end_lsn <= start || !spool || spool->changes() == 0) return;
        transaction t;
        t.xid = m.xid;
        t.commit_lsn = m.commit_lsn;
        t.end_lsn = m.end_lsn;
        t.commit_time_us = m.commit_time_us;
        t.spooled = std::move(spool);
        ready.push_back(std::move(t));
    }

    // An old tuple of kind 'K' carries the replica identity's columns only;
    // pgoutput sends the others as nulls. They are not the row's values: mark
    // them as not carried, so no sink writes them over real data.
    static void key_only(const table_schema& t, row& old) {
        for (std::size_t i = 0; i < old.size() && i < t.columns.size(); ++i)
            if (!t.columns[i].key) old[i] = value::unchanged_value();
    }

    void handle_xlog(const xlog_data& x) {
        auto decoded = decoder.decode(x.payload);
        if (!decoded)
            throw pg_error("cannot decode a pgoutput message at " + x.wal_start.to_string() + ": " +
                               decoded.error().message(),
                           "XX000", false);
        std::visit(
            [&](auto& m) {
                using T = std::decay_t<decltype(m)>;
                if constexpr (std::is_same_v<T, begin_msg>) {
                    open_txn.emplace();
                    open_txn->xid = m.xid;
                    open_txn->commit_lsn = m.final_lsn;
                    open_txn->commit_time_us = m.commit_time_us;
                } else if constexpr (std::is_same_v<T, commit_msg>) {
                    if (!open_txn) throw pg_error("pgoutput Commit without Begin", "XX000", false);
                    open_txn->commit_lsn = m.commit_lsn;
                    open_txn->end_lsn = m.end_lsn;
                    received = std::max(received, m.end_lsn);
                    // Already in the target (resume): skip, never apply twice.
                    if (m.end_lsn > start && !open_txn->empty()) ready.push_back(std::move(*open_txn));
                    open_txn.reset();
                } else if constexpr (std::is_same_v<T, insert_msg>) {
                    add_change(m.xid, {m.table, change_op::insert, std::nullopt, std::move(m.new_row)});
                } else if constexpr (std::is_same_v<T, update_msg>) {
                    if (m.old_row && m.old_kind == 'K') key_only(*m.table, *m.old_row);
                    add_change(m.xid, {m.table, change_op::update, std::move(m.old_row), std::move(m.new_row)});
                } else if constexpr (std::is_same_v<T, erase_msg>) {
                    if (m.old_kind == 'K') key_only(*m.table, m.old_row);
                    add_change(m.xid, {m.table, change_op::erase, std::move(m.old_row), {}});
                } else if constexpr (std::is_same_v<T, truncate_msg>) {
                    for (auto& t : m.tables) add_change(m.xid, {t, change_op::truncate, std::nullopt, {}});
                } else if constexpr (std::is_same_v<T, stream_start_msg>) {
                    stream_xid = m.xid;
                } else if constexpr (std::is_same_v<T, stream_stop_msg>) {
                    stream_xid.reset();
                } else if constexpr (std::is_same_v<T, stream_commit_msg>) {
                    stream_commit(m);
                } else if constexpr (std::is_same_v<T, stream_abort_msg>) {
                    stream_abort(m);
                } else {
                    // relation (cached by the decoder), type, origin, message: nothing to apply.
                }
            },
            *decoded);
    }

    // Handles one CopyData message; returns true when a keepalive asked for a reply.
    bool handle_copy(const std::string& data) {
        auto msg = parse_server_copy_data(data);
        if (!msg) throw pg_error("malformed replication message: " + msg.error().message(), "XX000", false);
        if (auto* x = std::get_if<xlog_data>(&*msg)) {
            handle_xlog(*x);
            return false;
        }
        auto& k = std::get<primary_keepalive>(*msg);
        // Idle source: the server's WAL end is handed out (read_transactions)
        // as a transaction without changes, so the target commits it before
        // the slot is told; a quiet database never pins WAL, and the slot never
        // passes what the target holds.
        if (idle() && k.wal_end > confirmed) {
            idle_end = std::max(idle_end, k.wal_end);
            received = std::max(received, k.wal_end);
        }
        return k.reply_requested;
    }
};

pg_source::pg_source(pg_source_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
pg_source::~pg_source() = default;

asio::awaitable<source_open_result> pg_source::open(source_open_request request) {
    auto& s = *impl_;
    auto resume_from = request.start_over ? std::nullopt : request.resume_from;
    const auto mode = request.start_over && request.snapshot == snapshot_mode::never ? snapshot_mode::initial
                                                                                      : request.snapshot;
    s.sql.emplace(co_await pg_session::connect(s.conn_options(false), std::chrono::seconds(15)));
    for (const auto& t : s.opts.tables) {
        s.tables.push_back(co_await s.describe(t));
        s.estimates.push_back(s.last_estimate);
    }
    co_await s.ensure_publication();

    source_open_result out;
    out.tables = s.tables;
    out.estimated_rows = s.estimates;
    auto slot_flush = co_await s.slot_confirmed_flush(resume_from.has_value() || !request.target_keeps_position);
    // A target without a position store (a pipe, a device): the slot is the
    // only record of what was delivered. Resume from it (changes after its
    // confirmed position are sent again: at least once) rather than drop it,
    // which would skip every change made while the stream was down.
    if (!resume_from && !request.target_keeps_position && slot_flush) {
        out.resumed_from_slot = true;
        resume_from = *slot_flush;
    }
    if (resume_from) {
        if (!slot_flush)
            throw pg_error("replication slot " + s.opts.slot + " is gone (dropped outside Datavor?): changes after " +
                               resume_from->to_string() +
                               " cannot be read any more. Re-snapshot the stream: resume_stream with resnapshot: true "
                               "(CLI: stream run --resnapshot) takes a new slot and copies every table again",
                           "55000", false);
        s.start = std::max(*resume_from, *slot_flush);
        s.confirmed = s.start;
        s.repl.emplace(co_await pg_session::connect(s.conn_options(true), std::chrono::seconds(15)));
        out.start = s.start;
        co_return out;
    }
    // A new stream. A slot without a committed target position is a stream
    // that died during its snapshot: start over.
    s.repl.emplace(co_await pg_session::connect(s.conn_options(true), std::chrono::seconds(15)));
    if (slot_flush) co_await s.repl->simple_query("DROP_REPLICATION_SLOT " + quote_pg_ident(s.opts.slot) + " WAIT");
    const bool snapshot = mode != snapshot_mode::never;
    auto created = co_await s.repl->simple_query("CREATE_REPLICATION_SLOT " + quote_pg_ident(s.opts.slot) +
                                                 " LOGICAL pgoutput " + (snapshot ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT"));
    s.start = lsn::parse(value_of(created.get(), 0, 1)).value_or(lsn{});
    s.confirmed = s.start;
    out.start = s.start;
    if (snapshot) {
        snapshot_reader_options r;
        r.connection = s.conn_options(false);
        r.snapshot = value_of(created.get(), 0, 2);
        r.tables = s.tables;
        r.workers = s.opts.snapshot_workers;
        r.batch_rows = s.opts.snapshot_batch_rows;
        s.reader.emplace(std::move(r));
        out.snapshot_needed = true;
    }
    co_return out;
}

asio::awaitable<std::optional<snapshot_batch>> pg_source::read_snapshot() {
    auto& s = *impl_;
    if (!s.reader) co_return std::nullopt;
    auto batch = co_await s.reader->next();
    if (!batch) s.reader.reset();
    co_return batch;
}

asio::awaitable<change_source::table_snapshot> pg_source::start_table_snapshot(std::string table) {
    auto& s = *impl_;
    // One of the stream's tables, named as in the stream or schema-qualified.
    const auto wanted = split_qualified(table, "public");
    auto it = std::find_if(s.tables.begin(), s.tables.end(), [&](const auto& t) {
        return t->schema == wanted.schema && t->name == wanted.name;
    });
    if (it == s.tables.end())
        throw pg_error("table " + table + " is not in this stream (its tables: " + [&] {
            std::string names;
            for (const auto& t : s.tables) names += (names.empty() ? "" : ", ") + t->qualified();
            return names;
        }() + ")", "42P01", false);
    table_snapshot out;
    out.table = co_await s.describe((*it)->qualified());
    out.estimated_rows = s.last_estimate;
    snapshot_reader_options r;
    r.connection = s.conn_options(false);
    r.tables = {out.table};
    r.workers = 1;
    r.batch_rows = s.opts.snapshot_batch_rows;
    s.reader.emplace(std::move(r));
    co_return out;
}

asio::awaitable<void> pg_source::heartbeat() {
    auto& s = *impl_;
    if (s.repl && s.streaming && std::chrono::steady_clock::now() - s.last_status > std::chrono::seconds(5))
        co_await s.send_status(false);
}

asio::awaitable<std::vector<transaction>> pg_source::read_transactions(std::size_t max_changes) {
    auto& s = *impl_;
    if (!s.streaming) co_await s.start_replication();
    const auto entered = std::chrono::steady_clock::now();
    for (;;) {
        bool reply = false, drained = false;
        // Take everything already received, without waiting, in rounds of a
        // bounded number of messages: keepalives are answered and other work
        // on this thread runs even while a large transaction pours in.
        std::size_t changes = 0, messages = 0;
        for (const auto& t : s.ready) changes += t.change_count();
        std::string data;
        while (changes < max_changes && messages < 4096 && !reply) {
            auto polled = s.repl->poll_copy(data);
            if (polled == pg_session::copy_poll::none) {
                drained = true;
                break;
            }
            if (polled == pg_session::copy_poll::ended) {
                co_await s.repl->finish_copy();
                throw pg_error("the server ended the replication stream", "08006", true);
            }
            ++messages;
            const auto before = s.ready.size();
            reply |= s.handle_copy(data);
            for (auto i = before; i < s.ready.size(); ++i) changes += s.ready[i].change_count();
        }
        co_await s.refresh_health();
        const bool status_due = std::chrono::steady_clock::now() - s.last_status > std::chrono::seconds(1);
        if (reply || (status_due && (s.confirmed > lsn{}))) co_await s.send_status(reply);
        // Nothing to apply, but the WAL end moved: at most once a second, a
        // transaction without changes that only moves the target's position.
        if (s.ready.empty() && s.idle() && s.idle_end > s.confirmed &&
            std::chrono::steady_clock::now() - s.last_idle >= std::chrono::seconds(1)) {
            transaction t;
            t.commit_lsn = t.end_lsn = s.idle_end;
            t.commit_time_us = now_unix_us();
            s.last_delivered = t.end_lsn;
            s.last_idle = std::chrono::steady_clock::now();
            std::vector<transaction> out;
            out.push_back(std::move(t));
            co_return out;
        }
        if (!s.ready.empty()) {
            std::vector<transaction> out;
            while (!s.ready.empty()) {
                out.push_back(std::move(s.ready.front()));
                s.ready.pop_front();
            }
            s.last_delivered = out.back().end_lsn;
            co_return out;
        }
        if (drained && std::chrono::steady_clock::now() - entered >= std::chrono::seconds(1))
            co_return std::vector<transaction>{};  // nothing for a while: let the caller look around
        if (drained) co_await s.repl->wait_readable(std::chrono::seconds(1));
        else co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
}

source_health pg_source::health() const {
    std::lock_guard lock(impl_->health_mu);
    return impl_->health;
}

void pg_source::confirm(lsn applied) {
    auto& s = *impl_;
    s.confirmed = std::max(s.confirmed, applied);
}

asio::awaitable<void> pg_source::close() {
    auto& s = *impl_;
    if (s.repl && s.streaming) {
        try {
            co_await s.send_status(false);  // tell the server what the target has, before leaving
        } catch (const pg_error&) {
            // The connection is going away anyway; the slot keeps the last confirmed position.
        }
    }
    s.repl.reset();
    s.reader.reset();
    s.sql.reset();
}

asio::awaitable<void> pg_source::drop_slot(pg_source_options options) {
    impl s(std::move(options));
    s.sql.emplace(co_await pg_session::connect(s.conn_options(false), std::chrono::seconds(15)));
    pg_params p;
    p.emplace_back(s.opts.slot);
    co_await s.sql->query("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
                          std::move(p));
}

}  // namespace datavor::connectors::pg
