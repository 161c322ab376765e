#include "connectors/sqlite/sqlite_sink.hpp"

#include "connectors/common/connector_error.hpp"
#include "connectors/common/sql_quote.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <optional>

#include <chrono>
#include <map>
#include <stdexcept>

namespace datavor::connectors::sqlite {
namespace {

// PostgreSQL type OIDs (pg_type.dat); stable across versions.
enum : std::uint32_t {
    oid_bool = 16, oid_bytea = 17, oid_int8 = 20, oid_int2 = 21, oid_int4 = 23, oid_oid = 26,
    oid_float4 = 700, oid_float8 = 701, oid_numeric = 1700,
};

std::string q(std::string_view ident) { return quote_pg_ident(ident); }  // SQLite accepts "double quotes"

int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// bytea's text output: \x followed by hex digits.
std::string decode_bytea(const std::string& text) {
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x')
        throw std::runtime_error("bytea value is not in hex format (set bytea_output = hex on the source)");
    std::string out;
    out.reserve((text.size() - 2) / 2);
    for (std::size_t i = 2; i + 1 < text.size(); i += 2) {
        int h = hex(text[i]), l = hex(text[i + 1]);
        if (h < 0 || l < 0) throw std::runtime_error("malformed bytea hex text");
        out.push_back(static_cast<char>(h * 16 + l));
    }
    return out;
}

void bind_value(SQLite::Statement& st, int index, const column_def& col, const value& v) {
    switch (v.st) {
        case value::state::null: st.bind(index); return;
        case value::state::unchanged: throw std::logic_error("unchanged value bound");
        case value::state::binary: st.bind(index, v.data.data(), static_cast<int>(v.data.size())); return;
        case value::state::text: break;
    }
    if (col.type_oid == oid_bool) {
        st.bind(index, v.data == "t" ? 1 : 0);
    } else if (col.type_oid == oid_bytea) {
        auto bytes = decode_bytea(v.data);
        st.bind(index, bytes.data(), static_cast<int>(bytes.size()));
    } else {
        st.bindNoCopy(index, v.data);  // lives until the step; affinity stores numbers as numbers
    }
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : std::string(sep)) + p;
    return out;
}

// A SQLite failure as the stream engine understands it (by result code).
connector_error classified(const SQLite::Exception& e) {
    const int code = e.getExtendedErrorCode();
    std::string msg = std::string("SQLite target: ") + e.what();
    const auto kind = classify_sqlite(code);
    if ((code & 0xff) == 13) msg += " (the disk holding the target is full: free space; the stream retries)";
    if ((code & 0xff) == 5) msg += " (another process holds the target locked; the stream retries)";
    return connector_error(std::move(msg), kind, "sqlite:" + std::to_string(code));
}

}  // namespace

std::string sqlite_sink::target_table_name(const table_schema& t) {
    return t.schema == "public" ? t.name : t.schema + "." + t.name;
}

std::string sqlite_sink::column_type(const column_def& c) {
    switch (c.type_oid) {
        case oid_int2: case oid_int4: case oid_int8: case oid_oid: case oid_bool: return "INTEGER";
        case oid_float4: case oid_float8: return "REAL";
        case oid_bytea: return "BLOB";
        default: return "TEXT";
    }
}

struct sqlite_sink::impl {
    explicit impl(std::filesystem::path p) : path(std::move(p)) {}
    std::filesystem::path path;
    std::unique_ptr<SQLite::Database> db;
    std::optional<SQLite::Transaction> open_tx;  // a transaction applied in parts
    std::string stream;
    std::map<std::string, std::unique_ptr<SQLite::Statement>> statements;
    // The statements of the hot path, built once per table definition: upsert
    // of every column and delete by key. The shared_ptr pins the definition.
    struct prepared {
        std::shared_ptr<const table_schema> table;
        SQLite::Statement* upsert_all = nullptr;
        SQLite::Statement* erase = nullptr;
        std::vector<std::size_t> keys;
    };
    std::map<const table_schema*, prepared> hot;

