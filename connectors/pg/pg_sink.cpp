#include "connectors/pg/pg_sink.hpp"

#include "connectors/common/sql_quote.hpp"
#include "connectors/pg/pg_prober.hpp"
#include "connectors/pg/pg_session.hpp"

namespace asio = boost::asio;

namespace datavor::connectors::pg {
namespace {

constexpr std::uint32_t first_user_oid = 16384;

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : std::string(sep)) + p;
    return out;
}

std::string literal(const value& v) {
    if (v.is_null()) return "NULL";
    return quote_pg_literal(v.data);
}

std::string table_name(const table_schema& t) { return quote_pg_ident(t.schema) + "." + quote_pg_ident(t.name); }

// INSERT … ON CONFLICT (key) DO UPDATE for the columns in `cols`.
void upsert(std::string& sql, const table_schema& t, const row& r, const std::vector<std::size_t>& cols) {
    std::vector<std::string> names, values, sets, keys;
    for (auto i : cols) {
        names.push_back(quote_pg_ident(t.columns[i].name));
        values.push_back(literal(r[i]));
        if (!t.columns[i].key)
            sets.push_back(quote_pg_ident(t.columns[i].name) + " = EXCLUDED." + quote_pg_ident(t.columns[i].name));
    }
    for (auto k : t.key_columns()) keys.push_back(quote_pg_ident(t.columns[k].name));
    sql += "INSERT INTO " + table_name(t) + " (" + join(names, ", ") + ") VALUES (" + join(values, ", ") +
           ") ON CONFLICT (" + join(keys, ", ") + ") DO " + (sets.empty() ? "NOTHING" : "UPDATE SET " + join(sets, ", ")) +
           ";\n";
}

void erase(std::string& sql, const table_schema& t, const row& key_source) {
    std::vector<std::string> conds;
    for (auto k : t.key_columns())
        conds.push_back(quote_pg_ident(t.columns[k].name) +
                        (key_source[k].is_null() ? " IS NULL" : " = " + literal(key_source[k])));
    sql += "DELETE FROM " + table_name(t) + " WHERE " + join(conds, " AND ") + ";\n";
}

void add_change(std::string& sql, const change_event& c) {
    const table_schema& t = *c.table;
    std::vector<std::size_t> all;
    for (std::size_t i = 0; i < t.columns.size(); ++i) all.push_back(i);
    switch (c.op) {
        case change_op::insert:
        case change_op::read: upsert(sql, t, c.after, all); break;
        case change_op::update: {
            auto plan = plan_update(c, t.key_columns());
            if (plan.key_changed) erase(sql, t, *c.before);
            upsert(sql, t, plan.after, plan.partial ? plan.columns : all);
            break;
        }
        case change_op::erase: erase(sql, t, c.before ? *c.before : c.after); break;
        case change_op::truncate: sql += "TRUNCATE " + table_name(t) + ";\n"; break;
    }
}

}  // namespace

struct pg_sink::impl {
    connection_spec spec;
    std::optional<std::string> password;
    std::optional<pg_session> db;
    std::string stream;

    std::string position_sql(lsn pos) const {
        return "INSERT INTO _datavor_offsets (stream, position, updated_at) VALUES (" + quote_pg_literal(stream) + ", " +
               quote_pg_literal(pos.to_string()) + ", now()) ON CONFLICT (stream) DO UPDATE SET position = "
               "EXCLUDED.position, updated_at = EXCLUDED.updated_at;\n";
    }
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
    s.stream = std::move(stream);
    auto o = libpq_options(s.spec, s.password);
    o["options"] = "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=3 "
                   "-c bytea_output=hex -c standard_conforming_strings=on";
    s.db.emplace(co_await pg_session::connect(std::move(o), std::chrono::seconds(60)));
    co_await s.db->simple_query(
        "CREATE TABLE IF NOT EXISTS public._datavor_offsets (stream text PRIMARY KEY, position pg_lsn NOT NULL, "
        "updated_at timestamptz NOT NULL)");
    pg_params p;
    p.emplace_back(s.stream);
    auto r = co_await s.db->query("SELECT position::text FROM public._datavor_offsets WHERE stream = $1", std::move(p));
    if (PQntuples(r.get()) == 0) co_return std::nullopt;
    co_return lsn::parse(PQgetvalue(r.get(), 0, 0));
}

asio::awaitable<void> pg_sink::prepare_table(std::shared_ptr<const table_schema> table, bool truncate) {
    auto& s = *impl_;
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
    co_await s.db->simple_query(std::move(sql));
}

asio::awaitable<void> pg_sink::apply_snapshot(snapshot_batch batch) {
    std::string sql = "BEGIN;\n";
    std::vector<std::size_t> all;
    for (std::size_t i = 0; i < batch.table->columns.size(); ++i) all.push_back(i);
    for (const auto& r : batch.rows) upsert(sql, *batch.table, r, all);
    sql += "COMMIT;";
    co_await impl_->db->simple_query(std::move(sql));
}

asio::awaitable<void> pg_sink::apply(const std::vector<transaction>& txns, lsn position) {
    std::string sql = "BEGIN;\n";
    for (const auto& t : txns)
        for (const auto& c : t.changes) add_change(sql, c);
    sql += impl_->position_sql(position);
    sql += "COMMIT;";
    co_await impl_->db->simple_query(std::move(sql));
}

asio::awaitable<void> pg_sink::begin_transaction(const transaction&) {
    co_await impl_->db->simple_query("BEGIN");
}

asio::awaitable<void> pg_sink::apply_changes(std::vector<change_event> changes) {
    std::string sql;
    for (const auto& c : changes) add_change(sql, c);
    if (!sql.empty()) co_await impl_->db->simple_query(std::move(sql));
}

asio::awaitable<void> pg_sink::commit_transaction(lsn position) {
    co_await impl_->db->simple_query(impl_->position_sql(position) + "COMMIT;");
}

asio::awaitable<void> pg_sink::commit_position(lsn position) {
    co_await impl_->db->simple_query(impl_->position_sql(position));
}

asio::awaitable<void> pg_sink::close() {
    impl_->db.reset();
    co_return;
}

}  // namespace datavor::connectors::pg
