// The pgoutput decoder against PostgreSQL 15 (the server scripts/test starts,
// DATAVOR_TEST_PG_*): the raw pgoutput bytes of real changes, read with
// pg_logical_slot_get_binary_changes, decoded message by message. Table,
// type, publication and slots have names unique to the run and are dropped
// at the end, also on failure.
#include "connectors/pg/pg_handles.hpp"
#include "connectors/pg/pgoutput_decoder.hpp"
#include "tests/connectors/probe_support.hpp"
#include "tests/connectors/result_string_maker.hpp"

#include <catch2/catch.hpp>

#include <libpq-fe.h>

using namespace datavor::connectors;
using namespace datavor::connectors::pg;
using namespace datavor::test;

namespace {

// A libpq connection for setup SQL and slot reads. Cleanup statements run
// newest first (errors ignored) when the test ends.
class admin_conn {
public:
    admin_conn() {
        const std::string host = required_env("DATAVOR_TEST_PG_HOST"), port = required_env("DATAVOR_TEST_PG_PORT"),
                          user = required_env("DATAVOR_TEST_PG_USER"), pw = required_env("DATAVOR_TEST_PG_PASSWORD");
        const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", nullptr};
        const char* values[] = {host.c_str(), port.c_str(), user.c_str(), pw.c_str(), "postgres", "10", nullptr};
        conn_.reset(PQconnectdbParams(keys, values, 0));
        if (PQstatus(conn_.get()) != CONNECTION_OK) FAIL("connection to PostgreSQL failed: " << PQerrorMessage(conn_.get()));
        // Values are compared as PostgreSQL's text output in these settings.
        exec("SET client_encoding = 'UTF8'; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'");
        // The test server commits asynchronously, and a slot is read only up
        // to the flushed WAL: flush each commit so the last ones are decoded.
        exec("SET synchronous_commit = on");
    }
    admin_conn(const admin_conn&) = delete;
    admin_conn& operator=(const admin_conn&) = delete;
    ~admin_conn() {
        for (auto it = cleanup_.rbegin(); it != cleanup_.rend(); ++it) PQclear(PQexec(conn_.get(), it->c_str()));
    }

    void exec(const std::string& sql) {
        pg_result_ptr r(PQexec(conn_.get(), sql.c_str()));
        const auto st = PQresultStatus(r.get());
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
            FAIL("SQL failed: " << sql << "\n" << PQresultErrorMessage(r.get()));
    }
    void on_cleanup(std::string sql) { cleanup_.push_back(std::move(sql)); }

    // The first column of every row, as raw bytes (binary result format).
    std::vector<std::string> binary_rows(const std::string& sql) {
        pg_result_ptr r(PQexecParams(conn_.get(), sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 1));
        if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) FAIL("SQL failed: " << sql << "\n" << PQresultErrorMessage(r.get()));
        std::vector<std::string> out;
        for (int i = 0; i < PQntuples(r.get()); ++i)
            out.emplace_back(PQgetvalue(r.get(), i, 0), static_cast<std::size_t>(PQgetlength(r.get(), i, 0)));
        return out;
    }

private:
    pg_conn_ptr conn_;
    std::vector<std::string> cleanup_;
};

// The tags with runs shortened ("SRI*3000E"), for failure messages.
std::string summarize(const std::string& tags) {
    std::string out;
    for (std::size_t i = 0; i < tags.size();) {
        std::size_t j = i;
        while (j < tags.size() && tags[j] == tags[i]) ++j;
        out += tags[i];
        if (j - i > 1) out += "*" + std::to_string(j - i);
        i = j;
    }
    return out;
}

char tag_of(const pgoutput_message& m) {
    static constexpr char tags[] = {'B', 'C', 'O', 'R', 'Y', 'I', 'U', 'D', 'T', 'M', 'S', 'E', 'c', 'A'};
    static_assert(sizeof tags == std::variant_size_v<pgoutput_message>);
    return tags[m.index()];
}

// Decodes every row of a slot read; FAILs on the first message it rejects.
std::vector<pgoutput_message> decode_all(pgoutput_decoder& d, const std::vector<std::string>& rows, std::string& tags) {
    std::vector<pgoutput_message> out;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        auto r = d.decode(rows[i]);
        INFO("message " << i << " (tag '" << (rows[i].empty() ? '?' : rows[i][0]) << "', " << rows[i].size()
                        << " bytes) after " << summarize(tags));
        REQUIRE(r.has_value());
        tags += tag_of(*r);
        out.push_back(std::move(*r));
    }
    return out;
}