    prepared& hot_for(const std::shared_ptr<const table_schema>& t) {
        auto& p = hot[t.get()];
        if (!p.table) {
            p.table = t;
            p.keys = t->key_columns();
            if (p.keys.empty())
                throw std::runtime_error("table " + t->qualified() +
                                         " has no primary key and no REPLICA IDENTITY FULL: run ALTER TABLE " +
                                         quote_pg_ident(t->schema) + "." + quote_pg_ident(t->name) +
                                         " REPLICA IDENTITY FULL;");
            std::vector<std::size_t> all;
            for (std::size_t i = 0; i < t->columns.size(); ++i) all.push_back(i);
            p.upsert_all = &statement(upsert_sql(*t, all));
            p.erase = &statement(erase_sql(*t));
        }
        return p;
    }

    // A cached statement for `sql`, reset and ready to bind.
    SQLite::Statement& statement(const std::string& sql) {
        auto& s = statements[sql];
        if (!s) s = std::make_unique<SQLite::Statement>(*db, sql);
        return *s;
    }
    SQLite::Statement& stmt(const std::string& sql) {
        auto& s = statement(sql);
        s.reset();
        s.clearBindings();
        return s;
    }

    void write_position(lsn pos) {
        auto& st = stmt("INSERT INTO _datavor_offsets(stream, position, position_int, updated_at) VALUES (?,?,?,?) "
                        "ON CONFLICT(stream) DO UPDATE SET position = excluded.position, "
                        "position_int = excluded.position_int, updated_at = excluded.updated_at");
        st.bind(1, stream);
        st.bind(2, pos.to_string());
        st.bind(3, static_cast<std::int64_t>(pos.v));
        st.bind(4, static_cast<std::int64_t>(
                       std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count()));
        st.exec();
    }

    // INSERT … ON CONFLICT(key) DO UPDATE for the columns in `cols`.
    static std::string upsert_sql(const table_schema& t, const std::vector<std::size_t>& cols) {
        std::vector<std::string> names, marks, sets, keynames;
        for (auto i : cols) {
            names.push_back(q(t.columns[i].name));
            marks.push_back("?");
            if (!t.columns[i].key) sets.push_back(q(t.columns[i].name) + " = excluded." + q(t.columns[i].name));
        }
        for (auto k : t.key_columns()) keynames.push_back(q(t.columns[k].name));
        return "INSERT INTO " + q(target_table_name(t)) + " (" + join(names, ", ") + ") VALUES (" + join(marks, ", ") +
               ") ON CONFLICT (" + join(keynames, ", ") + ") DO " +
               (sets.empty() ? "NOTHING" : "UPDATE SET " + join(sets, ", "));
    }
    static std::string erase_sql(const table_schema& t) {
        std::vector<std::string> conds;
        for (auto k : t.key_columns()) conds.push_back(q(t.columns[k].name) + " IS ?");
        return "DELETE FROM " + q(target_table_name(t)) + " WHERE " + join(conds, " AND ");
    }

    // A statement that failed is reset too: cached statements are reused, and
    // one left mid-step cannot be bound again.
    static void run(SQLite::Statement& st) {
        try {
            st.exec();
        } catch (...) {
            st.tryReset();
            st.clearBindings();
            throw;
        }
        st.reset();
        st.clearBindings();
    }

    void upsert_all(const std::shared_ptr<const table_schema>& t, const row& r) {
        auto& st = *hot_for(t).upsert_all;
        for (std::size_t i = 0; i < t->columns.size(); ++i) bind_value(st, static_cast<int>(i) + 1, t->columns[i], r[i]);
        run(st);
    }

    // Rare paths: an update that did not carry every column (unchanged TOAST
    // values). The target keeps the columns not sent, so these are UPDATEs,
    // never inserts: a row the target lacks cannot be rebuilt from them. The
    // target may also be ahead of the change (a re-snapshot's copy, replayed
    // over): every statement here must then be harmless.

