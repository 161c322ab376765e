// pg_sink against PostgreSQL 15 (DATAVOR_TEST_PG_*): random batches of
// changes (runs long enough for COPY and short enough for the pipeline,
// repeated keys inside a run, partial updates, key changes with and without
// unchanged TOAST values, deletes of missing rows and with a NULL key,
// truncates) are applied, through apply() and through the large-transaction
// parts, then replayed, and after each step the target must hold exactly what
// applying the same changes one by one to a model gives. Identifiers are
// hostile on purpose. Every schema made here has a name unique to the run and
// is dropped at the end, also on failure.
#include "connectors/common/connection_spec.hpp"
#include "connectors/common/connector_error.hpp"
#include "connectors/common/sql_quote.hpp"
#include "connectors/pg/pg_handles.hpp"
#include "connectors/pg/pg_sink.hpp"
#include "tests/connectors/probe_support.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <libpq-fe.h>

#include <map>
#include <random>

namespace asio = boost::asio;
using namespace datavor::connectors;
using namespace datavor::connectors::pg;
using namespace datavor::test;

namespace {

// One io_context for a sink's whole life (its session waits on it).
struct loop {
    asio::io_context io;
    template <class T>
    T run(asio::awaitable<T> a) {
        auto f = asio::co_spawn(io, std::move(a), asio::use_future);
        io.restart();
        io.run();
        return f.get();
    }
};

class admin_conn {
public:
    admin_conn() {
        const std::string host = required_env("DATAVOR_TEST_PG_HOST"), port = required_env("DATAVOR_TEST_PG_PORT"),
                          user = required_env("DATAVOR_TEST_PG_USER"), pw = required_env("DATAVOR_TEST_PG_PASSWORD");
        const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", nullptr};
        const char* values[] = {host.c_str(), port.c_str(), user.c_str(), pw.c_str(), "postgres", "10", nullptr};
        conn_.reset(PQconnectdbParams(keys, values, 0));
        if (PQstatus(conn_.get()) != CONNECTION_OK)
            FAIL("connection to PostgreSQL failed: " << PQerrorMessage(conn_.get()));
        exec(
            "SET client_encoding = 'UTF8'; SET bytea_output = 'hex'; SET extra_float_digits = 3; SET "
            "client_min_messages = warning");
    }
    admin_conn(const admin_conn&) = delete;
    admin_conn& operator=(const admin_conn&) = delete;

    pg_result_ptr exec(const std::string& sql) {
        pg_result_ptr r(PQexec(conn_.get(), sql.c_str()));
        const auto st = PQresultStatus(r.get());
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            FAIL("SQL failed: " << sql << "\n" << PQresultErrorMessage(r.get()));
        return r;
    }

    void exec_quiet(const std::string& sql) { PQclear(PQexec(conn_.get(), sql.c_str())); }

private:
    pg_conn_ptr conn_;
};

connection_spec test_spec() {
    auto parsed = parse_connection_url(required_env("DATAVOR_TEST_PG_URL"));
    REQUIRE(parsed.has_value());
    return parsed->spec;
}

using cell = std::optional<std::string>;
using model_row = std::vector<cell>;
using key = std::pair<std::string, std::string>;  // (id, tag)

// Columns: 0 id int (key), 1 tag text (key), 2 v text, 3 n numeric, 4 b bytea, 5 big text.
std::shared_ptr<table_schema> make_table(const std::string& schema, std::uint32_t relid, char identity = 'd') {
    auto t = std::make_shared<table_schema>();
    t->relation_id = relid;
    t->schema = schema;
    t->name = "t \"odd\"; name";
    t->replica_identity = identity;
    auto col = [&](std::string name, std::uint32_t oid, std::string type, bool key) {
        column_def c;
        c.name = std::move(name);
        c.type_oid = oid;
        c.type_name = std::move(type);
        c.key = key || identity == 'f';
        t->columns.push_back(std::move(c));
    };
    col("id", 23, "integer", true);
    col("Tag; \"x\"", 25, "text", true);
    col("v", 25, "text", false);
    col("n", 1700, "numeric", false);
    col("b", 17, "bytea", false);
    col("big", 25, "text", false);
    return t;
}

class model {
public:
    std::map<key, model_row> rows;

