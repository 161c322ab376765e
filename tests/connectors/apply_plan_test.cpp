// The sans-I/O half of pg_sink (apply_plan): how changes become writes and
// runs, and COPY text. No server needed; pg_sink_test.cpp checks the results
// against a real PostgreSQL.
#include "connectors/pg/apply_plan.hpp"

#include <catch2/catch.hpp>

using namespace datavor::connectors;
using namespace datavor::connectors::pg;

namespace {

std::shared_ptr<table_schema> two_key_table(std::uint32_t relid) {
    auto t = std::make_shared<table_schema>();
    t->relation_id = relid;
    t->schema = "s";
    t->name = "t";
    for (const char* n : {"id", "tag", "v", "n", "b", "big"}) {
        column_def c;
        c.name = n;
        c.key = std::string(n) == "id" || std::string(n) == "tag";
        t->columns.push_back(c);
    }
    return t;
}

}  // namespace

TEST_CASE("apply plan groups consecutive writes of one table and shape into runs, never across tables or kinds") {
    auto a = two_key_table(1), b = two_key_table(2);
    std::vector<change_event> cs;
    const row r{value::text_value("1"), value::text_value("x"), value::null_value(),
                value::null_value(),    value::null_value(),    value::null_value()};
    row partial = r;
    partial[5] = value::unchanged_value();
    row key = r;
    for (std::size_t i = 2; i < key.size(); ++i) key[i] = value::unchanged_value();
    row moved = partial;
    moved[0] = value::text_value("2");
    row null_key = key;
    null_key[1] = value::null_value();
    cs.push_back({a, change_op::insert, std::nullopt, r});
    cs.push_back({a, change_op::update, std::nullopt, r});        // same run (full upserts)
    cs.push_back({b, change_op::insert, std::nullopt, r});        // another table
    cs.push_back({b, change_op::update, std::nullopt, partial});  // other columns
    cs.push_back({b, change_op::update, std::nullopt, partial});
    cs.push_back({b, change_op::update, key, moved});  // a move: alone
    cs.push_back({b, change_op::erase, key, {}});
    cs.push_back({b, change_op::erase, key, {}});
    cs.push_back({b, change_op::erase, null_key, {}});  // NULL key: alone
    cs.push_back({b, change_op::truncate, std::nullopt, {}});
    std::vector<apply_action> actions;
    std::deque<update_plan> plans;
    for (const auto& c : cs) add_actions(c, c.table->key_columns(), actions, plans);
    std::vector<std::size_t> runs;
    for (std::size_t i = 0; i < actions.size(); i += runs.back())
        runs.push_back(run_length(std::span(actions).subspan(i)));
    CHECK(runs == std::vector<std::size_t>{2, 1, 2, 1, 2, 1, 1});
    CHECK(actions[3].k == apply_action::kind::update);
    CHECK(*actions[3].columns == std::vector<std::size_t>{0, 1, 2, 3, 4});
    CHECK(actions[5].k == apply_action::kind::move);
    CHECK(actions[5].old_key == &*cs[5].before);
}

TEST_CASE("apply plan turns an update that changed the key, every column carried, into a delete then an upsert") {
    auto t = two_key_table(1);
    row old{value::text_value("1"), value::text_value("x")}, after{value::text_value("2"), value::text_value("x")};
    for (int i = 0; i < 4; ++i) {
        old.push_back(value::unchanged_value());
        after.push_back(value::text_value("v"));
    }
    std::vector<apply_action> actions;
    std::deque<update_plan> plans;
    add_actions({t, change_op::update, old, after}, t->key_columns(), actions, plans);
    REQUIRE(actions.size() == 2);
    CHECK(actions[0].k == apply_action::kind::erase);
    CHECK(actions[1].k == apply_action::kind::upsert);
    CHECK(actions[1].columns == nullptr);
    CHECK_FALSE(actions[1].insert);
}

TEST_CASE("apply plan SQL quotes every identifier and keeps the last row of a key in a staged run") {
    auto t = two_key_table(1);
    t->name = "we\"ird; DROP TABLE x; --";
    table_sql sql(*t);
    CHECK(sql.target() == "\"s\".\"we\"\"ird; DROP TABLE x; --\"");
    const auto merge = sql.merge_upsert_stage("stage");
    CHECK(merge.find(
              "SELECT DISTINCT ON (c0, c1) c0, c1, c2, c3, c4, c5 FROM pg_temp.\"stage\" ORDER BY c0, c1, seq DESC") !=
          std::string::npos);
    CHECK(merge.find("ON CONFLICT (\"id\", \"tag\") DO UPDATE SET \"v\" = EXCLUDED.\"v\"") != std::string::npos);
    CHECK(sql.erase("01") == "DELETE FROM " + sql.target() + " WHERE \"id\" = $1 AND \"tag\" IS NULL");
    CHECK(sql.update({2, 5}, "00") ==
          "UPDATE " + sql.target() + " SET \"v\" = $1, \"big\" = $2 WHERE \"id\" = $3 AND \"tag\" = $4");
    CHECK(sql.move_erase_old("00", "10") == "DELETE FROM " + sql.target() + " WHERE \"id\" = $1 AND \"tag\" = $2 AND " +
                                                "EXISTS (SELECT FROM " + sql.target() +
                                                " WHERE \"id\" IS NULL AND \"tag\" = $3)");
    CHECK(sql.merge_update_stage("stage", {2}) ==
          "UPDATE " + sql.target() + " AS x SET \"v\" = s.c2 FROM (SELECT DISTINCT ON (c0, c1) c2, c0, c1 FROM " +
              "pg_temp.\"stage\" ORDER BY c0, c1, seq DESC) AS s WHERE x.\"id\" = s.c0 AND x.\"tag\" = s.c1");
}

TEST_CASE("apply plan writes COPY text with NULL as \\N and escapes backslash, tab, newline and return") {
    std::string out;
    append_copy_field(out, value::text_value("a\tb\nc\rd\\e\\N"));
    out += '|';
    append_copy_field(out, value::null_value());
    CHECK(out == "a\\tb\\nc\\rd\\\\e\\\\N|\\N");
}