    // UPDATE … SET the columns sent WHERE key.
    void update_some(const table_schema& t, const row& key_source, const row& r, const std::vector<std::size_t>& cols) {
        std::vector<std::string> sets, conds;
        for (auto i : cols) sets.push_back(q(t.columns[i].name) + " = ?");
        const auto keys = t.key_columns();
        for (auto k : keys) conds.push_back(q(t.columns[k].name) + " IS ?");
        auto& st = stmt("UPDATE " + q(target_table_name(t)) + " SET " + join(sets, ", ") + " WHERE " + join(conds, " AND "));
        int idx = 1;
        for (auto i : cols) bind_value(st, idx++, t.columns[i], r[i]);
        for (auto k : keys) bind_value(st, idx++, t.columns[k], key_source[k]);
        st.exec();
    }

    // A key change: the row moves to its new key and keeps what was not sent.
    // When the new key is already there (replayed over a copy that is ahead),
    // that row is the one to update and the old one goes; a later change in
    // the log that re-creates the old key is replayed after this one.
    void move_row(const table_schema& t, const row& old_key, const row& r, const std::vector<std::size_t>& cols) {
        const auto keys = t.key_columns();
        std::vector<std::string> conds;
        for (auto k : keys) conds.push_back(q(t.columns[k].name) + " IS ?");
        const std::string where = join(conds, " AND ");
        const std::string name = q(target_table_name(t));
        auto& del = stmt("DELETE FROM " + name + " WHERE " + where + " AND EXISTS (SELECT 1 FROM " + name + " WHERE " +
                         where + ")");
        int idx = 1;
        for (auto k : keys) bind_value(del, idx++, t.columns[k], old_key[k]);
        for (auto k : keys) bind_value(del, idx++, t.columns[k], r[k]);
        del.exec();
        update_some(t, r, r, cols);        // the new key, when it was there
        update_some(t, old_key, r, cols);  // else the old row moves
    }

    void erase(const std::shared_ptr<const table_schema>& t, const row& key_source) {
        auto& h = hot_for(t);
        int idx = 1;
        for (auto k : h.keys) bind_value(*h.erase, idx++, t->columns[k], key_source[k]);
        run(*h.erase);
    }

    void apply_change(const change_event& c) {
        const table_schema& t = *c.table;
        const auto& keys = hot_for(c.table).keys;
        switch (c.op) {
            case change_op::insert:
            case change_op::read: upsert_all(c.table, c.after); break;
            case change_op::update: {
                auto plan = plan_update(c, keys);
                if (plan.key_changed && plan.partial) {
                    // The row moves to a new key and keeps what the log did not carry.
                    move_row(t, *c.before, plan.after, plan.columns);
                    break;
                }
                if (plan.key_changed) erase(c.table, *c.before);
                if (plan.partial) update_some(t, plan.after, plan.after, plan.columns);
                else upsert_all(c.table, plan.after);
                break;
            }
            case change_op::erase: erase(c.table, c.before ? *c.before : c.after); break;
            case change_op::truncate: db->exec("DELETE FROM " + q(target_table_name(t))); break;
        }
    }
};

sqlite_sink::sqlite_sink(std::filesystem::path path) : impl_(std::make_unique<impl>(std::move(path))) {}
sqlite_sink::~sqlite_sink() = default;