    static key key_of(const row& r) { return {r[0].data, r[1].data}; }
    static model_row full(const row& r) {
        model_row out;
        for (const auto& v : r) out.push_back(v.is_null() ? cell{} : cell{v.data});
        return out;
    }
    // Writes the carried columns over `target`.
    static void carry(model_row& target, const row& r) {
        for (std::size_t i = 0; i < r.size(); ++i)
            if (!r[i].is_unchanged()) target[i] = r[i].is_null() ? cell{} : cell{r[i].data};
    }
    // A partial update is an UPDATE: a row the target lacks stays missing.
    void partial_update(const key& k, const row& r) {
        auto it = rows.find(k);
        if (it != rows.end()) carry(it->second, r);
    }

    // As the SQLite sink applies changes (the semantic every target shares).
    void apply(const change_event& c) {
        switch (c.op) {
            case change_op::insert:
            case change_op::read: rows[key_of(c.after)] = full(c.after); break;
            case change_op::update: {
                const bool partial =
                    std::any_of(c.after.begin(), c.after.end(), [](const value& v) { return v.is_unchanged(); });
                const bool key_changed = c.before && key_of(*c.before) != key_of(c.after);
                if (key_changed && partial) {
                    // A move: the old row goes when the new key is there; the
                    // new key's row takes the carried columns, else the old row
                    // moves with them.
                    const key from = key_of(*c.before), to = key_of(c.after);
                    if (rows.count(to)) {
                        rows.erase(from);
                        partial_update(to, c.after);
                    } else if (auto old = rows.find(from); old != rows.end()) {
                        model_row moved = old->second;
                        carry(moved, c.after);
                        rows.erase(old);
                        rows[to] = moved;
                    }
                    break;
                }
                if (key_changed) rows.erase(key_of(*c.before));
                if (partial)
                    partial_update(key_of(c.after), c.after);
                else
                    rows[key_of(c.after)] = full(c.after);
                break;
            }
            case change_op::erase: {
                const row& k = c.before ? *c.before : c.after;
                if (!k[0].is_null() && !k[1].is_null()) rows.erase(key_of(k));
                break;
            }
            case change_op::truncate: rows.clear(); break;
        }
    }
};

std::map<key, model_row> target_rows(admin_conn& db, const table_schema& t) {
    std::string cols;
    for (const auto& c : t.columns) cols += (cols.empty() ? "" : ", ") + quote_pg_ident(c.name);
    auto r = db.exec("SELECT " + cols + " FROM " + quote_pg_ident(t.schema) + "." + quote_pg_ident(t.name));
    std::map<key, model_row> out;
    for (int i = 0; i < PQntuples(r.get()); ++i) {
        model_row mr;
        for (int j = 0; j < PQnfields(r.get()); ++j)
            mr.push_back(PQgetisnull(r.get(), i, j) ? cell{} : cell{std::string(PQgetvalue(r.get(), i, j))});
        out[{*mr[0], *mr[1]}] = mr;
    }
    return out;
}

std::string show(const std::map<key, model_row>& m, std::size_t max = 8) {
    std::string s = std::to_string(m.size()) + " rows";
    std::size_t n = 0;
    for (const auto& [k, r] : m) {
        if (n++ == max) break;
        s += "\n  (" + k.first + ", " + k.second + "):";
        for (const auto& c : r) s += " " + (c ? (c->size() > 40 ? c->substr(0, 40) + "…" : *c) : std::string("NULL"));
    }
    return s;
}

// Random changes with runs of one shape, over a small key space (so keys repeat).
class generator {
public:
    explicit generator(std::shared_ptr<const table_schema> t, std::uint64_t seed) : t_(std::move(t)), rng_(seed) {}

    std::vector<change_event> batch(const model& m, std::size_t target_changes) {
        std::vector<change_event> out;
        while (out.size() < target_changes) {
            const int kind = pick(0, 99);
            // Runs long enough for COPY (64+ plain, 256+ staged) as often as short ones.
            const std::size_t len = pick(0, 1) ? pick(1, 8) : pick(60, 600);
            std::vector<std::size_t> carried = random_columns();
            for (std::size_t i = 0; i < len && out.size() < target_changes; ++i) {
                if (kind < 30)
                    out.push_back(insert());
                else if (kind < 45)
                    out.push_back(update(full_row(random_key()), std::nullopt));
                else if (kind < 60)
                    out.push_back(update(partial_row(random_key(), carried), std::nullopt));
                else if (kind < 68)
                    out.push_back(key_change(m, false, carried));
                else if (kind < 74)
                    out.push_back(key_change(m, true, carried));
                else if (kind < 95)
                    out.push_back(erase(random_key()));
                else if (kind < 98)
                    out.push_back(erase({std::to_string(pick(0, 40)), ""}, true));
                else if (i == 0)
                    out.push_back({t_, change_op::truncate, std::nullopt, {}});
            }
        }
        return out;
    }

private:
    std::size_t pick(std::size_t lo, std::size_t hi) {
        return std::uniform_int_distribution<std::size_t>(lo, hi)(rng_);
    }