// Walks decoded messages in order: next<T>() requires the next one to be a T.
class cursor {
public:
    cursor(const std::vector<pgoutput_message>& m, const std::string& tags) : m_(m), tags_(tags) {}
    template <class T>
    const T& next() {
        INFO("decoded sequence: " << summarize(tags_) << ", at " << i_);
        REQUIRE(i_ < m_.size());
        REQUIRE(std::holds_alternative<T>(m_[i_]));
        return std::get<T>(m_[i_++]);
    }
    bool done() const { return i_ == m_.size(); }

private:
    const std::vector<pgoutput_message>& m_;
    const std::string& tags_;
    std::size_t i_ = 0;
};

value text(std::string s) { return value::text_value(std::move(s)); }

}  // namespace

TEST_CASE("pgoutput decoder decodes protocol 1 changes of many types from PostgreSQL 15", "[pg][pgoutput]") {
    admin_conn db;
    const std::string sfx = run_suffix(), table = "dv_pgo_" + sfx, type = "dv_mood_" + sfx,
                      pub = "dv_pgo_pub_" + sfx, slot = "dv_pgo_slot_" + sfx;
    db.on_cleanup("DROP TYPE IF EXISTS " + type);
    db.exec("CREATE TYPE " + type + " AS ENUM ('sad', 'happy')");
    db.on_cleanup("DROP TABLE IF EXISTS " + table);
    db.exec("CREATE TABLE " + table + " (id int PRIMARY KEY, big bigint, num numeric(30,10), txt text, raw bytea, "
            "flag bool, ts timestamptz, doc jsonb, arr int[], mood " + type + ", blob text)");
    db.exec("ALTER TABLE " + table + " ALTER COLUMN blob SET STORAGE EXTERNAL");  // TOASTed, uncompressed
    db.on_cleanup("DROP PUBLICATION IF EXISTS " + pub);
    db.exec("CREATE PUBLICATION " + pub + " FOR TABLE " + table);
    db.on_cleanup("SELECT pg_drop_replication_slot('" + slot + "')");
    db.exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')");

    const std::string blob(1'000'000, 'x');
    db.exec("INSERT INTO " + table + " VALUES (1, 9007199254740993, 12345678901234567890.0123456789, 'h\xC3\xA9llo', "
            "'\\x00ff10', true, '2024-02-29 12:34:56.789012+00', '{\"a\": [1, 2]}', '{1,2,NULL}', 'happy', "
            "repeat('x', 1000000))");
    db.exec("UPDATE " + table + " SET txt = 'changed' WHERE id = 1");  // blob stays in TOAST
    db.exec("INSERT INTO " + table + " (id) VALUES (2)");
    db.exec("DELETE FROM " + table + " WHERE id = 2");
    db.exec("ALTER TABLE " + table + " REPLICA IDENTITY FULL");
    db.exec("UPDATE " + table + " SET big = big + 1 WHERE id = 1");
    db.exec("DELETE FROM " + table + " WHERE id = 1");
    db.exec("INSERT INTO " + table + " (id) VALUES (3)");
    db.exec("TRUNCATE " + table);
    db.exec("SELECT pg_logical_emit_message(true, 'datavor', 'hello')");

    const auto rows = db.binary_rows("SELECT data FROM pg_logical_slot_get_binary_changes('" + slot +
                                     "', NULL, NULL, 'proto_version', '1', 'publication_names', '" + pub +
                                     "', 'messages', 'true')");
    pgoutput_decoder d(1);
    std::string tags;
    const auto msgs = decode_all(d, rows, tags);
    CHECK(tags == "BYRICBUCBICBDCBYRUCBDCBICBYRTCBMC");
    cursor c(msgs, tags);

    // INSERT: every type in its text form; the enum's type comes first.
    const auto& b1 = c.next<begin_msg>();
    CHECK(b1.xid != 0);
    CHECK(b1.commit_time_us > 1'600'000'000'000'000);  // unix microseconds, after 2020
    const auto& y = c.next<type_msg>();
    CHECK(y.name == type);
    CHECK(y.schema == "public");
    const auto& rel = c.next<relation_msg>();
    const auto v1 = rel.table;
    CHECK(v1->qualified() == "public." + table);
    CHECK(v1->replica_identity == 'd');
    CHECK(v1->version == 1);
    REQUIRE(v1->columns.size() == 11);
    const std::vector<std::uint32_t> oids = {23, 20, 1700, 25, 17, 16, 1184, 3802, 1007, y.oid, 25};
    for (std::size_t i = 0; i < oids.size(); ++i) {
        INFO("column " << v1->columns[i].name);
        CHECK(v1->columns[i].type_oid == oids[i]);
        CHECK(v1->columns[i].key == (i == 0));
    }
    CHECK(v1->columns[2].type_mod == ((30 << 16) | 10) + 4);  // numeric(30,10)
    const auto& ins = c.next<insert_msg>();
    CHECK(ins.table == v1);
    const row expected = {text("1"), text("9007199254740993"), text("12345678901234567890.0123456789"),
                          text("h\xC3\xA9llo"), text("\\x00ff10"), text("t"), text("2024-02-29 12:34:56.789012+00"),
                          text("{\"a\": [1, 2]}"), text("{1,2,NULL}"), text("happy"), text(blob)};
    REQUIRE(ins.new_row.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        INFO("column " << v1->columns[i].name);
        CHECK(ins.new_row[i] == expected[i]);
    }
    const auto& c1 = c.next<commit_msg>();
    CHECK(c1.commit_lsn == b1.final_lsn);
    CHECK(c1.end_lsn > c1.commit_lsn);

    // UPDATE that leaves the TOASTed column alone: 'u', no old row.
    c.next<begin_msg>();
    const auto& up = c.next<update_msg>();
    CHECK_FALSE(up.old_row);
    CHECK(up.new_row[3] == text("changed"));
    CHECK(up.new_row[10].is_unchanged());
    c.next<commit_msg>();

    // INSERT with NULLs, then DELETE by primary key: 'K', key columns only.
    c.next<begin_msg>();
    const auto& ins2 = c.next<insert_msg>();
    CHECK(ins2.new_row[0] == text("2"));
    for (std::size_t i = 1; i < ins2.new_row.size(); ++i) CHECK(ins2.new_row[i].is_null());
    c.next<commit_msg>();
    c.next<begin_msg>();
    const auto& del = c.next<erase_msg>();
    CHECK(del.old_kind == 'K');
    CHECK(del.old_row[0] == text("2"));
    for (std::size_t i = 1; i < del.old_row.size(); ++i) CHECK(del.old_row[i].is_null());
    c.next<commit_msg>();

    // REPLICA IDENTITY FULL: the relation is re-sent (every column in the
    // identity), updates and deletes carry the whole old row.
    c.next<begin_msg>();
    c.next<type_msg>();
    const auto& rel2 = c.next<relation_msg>();
    CHECK(rel2.changed);
    CHECK(rel2.table->version == 2);
    CHECK(rel2.table->replica_identity == 'f');
    for (const auto& col : rel2.table->columns) CHECK(col.key);
    CHECK(v1->replica_identity == 'd');  // the first definition is untouched
    const auto& full = c.next<update_msg>();
    CHECK(full.table == rel2.table);
    CHECK(full.old_kind == 'O');
    REQUIRE(full.old_row);
    CHECK(full.old_row->at(1) == text("9007199254740993"));
    CHECK(full.old_row->at(3) == text("changed"));
    CHECK(full.new_row[1] == text("9007199254740994"));
    CHECK(full.new_row[10].is_unchanged());
    c.next<commit_msg>();
    c.next<begin_msg>();
    const auto& del2 = c.next<erase_msg>();
    CHECK(del2.old_kind == 'O');
    CHECK(del2.old_row[0] == text("1"));
    CHECK(del2.old_row[8] == text("{1,2,NULL}"));
    c.next<commit_msg>();

    // TRUNCATE (a new relfilenode: the relation is re-sent, identical) and a
    // transactional logical message.
    c.next<begin_msg>();
    CHECK(c.next<insert_msg>().new_row[0] == text("3"));
    c.next<commit_msg>();
    c.next<begin_msg>();
    c.next<type_msg>();
    const auto& rel3 = c.next<relation_msg>();
    CHECK_FALSE(rel3.changed);
    CHECK(rel3.table == rel2.table);
    const auto& tr = c.next<truncate_msg>();
    REQUIRE(tr.tables.size() == 1);
    CHECK(tr.tables[0] == rel2.table);
    CHECK_FALSE(tr.cascade);
    CHECK_FALSE(tr.restart_identity);
    c.next<commit_msg>();
    c.next<begin_msg>();
    const auto& m = c.next<message_msg>();
    CHECK(m.transactional);
    CHECK(m.prefix == "datavor");
    CHECK(m.content == "hello");
    c.next<commit_msg>();
    CHECK(c.done());
}

TEST_CASE("pgoutput decoder decodes protocol 2 streamed, aborted and plain transactions from PostgreSQL 15",
          "[pg][pgoutput]") {
    admin_conn db;
    const std::string sfx = run_suffix(), table = "dv_pgs_" + sfx, pub = "dv_pgs_pub_" + sfx,
                      slot = "dv_pgs_slot_" + sfx;
    db.on_cleanup("DROP TABLE IF EXISTS " + table);
    db.exec("CREATE TABLE " + table + " (id int PRIMARY KEY, note text)");
    db.on_cleanup("DROP PUBLICATION IF EXISTS " + pub);
    db.exec("CREATE PUBLICATION " + pub + " FOR TABLE " + table);
    db.on_cleanup("SELECT pg_drop_replication_slot('" + slot + "')");
    db.exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')");

    constexpr int rows_per_txn = 3000;  // far over logical_decoding_work_mem below: streamed
    db.exec("INSERT INTO " + table + " SELECT g, repeat('y', 100) FROM generate_series(1, 3000) g");
    db.exec("BEGIN; INSERT INTO " + table + " SELECT g, 'z' FROM generate_series(10001, 13000) g; ROLLBACK");
    db.exec("INSERT INTO " + table + " VALUES (0, 'small')");

    // Decoding runs in this backend, so its memory limit decides what streams.
    db.exec("SET logical_decoding_work_mem = '64kB'");
    const auto rows = db.binary_rows("SELECT data FROM pg_logical_slot_get_binary_changes('" + slot +
                                     "', NULL, NULL, 'proto_version', '2', 'streaming', 'on', "
                                     "'publication_names', '" + pub + "')");
    pgoutput_decoder d(2);
    std::string tags;
    const auto msgs = decode_all(d, rows, tags);
    INFO("decoded sequence: " << summarize(tags));

    // Walk the stream blocks of the two large transactions.
    std::size_t i = 0;
    auto streamed_txn = [&](std::uint32_t& xid, int& inserts, int& blocks) {
        xid = 0;
        inserts = blocks = 0;
        while (i < msgs.size() && std::holds_alternative<stream_start_msg>(msgs[i])) {
            const auto& s = std::get<stream_start_msg>(msgs[i++]);
            CHECK(s.first_segment == (blocks == 0));
            if (blocks++ == 0) xid = s.xid;
            CHECK(s.xid == xid);
            for (; i < msgs.size() && !std::holds_alternative<stream_stop_msg>(msgs[i]); ++i) {
                if (const auto* ins = std::get_if<insert_msg>(&msgs[i])) {
                    CHECK(ins->xid == xid);
                    CHECK(ins->new_row.size() == 2);
                    ++inserts;
                } else if (const auto* rel = std::get_if<relation_msg>(&msgs[i])) {
                    CHECK(rel->xid == xid);
                    CHECK(rel->table->name == table);
                } else {
                    FAIL("unexpected message in a stream block at " << i);
                }
            }
            REQUIRE(i < msgs.size());
            ++i;  // Stream Stop
        }
    };
    std::uint32_t xid1 = 0, xid2 = 0;
    int inserts = 0, blocks = 0;
    streamed_txn(xid1, inserts, blocks);
    CHECK(blocks >= 2);
    CHECK(inserts == rows_per_txn);
    REQUIRE(i < msgs.size());
    REQUIRE(std::holds_alternative<stream_commit_msg>(msgs[i]));
    const auto& sc = std::get<stream_commit_msg>(msgs[i++]);
    CHECK(sc.xid == xid1);
    CHECK(sc.end_lsn > sc.commit_lsn);
    CHECK(sc.commit_time_us > 1'600'000'000'000'000);

    streamed_txn(xid2, inserts, blocks);
    CHECK(blocks >= 1);
    CHECK(xid2 != xid1);
    REQUIRE(i < msgs.size());
    REQUIRE(std::holds_alternative<stream_abort_msg>(msgs[i]));
    CHECK(std::get<stream_abort_msg>(msgs[i]).xid == xid2);
    CHECK(std::get<stream_abort_msg>(msgs[i++]).subxid == xid2);  // the whole transaction

    // A small transaction is sent whole, without xids on its changes.
    REQUIRE(msgs.size() - i == 3);
    CHECK(std::holds_alternative<begin_msg>(msgs[i]));
    const auto* small = std::get_if<insert_msg>(&msgs[i + 1]);
    REQUIRE(small);
    CHECK_FALSE(small->xid);
    CHECK(small->new_row == row{text("0"), text("small")});
    CHECK(std::holds_alternative<commit_msg>(msgs[i + 2]));
}