boost::asio::awaitable<std::optional<lsn>> sqlite_sink::open(std::string stream) {
    try {
        auto& s = *impl_;
        s.stream = std::move(stream);
        s.db = std::make_unique<SQLite::Database>(s.path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        s.db->exec("PRAGMA journal_mode=WAL");
        s.db->exec("PRAGMA synchronous=NORMAL");
        // Short: a locked target is a transient failure the stream waits out
        // asynchronously (backoff), never by sleeping on the io thread.
        s.db->setBusyTimeout(250);
        s.db->exec("CREATE TABLE IF NOT EXISTS _datavor_offsets (stream TEXT PRIMARY KEY, position TEXT NOT NULL, "
                   "position_int INTEGER NOT NULL, updated_at INTEGER NOT NULL)");
        SQLite::Statement q(*s.db, "SELECT position FROM _datavor_offsets WHERE stream = ?");
        q.bind(1, s.stream);
        if (q.executeStep()) co_return lsn::parse(q.getColumn(0).getString());
        co_return std::nullopt;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::prepare_table(std::shared_ptr<const table_schema> table, bool truncate) {
    try {
        auto& s = *impl_;
        std::vector<std::string> cols, keys;
        for (const auto& c : table->columns) {
            cols.push_back(q(c.name) + " " + column_type(c));
            if (c.key) keys.push_back(q(c.name));
        }
        if (!keys.empty()) cols.push_back("PRIMARY KEY (" + join(keys, ", ") + ")");
        const std::string name = q(target_table_name(*table));
        s.db->exec("CREATE TABLE IF NOT EXISTS " + name + " (" + join(cols, ", ") + ")");
        // A table that exists with fewer columns gets the new ones (schema drift
        // proper is the Suggestion engine's job; a new nullable column is safe).
        std::map<std::string, bool> have;
        SQLite::Statement info(*s.db, "SELECT name FROM pragma_table_info(?)");
        info.bind(1, target_table_name(*table));
        while (info.executeStep()) have[info.getColumn(0).getString()] = true;
        for (const auto& c : table->columns)
            if (!have.count(c.name)) s.db->exec("ALTER TABLE " + name + " ADD COLUMN " + q(c.name) + " " + column_type(c));
        if (truncate) s.db->exec("DELETE FROM " + name);
        s.hot.clear();  // statements may refer to an old shape
        s.statements.clear();
        co_return;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::apply_snapshot(snapshot_batch batch) {
    try {
        auto& s = *impl_;
        SQLite::Transaction tx(*s.db, SQLite::TransactionBehavior::IMMEDIATE);
        for (const auto& r : batch.rows) s.upsert_all(batch.table, r);
        tx.commit();
        co_return;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::apply(const std::vector<transaction>& txns, lsn position) {
    try {
        auto& s = *impl_;
        SQLite::Transaction tx(*s.db, SQLite::TransactionBehavior::IMMEDIATE);
        for (const auto& t : txns)
            for (const auto& c : t.changes) s.apply_change(c);
        s.write_position(position);
        tx.commit();
        co_return;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::begin_transaction(const transaction&) {
    try {
        auto& s = *impl_;
        s.open_tx.emplace(*s.db, SQLite::TransactionBehavior::IMMEDIATE);
        co_return;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::apply_changes(std::vector<change_event> changes) {
    try {
        auto& s = *impl_;
        for (const auto& c : changes) s.apply_change(c);
        co_return;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::commit_transaction(lsn position) {
    try {
        auto& s = *impl_;
        s.write_position(position);
        s.open_tx->commit();
        s.open_tx.reset();
        co_return;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::forget_position() {
    try {
        auto& s = *impl_;
        auto& st = s.stmt("DELETE FROM _datavor_offsets WHERE stream = ?");
        st.bind(1, s.stream);
        st.exec();
        co_return;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::commit_position(lsn position) {
    try {
        auto& s = *impl_;
        SQLite::Transaction tx(*s.db, SQLite::TransactionBehavior::IMMEDIATE);
        s.write_position(position);
        tx.commit();
        co_return;
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
}

boost::asio::awaitable<void> sqlite_sink::savepoint() {
    try {
        impl_->db->exec("SAVEPOINT datavor_row");
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
    co_return;
}

boost::asio::awaitable<void> sqlite_sink::rollback_to_savepoint() {
    try {
        impl_->db->exec("ROLLBACK TO datavor_row");
        impl_->db->exec("RELEASE datavor_row");
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
    co_return;
}

boost::asio::awaitable<void> sqlite_sink::release_savepoint() {
    try {
        impl_->db->exec("RELEASE datavor_row");
    } catch (const SQLite::Exception& e) {
        throw classified(e);
    }
    co_return;
}

boost::asio::awaitable<void> sqlite_sink::close() {
    impl_->open_tx.reset();  // rolls back a transaction left in parts
    impl_->hot.clear();
    impl_->statements.clear();
    impl_->db.reset();
    co_return;
}

}  // namespace datavor::connectors::sqlite