    key random_key() { return {std::to_string(pick(0, 80)), tags_[pick(0, tags_.size() - 1)]}; }

    value random_value(std::size_t col) {
        if (pick(0, 9) == 0) return value::null_value();
        switch (col) {
            case 3: return value::text_value(numerics_[pick(0, numerics_.size() - 1)]);
            case 4: return value::text_value(byteas_[pick(0, byteas_.size() - 1)]);
            case 5:
                return value::text_value(
                    std::string(pick(0, 3) == 0 ? 3000 : 10, static_cast<char>('a' + pick(0, 25))));
            default: return value::text_value(texts_[pick(0, texts_.size() - 1)]);
        }
    }

    row full_row(const key& k) {
        row r{value::text_value(k.first), value::text_value(k.second)};
        for (std::size_t c = 2; c < t_->columns.size(); ++c) r.push_back(random_value(c));
        return r;
    }
    // Non-key columns that a partial update carries (at least one left out).
    std::vector<std::size_t> random_columns() {
        std::vector<std::size_t> out;
        for (std::size_t c = 2; c < t_->columns.size(); ++c)
            if (pick(0, 1)) out.push_back(c);
        if (out.size() == t_->columns.size() - 2) out.pop_back();
        return out;
    }
    row partial_row(const key& k, const std::vector<std::size_t>& carried) {
        row r = full_row(k);
        for (std::size_t c = 2; c < r.size(); ++c)
            if (std::find(carried.begin(), carried.end(), c) == carried.end()) r[c] = value::unchanged_value();
        return r;
    }
    // An old tuple of kind 'K': the key, the rest not carried.
    row key_row(const key& k) {
        row r{value::text_value(k.first), value::text_value(k.second)};
        for (std::size_t c = 2; c < t_->columns.size(); ++c) r.push_back(value::unchanged_value());
        return r;
    }

    change_event insert() { return {t_, change_op::insert, std::nullopt, full_row(random_key())}; }
    change_event update(row after, std::optional<row> before) {
        return {t_, change_op::update, std::move(before), std::move(after)};
    }
    change_event key_change(const model& m, bool partial, const std::vector<std::size_t>& carried) {
        key from = random_key();
        if (!m.rows.empty() && pick(0, 3))
            from = std::next(m.rows.begin(), static_cast<long>(pick(0, m.rows.size() - 1)))->first;
        key to = random_key();
        while (to == from) to = random_key();
        return update(partial ? partial_row(to, carried) : full_row(to), key_row(from));
    }
    change_event erase(const key& k, bool null_tag = false) {
        row r = key_row(k);
        if (null_tag) r[1] = value::null_value();
        return {t_, change_op::erase, std::move(r), {}};
    }

    std::shared_ptr<const table_schema> t_;
    std::mt19937_64 rng_;
    std::vector<std::string> tags_{"a", "b b", "tab\there", "new\nline", "back\\slash", "\\N", "", "ünï", "'\"", "\\."};
    std::vector<std::string> texts_{
        "x", "", "tab\tand\nnewline\r", "\\N", "back\\slash\\", "quote ' \" $1", "ünïcödé ✓", "\\.", "NULL"};
    std::vector<std::string> numerics_{"0",         "1.50",    "-12345678901234567890.123456789", "NaN", "Infinity",
                                       "-Infinity", "0.000001"};
    std::vector<std::string> byteas_{"\\x", "\\x00", "\\x00ff5c0a09", "\\x5c4e"};
};

}  // namespace

