#include "connectors/pg/pg_sink.hpp"

#include <map>

#include "connectors/common/sql_quote.hpp"
#include "connectors/pg/apply_plan.hpp"
#include "connectors/pg/pg_prober.hpp"
#include "connectors/pg/pg_session.hpp"
#include "connectors/pg/pg_writer.hpp"

#include <cstdio>
#include <deque>

namespace asio = boost::asio;

namespace datavor::connectors::pg {
namespace {

constexpr std::uint32_t first_user_oid = 16384;

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : std::string(sep)) + p;
    return out;
}

std::string table_name(const table_schema& t) { return quote_pg_ident(t.schema) + "." + quote_pg_ident(t.name); }

}  // namespace

struct pg_sink::impl {
    connection_spec spec;
    std::optional<std::string> password;
    std::optional<pg_session> db;
    pg_writer writer;
    std::string stream;
};

std::string pg_sink::column_type(const column_def& c) {
    if (c.type_oid != 0 && c.type_oid < first_user_oid && !c.type_name.empty()) return c.type_name;
    return "text";
}

pg_sink::pg_sink(connection_spec spec, std::optional<std::string> password) : impl_(std::make_unique<impl>()) {
    impl_->spec = std::move(spec);
    impl_->password = std::move(password);
}
pg_sink::~pg_sink() = default;

asio::awaitable<std::optional<lsn>> pg_sink::open(std::string stream) {
    auto& s = *impl_;
    s.writer.attach(nullptr, {});
    auto o = libpq_options(s.spec, s.password);
    o["options"] = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 "
                   "-c bytea_output=hex -c standard_conforming_strings=on";
    s.db.emplace(co_await pg_session::connect(std::move(o), std::chrono::seconds(60)));
    s.writer.attach(&*s.db, stream);
    s.stream = stream;
    // NOTICEs here only say "already exists, skipping" (CREATE … IF NOT EXISTS):
    // dropped; warnings still reach stderr as libpq prints them by default.
    PQsetNoticeProcessor(
        s.db->native(),
        [](void*, const char* message) {
            if (std::string_view(message).starts_with("NOTICE:")) return;
            std::fputs(message, stderr);
        },
        nullptr);
    co_await s.db->simple_query(
        "CREATE TABLE IF NOT EXISTS public._datavor_offsets (stream text PRIMARY KEY, position pg_lsn NOT NULL, "
        "updated_at timestamptz NOT NULL)");
    pg_params p;
    p.emplace_back(std::move(stream));
    auto r = co_await s.db->query("SELECT position::text FROM public._datavor_offsets WHERE stream = $1", std::move(p));
    if (PQntuples(r.get()) == 0) co_return std::nullopt;
    co_return lsn::parse(PQgetvalue(r.get(), 0, 0));
}

asio::awaitable<void> pg_sink::prepare_table(std::shared_ptr<const table_schema> table, bool truncate) {
    std::vector<std::string> cols, keys, adds;
    for (const auto& c : table->columns) {
        cols.push_back(quote_pg_ident(c.name) + " " + column_type(c));
        adds.push_back("ALTER TABLE " + table_name(*table) + " ADD COLUMN IF NOT EXISTS " + quote_pg_ident(c.name) + " " +
                       column_type(c) + ";");
        if (c.key) keys.push_back(quote_pg_ident(c.name));
    }
    if (!keys.empty()) cols.push_back("PRIMARY KEY (" + join(keys, ", ") + ")");
    std::string sql = "CREATE SCHEMA IF NOT EXISTS " + quote_pg_ident(table->schema) + ";\nCREATE TABLE IF NOT EXISTS " +
                      table_name(*table) + " (" + join(cols, ", ") + ");\n" + join(adds, "\n");
    if (truncate) sql += "\nTRUNCATE " + table_name(*table) + ";";
    // Between the parts of a large transaction: what is queued runs first.
    co_await impl_->writer.run_after_queued(std::move(sql));
}

// Through text, so any type PostgreSQL can read from the old one's text form
// converts (int -> bigint, varchar(20) -> text, text -> integer when every
// value is a number); what cannot convert fails the statement and changes nothing.
asio::awaitable<void> pg_sink::alter_column_type(std::shared_ptr<const table_schema> table, std::string column) {
    for (const auto& c : table->columns) {
        if (c.name != column) continue;
        const auto type = column_type(c);
        const auto col = quote_pg_ident(c.name);
        co_await impl_->writer.run_after_queued("ALTER TABLE " + table_name(*table) + " ALTER COLUMN " + col + " TYPE " +
                                                type + " USING " + col + "::text::" + type);
    }
}