TEST_CASE("pg_sink leaves the target as the same changes applied one by one would, also when a batch is replayed",
          "[pg]") {
    admin_conn admin;
    const std::string schema = "dv_sink_" + run_suffix() + " \"s\"";
    struct drop_schema {
        admin_conn& db;
        std::string s;
        ~drop_schema() { db.exec_quiet("DROP SCHEMA IF EXISTS " + quote_pg_ident(s) + " CASCADE"); }
    } cleanup{admin, schema};
    const std::string stream = "sink_test_" + run_suffix();

    auto seed = GENERATE(1u, 2u, 3u);
    INFO("seed " << seed);
    auto table = make_table(schema, 900000 + seed);
    loop l;
    pg_sink sink(test_spec(), required_env("DATAVOR_TEST_PG_PASSWORD"));
    CHECK_FALSE(l.run(sink.open(stream + std::to_string(seed))).has_value());
    l.run(sink.prepare_table(table, true));

    model m;
    generator gen(table, seed);
    std::uint64_t pos = 0x100;
    for (int step = 0; step < 24; ++step) {
        INFO("step " << step);
        auto changes = gen.batch(m, 100 + static_cast<std::size_t>(step) * 80);
        for (int pass = 0; pass < 2; ++pass) {  // the second pass replays the batch
            for (const auto& c : changes) m.apply(c);
            const lsn at{++pos};
            if (step % 3 == 2) {
                // The large-transaction path, in parts of uneven size.
                transaction header;
                header.end_lsn = at;
                l.run(sink.begin_transaction(header));
                for (std::size_t i = 0; i < changes.size();) {
                    const std::size_t n = std::min<std::size_t>(changes.size() - i, 1 + (i * 7 + 13) % 150);
                    std::vector<change_event> part(changes.begin() + static_cast<long>(i),
                                                   changes.begin() + static_cast<long>(i + n));
                    l.run(sink.apply_changes(std::move(part)));
                    i += n;
                }
                l.run(sink.commit_transaction(at));
            } else {
                std::vector<transaction> txns(2);
                const auto half = changes.begin() + static_cast<long>(changes.size() / 2);
                txns[0].changes.assign(changes.begin(), half);
                txns[1].changes.assign(half, changes.end());
                l.run(sink.apply(std::move(txns), at));
            }
            const auto got = target_rows(admin, *table);
            INFO("pass " << pass << "\nexpected " << show(m.rows) << "\ngot " << show(got));
            REQUIRE(got == m.rows);
        }
    }
    l.run(sink.close());
    pg_sink again(test_spec(), required_env("DATAVOR_TEST_PG_PASSWORD"));
    auto committed = l.run(again.open(stream + std::to_string(seed)));
    REQUIRE(committed.has_value());
    CHECK(committed->v == pos);
    admin.exec("DELETE FROM public._datavor_offsets WHERE stream = '" + stream + std::to_string(seed) + "'");
}

TEST_CASE(
    "pg_sink snapshot batches: COPY into the table, a REPLICA IDENTITY FULL duplicate kept once, keys the "
    "target holds already upserted",
    "[pg]") {
    admin_conn admin;
    const std::string schema = "dv_snap_" + run_suffix();
    struct drop_schema {
        admin_conn& db;
        std::string s;
        ~drop_schema() { db.exec_quiet("DROP SCHEMA IF EXISTS " + quote_pg_ident(s) + " CASCADE"); }
    } cleanup{admin, schema};
    loop l;
    pg_sink sink(test_spec(), required_env("DATAVOR_TEST_PG_PASSWORD"));
    l.run(sink.open("snap_test_" + run_suffix()));

    auto full = make_table(schema, 910001, 'f');
    full->columns.pop_back();  // a text key of 1 MB would not fit the index
    l.run(sink.prepare_table(full, true));
    const auto row_of = [](int id, std::string tag, std::string v) {
        return row{value::text_value(std::to_string(id)), value::text_value(std::move(tag)),
                   value::text_value(std::move(v)), value::text_value("1.50"), value::text_value("\\x00ff")};
    };
    for (std::size_t n : {3u, 200u}) {  // row by row and through COPY
        snapshot_batch b;
        b.table = full;
        for (std::size_t i = 0; i < n; ++i) b.rows.push_back(row_of(static_cast<int>(i), "t\\a\tb", "x\ny"));
        b.rows.push_back(b.rows.front());  // the same row twice: no primary key at the source
        l.run(sink.apply_snapshot(std::move(b)));
        auto r = admin.exec("SELECT count(*), count(DISTINCT id), min(\"Tag; \"\"x\"\"\"), min(v), min(b::text) FROM " +
                            quote_pg_ident(schema) + "." + quote_pg_ident(full->name));
        CHECK(std::string(PQgetvalue(r.get(), 0, 0)) == std::to_string(n));
        CHECK(std::string(PQgetvalue(r.get(), 0, 1)) == std::to_string(n));
        CHECK(std::string(PQgetvalue(r.get(), 0, 2)) == "t\\a\tb");
        CHECK(std::string(PQgetvalue(r.get(), 0, 3)) == "x\ny");
        CHECK(std::string(PQgetvalue(r.get(), 0, 4)) == "\\x00ff");
        l.run(sink.prepare_table(full, true));
    }

    // Tables with a primary key: one COPY left open across a table's batches
    // (two tables interleaved, as parallel snapshot workers hand them out),
    // committed at the table's end, at a switch of table, or by commit_position.
    auto a = make_table(schema, 910003), b = make_table(schema, 910004);
    a->name = "a";
    b->name = "b";
    l.run(sink.prepare_table(a, true));
    l.run(sink.prepare_table(b, true));
    int next_id = 0;
    const auto batch_of = [&](const std::shared_ptr<table_schema>& t, int n, bool done) {
        snapshot_batch sb;
        sb.table = t;
        sb.table_done = done;
        for (int i = 0; i < n; ++i, ++next_id)
            sb.rows.push_back(row{value::text_value(std::to_string(next_id)), value::text_value("k\\\t"),
                                  i % 7 ? value::text_value("line\nbreak") : value::null_value(),
                                  value::text_value("NaN"), value::text_value("\\x0a"),
                                  value::text_value(std::string(5000, 'z'))});
        return sb;
    };
    const auto count_of = [&](const std::string& name) {
        auto r = admin.exec("SELECT count(*) FROM " + quote_pg_ident(schema) + "." + quote_pg_ident(name));
        return std::stoi(PQgetvalue(r.get(), 0, 0));
    };
    l.run(sink.apply_snapshot(batch_of(a, 700, false)));
    l.run(sink.apply_snapshot(batch_of(a, 5, false)));
    CHECK(count_of("a") == 0);  // still in the open COPY
    l.run(sink.apply_snapshot(batch_of(b, 300, false)));
    CHECK(count_of("a") == 705);  // another table: a's COPY committed
    l.run(sink.apply_snapshot(batch_of(b, 0, true)));
    CHECK(count_of("b") == 300);
    l.run(sink.apply_snapshot(batch_of(a, 40, false)));
    l.run(sink.commit_position(lsn{7}));
    CHECK(count_of("a") == 745);
    auto v =
        admin.exec("SELECT count(*) FROM " + quote_pg_ident(schema) + ".a WHERE \"Tag; \"\"x\"\"\" = 'k\\\t' AND " +
                   "n = 'NaN' AND b = '\\x0a' AND length(big) = 5000 AND (v IS NULL OR v = E'line\\nbreak')");
    CHECK(std::string(PQgetvalue(v.get(), 0, 0)) == "745");

    // Inserts of keys the target holds already (a stream started with
    // snapshot never over old rows): the plain COPY fails, the run is upserted.
    auto t = make_table(schema, 910002);
    t->name = "plain";
    l.run(sink.prepare_table(t, true));
    admin.exec("INSERT INTO " + quote_pg_ident(schema) + "." + quote_pg_ident(t->name) +
               " SELECT g, 'k', 'old', 0, '\\x', 'old' FROM generate_series(0, 99) g");
    for (int round = 0; round < 3; ++round) {
        std::vector<transaction> txns(1);
        for (int i = 0; i < 300; ++i)
            txns[0].changes.push_back({t, change_op::insert, std::nullopt,
                                       row{value::text_value(std::to_string(i)), value::text_value("k"),
                                           value::text_value("new " + std::to_string(round)), value::null_value(),
                                           value::text_value("\\x01"), value::text_value("big")}});
        l.run(sink.apply(std::move(txns), lsn{static_cast<std::uint64_t>(round + 1)}));
        auto r = admin.exec("SELECT count(*), count(*) FILTER (WHERE v = 'new " + std::to_string(round) +
                            "' AND n IS NULL) FROM " + quote_pg_ident(schema) + "." + quote_pg_ident(t->name));
        CHECK(std::string(PQgetvalue(r.get(), 0, 0)) == "300");
        CHECK(std::string(PQgetvalue(r.get(), 0, 1)) == "300");
    }
    l.run(sink.close());
}