namespace {
// Whether `source` holds every value `target` does and more: only then is a
// target column altered (never narrowed, never changed in kind).
int int_rank(const std::string& t) {
    return t == "smallint" ? 1 : t == "integer" ? 2 : t == "bigint" ? 3 : t.starts_with("numeric") ? 4 : 0;
}
std::pair<int, int> typmod(const std::string& t) {  // numeric(p,s) / varchar(n): (p, s); (0, 0) unconstrained
    int a = 0, b = 0;
    if (auto open = t.find('('); open != std::string::npos) std::sscanf(t.c_str() + open, "(%d,%d)", &a, &b);
    return {a, b};
}
bool wider(const std::string& target, const std::string& source) {
    if (target == source) return false;
    const int rt = int_rank(target), rs = int_rank(source);
    if (rt && rs) {
        if (rs != rt) return rs > rt;
        const auto [pt, st] = typmod(target);
        const auto [ps, ss] = typmod(source);
        return rt == 4 && pt && (!ps || (ps - ss >= pt - st && ss >= st));
    }
    if (target == "real" && source == "double precision") return true;
    if (target.starts_with("character varying") || target.starts_with("character(")) {
        if (source == "text" || source == "character varying") return true;
        if (source.starts_with("character varying(")) return typmod(source).first > typmod(target).first;
    }
    return false;
}
}  // namespace

asio::awaitable<std::vector<std::string>> pg_sink::widen_columns(std::shared_ptr<const table_schema> table) {
    pg_params p;
    p.emplace_back(table_name(*table));
    auto r = co_await impl_->db->query(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a WHERE a.attrelid = $1::regclass "
        "AND a.attnum > 0 AND NOT a.attisdropped",
        std::move(p));
    std::map<std::string, std::string> have;
    for (int i = 0; i < PQntuples(r.get()); ++i) have[PQgetvalue(r.get(), i, 0)] = PQgetvalue(r.get(), i, 1);
    std::vector<std::string> changed;
    for (const auto& c : table->columns) {
        auto it = have.find(c.name);
        const auto type = column_type(c);
        if (it == have.end() || !wider(it->second, type)) continue;
        const auto col = quote_pg_ident(c.name);
        co_await impl_->writer.run_after_queued("ALTER TABLE " + table_name(*table) + " ALTER COLUMN " + col + " TYPE " +
                                                type + " USING " + col + "::text::" + type);
        changed.push_back(c.name + ": " + it->second + " -> " + type);
    }
    co_return changed;
}

asio::awaitable<void> pg_sink::apply_snapshot(snapshot_batch batch) { co_await impl_->writer.write_snapshot(batch); }

asio::awaitable<void> pg_sink::apply(const std::vector<transaction>& txns, lsn position) {
    auto& w = impl_->writer;
    co_await w.end_snapshot_copy();
    std::vector<apply_action> actions;
    std::deque<update_plan> plans;
    for (const auto& t : txns)
        for (const auto& c : t.changes) w.add(c, actions, plans);
    w.begin();
    co_await w.write(actions);
    co_await w.commit(position);
}

asio::awaitable<void> pg_sink::begin_transaction(const transaction&) {
    co_await impl_->writer.end_snapshot_copy();
    impl_->writer.begin();  // sent with the first part
}

asio::awaitable<void> pg_sink::apply_changes(std::vector<change_event> changes) {
    auto& w = impl_->writer;
    std::vector<apply_action> actions;
    std::deque<update_plan> plans;
    for (const auto& c : changes) w.add(c, actions, plans);
    co_await w.write(actions);
    // The part's statements are checked before the next part is read.
    co_await w.sync();
}

asio::awaitable<void> pg_sink::commit_transaction(lsn position) { co_await impl_->writer.commit(position); }

asio::awaitable<void> pg_sink::commit_position(lsn position) { co_await impl_->writer.write_position(position); }

asio::awaitable<void> pg_sink::forget_position() {
    pg_params p;
    p.emplace_back(impl_->stream);
    co_await impl_->db->query("DELETE FROM public._datavor_offsets WHERE stream = $1", std::move(p));
}

// A part's savepoint is queued with the part and released without a round
// trip: apply_changes has already run the part's statements (its errors
// come from there), and a RELEASE cannot fail on data.
asio::awaitable<void> pg_sink::savepoint() {
    impl_->writer.queue("SAVEPOINT datavor_part");
    co_return;
}

asio::awaitable<void> pg_sink::release_savepoint() {
    impl_->writer.queue("RELEASE SAVEPOINT datavor_part");
    co_return;
}

asio::awaitable<void> pg_sink::rollback_to_savepoint() { co_await impl_->writer.rollback_part(); }

asio::awaitable<void> pg_sink::close() {
    impl_->writer.attach(nullptr, {});
    impl_->db.reset();
    co_return;
}

}  // namespace datavor::connectors::pg