TEST_CASE(
    "pg_sink after a data error: the failed batch is rolled back and the same sink applies it change by change "
    "under savepoints",
    "[pg]") {
    admin_conn admin;
    const std::string schema = "dv_fail_" + run_suffix();
    struct drop_schema {
        admin_conn& db;
        std::string s;
        ~drop_schema() { db.exec_quiet("DROP SCHEMA IF EXISTS " + quote_pg_ident(s) + " CASCADE"); }
    } cleanup{admin, schema};
    const std::string stream = "fail_test_" + run_suffix();
    loop l;
    pg_sink sink(test_spec(), required_env("DATAVOR_TEST_PG_PASSWORD"));
    l.run(sink.open(stream));
    auto t = make_table(schema, 920001);
    l.run(sink.prepare_table(t, true));
    const auto row_of = [](int id, std::string n) {
        return row{value::text_value(std::to_string(id)), value::text_value("k"), value::text_value("v"),
                   value::text_value(std::move(n)),       value::null_value(),    value::text_value("big")};
    };
    // Long runs (COPY, staged) and short ones (pipeline); one bad numeric.
    const auto changes_of = [&](int from, int n, int bad, change_op op) {
        std::vector<change_event> out;
        for (int i = from; i < from + n; ++i)
            out.push_back({t, op, std::nullopt, row_of(i, i == bad ? "not a number" : std::to_string(i))});
        return out;
    };
    std::vector<transaction> txns(1);
    txns[0].changes = changes_of(0, 400, 350, change_op::insert);
    bool data_error = false;
    try {
        l.run(sink.apply(txns, lsn{1}));
    } catch (const connector_error& e) {
        data_error = e.kind() == failure_kind::data;
    }
    REQUIRE(data_error);

    // As the stream engine does: the batch again, part by part, each under a savepoint.
    transaction header;
    header.end_lsn = lsn{1};
    l.run(sink.begin_transaction(header));
    const auto part = [&](std::vector<change_event> changes) {
        l.run(sink.savepoint());
        try {
            l.run(sink.apply_changes(std::move(changes)));
            l.run(sink.release_savepoint());
            return true;
        } catch (const connector_error& e) {
            CHECK(e.kind() == failure_kind::data);
            l.run(sink.rollback_to_savepoint());
            return false;
        }
    };
    CHECK(part(changes_of(0, 300, -1, change_op::insert)));
    CHECK_FALSE(part(changes_of(300, 100, 350, change_op::insert)));  // plain COPY fails
    CHECK_FALSE(part(changes_of(0, 300, 120, change_op::update)));    // staged merge fails
    CHECK_FALSE(part(changes_of(300, 3, 301, change_op::insert)));    // pipeline fails
    CHECK(part(changes_of(300, 50, -1, change_op::insert)));
    CHECK(part(changes_of(0, 300, -1, change_op::update)));  // staging again after the rollbacks
    CHECK(part(changes_of(350, 1, -1, change_op::insert)));
    l.run(sink.commit_transaction(lsn{1}));
    auto r = admin.exec("SELECT count(*), sum(n) FROM " + quote_pg_ident(schema) + "." + quote_pg_ident(t->name));
    CHECK(std::string(PQgetvalue(r.get(), 0, 0)) == "351");
    CHECK(std::string(PQgetvalue(r.get(), 0, 1)) == std::to_string(350 * 351 / 2));

    // A data error in apply() and then the next batch, as a plain apply().
    txns[0].changes = changes_of(400, 10, 405, change_op::insert);
    CHECK_THROWS_AS(l.run(sink.apply(txns, lsn{2})), connector_error);
    txns[0].changes = changes_of(400, 10, -1, change_op::insert);
    l.run(sink.apply(txns, lsn{3}));
    r = admin.exec("SELECT count(*) FROM " + quote_pg_ident(schema) + "." + quote_pg_ident(t->name));
    CHECK(std::string(PQgetvalue(r.get(), 0, 0)) == "361");
    l.run(sink.close());
    pg_sink again(test_spec(), required_env("DATAVOR_TEST_PG_PASSWORD"));
    CHECK(l.run(again.open(stream))->v == 3);
    admin.exec("DELETE FROM public._datavor_offsets WHERE stream = '" + stream + "'");
}
