// The Suggestion Engine (engines/suggest/suggest_engine.hpp) against a real
// context.db in a temporary folder: schema drift becoming suggestions, the
// withhold rules and kept values of a pending new column, decisions (accept,
// with or without a type; reject; a second decision), learned patterns and the
// stream's autopilot (suggest, learned, all), what the stream still has to
// carry out (to_apply), and the ledger entries. Then the rule set's side of
// it: a withhold rule and a backfill through rule_set::apply.
#include "engines/context/context_store.hpp"
#include "engines/ledger/ledger.hpp"
#include "engines/rules/rule_set.hpp"
#include "engines/suggest/suggest_engine.hpp"

#include "tests/engines/rules_test_support.hpp"

#include "tests/engines/temp_home.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

using namespace datavor;
using connectors::change_op;
using connectors::column_def;
using connectors::table_schema;
using connectors::value;
using engines::context::context_store;
using engines::context::kept_value;
using engines::context::pattern_record;
using engines::context::stream_record;
using engines::context::suggestion_record;
using engines::suggest::drift_outcome;
using engines::suggest::suggest_engine;
namespace rules = datavor::engines::rules;
namespace fs = std::filesystem;

namespace {

using datavor::testing::temp_home;

// PostgreSQL type OIDs.
constexpr std::uint32_t oid_int8 = 20, oid_int4 = 23, oid_text = 25, oid_numeric = 1700;

column_def column(std::string name, std::uint32_t oid, std::string type, bool key = false) {
    column_def c;
    c.name = std::move(name);
    c.type_oid = oid;
    c.type_name = std::move(type);
    c.key = key;
    c.nullable = !key;
    return c;
}
column_def text_column(std::string name) { return column(std::move(name), oid_text, "text"); }
column_def integer_column(std::string name) { return column(std::move(name), oid_int4, "integer"); }

// schema.name(id integer key, note text, amount numeric), then `extra`.
table_schema orders(std::vector<column_def> extra = {}, std::string schema = "public", std::string name = "orders") {
    table_schema t;
    t.relation_id = 16384;
    t.schema = std::move(schema);
    t.name = std::move(name);
    t.replica_identity = 'd';
    t.version = 1;
    t.columns = {column("id", oid_int4, "integer", true), text_column("note"), column("amount", oid_numeric, "numeric")};
    for (auto& c : extra) t.columns.push_back(std::move(c));
    return t;
}

stream_record stream_named(std::string name) {
    stream_record s;
    s.name = std::move(name);
    s.source = "src";
    s.target = "dst";
    s.tables = {"public.*"};
    return s;
}

bool has_id(const std::vector<suggestion_record>& list, std::int64_t id) {
    return std::any_of(list.begin(), list.end(), [&](const suggestion_record& s) { return s.id == id; });
}

// A context.db in a temporary folder and a suggest engine on it (no ledger).
struct engine_fixture {
    temp_home home;
    context_store ctx{home.path};
    suggest_engine engine{ctx, nullptr};

    // The table as first met (version 1), then with `extra` columns: the second outcome.
    drift_outcome add_columns(const std::string& stream, std::vector<column_def> extra, const std::string& schema = "public",
                              const std::string& name = "orders") {
        engine.on_schema(stream, orders({}, schema, name), "0/10", "snapshot");
        return engine.on_schema(stream, orders(std::move(extra), schema, name), "0/20", "relation");
    }
    // A pending new column `column` on schema.name: the suggestion.
    suggestion_record pending_new_column(const std::string& stream, column_def c, const std::string& schema = "public",
                                         const std::string& name = "orders") {
        const auto out = add_columns(stream, {std::move(c)}, schema, name);
        REQUIRE(out.created.size() == 1);
        REQUIRE(out.created[0].kind == "new_column");
        REQUIRE(out.created[0].status == "pending");
        return out.created[0];
    }
    std::string status_of(std::int64_t id) const {
        const auto s = ctx.find_suggestion(id);
        REQUIRE(s);
        return s->status;
    }
};

}  // namespace

// ---- drift becomes suggestions -------------------------------------------------

TEST_CASE_METHOD(engine_fixture, "suggest engine: the first definition of a table is version 1 and suggests nothing",
                 "[suggest]") {
    const auto out = engine.on_schema("s1", orders(), "0/10", "snapshot");
    CHECK(out.version == 1);
    CHECK(out.created.empty());
    CHECK_FALSE(out.rules_changed);
    CHECK(ctx.list_suggestions("s1", "").empty());
    CHECK(engine.withholds("s1").empty());

    SECTION("the same definition again records nothing") {
        const auto again = engine.on_schema("s1", orders(), "0/30", "relation");
        CHECK(again.version == 0);
        CHECK(again.created.empty());
        CHECK_FALSE(again.rules_changed);
    }
    SECTION("a change of replica identity alone is a new version without suggestions") {
        auto full = orders();
        full.replica_identity = 'f';
        const auto again = engine.on_schema("s1", full, "0/30", "relation");
        CHECK(again.version == 2);
        CHECK(again.created.empty());
        CHECK(ctx.list_suggestions("s1", "").empty());
    }
}

TEST_CASE_METHOD(engine_fixture,
                 "suggest engine: a new column becomes a pending suggestion that names it and withholds it", "[suggest]") {
    const auto out = add_columns("s1", {text_column("coupon")});
    CHECK(out.version == 2);
    CHECK(out.rules_changed);  // the stream must load the withhold rule
    REQUIRE(out.created.size() == 1);
    const auto& s = out.created[0];
    CHECK(s.id > 0);
    CHECK(s.stream == "s1");
    CHECK(s.table == "public.orders");
    CHECK(s.kind == "new_column");
    CHECK(s.column == "coupon");
    CHECK(s.new_type == "text");
    CHECK(s.status == "pending");
    CHECK(s.action == "add_column");
    CHECK(s.action_type == "text");
    CHECK(s.schema_version == 2);
    CHECK(s.position == "0/20");
    CHECK(s.backfilled == -1);
    CHECK_THAT(s.message, Catch::Contains("public.orders.coupon") && Catch::Contains("(text)"));

    const auto listed = ctx.list_suggestions("s1", "pending");
    REQUIRE(listed.size() == 1);
    CHECK(listed[0].id == s.id);

    const auto w = engine.withholds("s1");
    REQUIRE(w.size() == 1);
    CHECK(w[0].kind == "withhold");
    CHECK(w[0].id == -s.id);
    CHECK(w[0].stream == "s1");
    CHECK(w[0].table == "public.orders");
    CHECK(w[0].column == "coupon");
    CHECK(w[0].provenance == "suggestion");
    CHECK(engine.withholds("another stream").empty());
    CHECK(ctx.list_rules("s1").empty());  // never saved
    CHECK(engine.to_apply("s1").empty());
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: drift other than a new column is suggested but withholds nothing",
                 "[suggest]") {
    engine.on_schema("s1", orders(), "0/10", "snapshot");
    auto next = orders();
    next.columns[2].type_name = "numeric(12,2)";  // amount
    next.columns.erase(next.columns.begin() + 1);  // note
    const auto out = engine.on_schema("s1", next, "0/20", "relation");
    CHECK(out.version == 2);
    CHECK_FALSE(out.rules_changed);
    REQUIRE(out.created.size() == 2);
    CHECK(out.created[0].kind == "type_change");
    CHECK(out.created[0].column == "amount");
    CHECK(out.created[0].old_type == "numeric");
    CHECK(out.created[0].new_type == "numeric(12,2)");
    CHECK(out.created[0].action == "alter_target_type");
    CHECK(out.created[1].kind == "dropped_column");
    CHECK(out.created[1].column == "note");
    CHECK(out.created[1].action == "keep_target_column");
    for (const auto& s : out.created) CHECK(s.status == "pending");
    CHECK(engine.withholds("s1").empty());
}

// ---- kept values ---------------------------------------------------------------

TEST_CASE_METHOD(engine_fixture, "suggest engine: kept values are upserted by row key and forgotten by finish_backfill",
                 "[suggest]") {
    const auto s = pending_new_column("s1", text_column("coupon"));
    ctx.keep_values({{s.id, R"({"id":1})", "image 1"}, {s.id, R"({"id":2})", "image 2"}});
    ctx.keep_values({{s.id, R"({"id":1})", "image 1 again"}, {s.id, R"({"id":3})", "image 3"}});
    CHECK(ctx.find_suggestion(s.id)->kept_rows == 3);  // distinct keys

    const auto all = ctx.kept_values(s.id, "", 100);
    REQUIRE(all.size() == 3);
    CHECK(all[0].suggestion_id == s.id);
    CHECK(all[0].row_key == R"({"id":1})");
    CHECK(all[0].image == "image 1 again");  // the latest value of the row
    CHECK(all[1].row_key == R"({"id":2})");
    CHECK(all[2].row_key == R"({"id":3})");

    SECTION("pages follow key order") {
        const auto first = ctx.kept_values(s.id, "", 2);
        REQUIRE(first.size() == 2);
        const auto rest = ctx.kept_values(s.id, first.back().row_key, 2);
        REQUIRE(rest.size() == 1);
        CHECK(rest[0].row_key == R"({"id":3})");
        CHECK(ctx.kept_values(s.id, rest.back().row_key, 2).empty());
    }
    SECTION("another suggestion's values are its own") {
        const auto other = pending_new_column("s2", text_column("coupon"));
        ctx.keep_values({{other.id, R"({"id":9})", "other"}});
        CHECK(ctx.find_suggestion(other.id)->kept_rows == 1);
        CHECK(ctx.find_suggestion(s.id)->kept_rows == 3);
        CHECK(ctx.kept_values(s.id, "", 100).size() == 3);
    }
    SECTION("finish_backfill records the rows written and forgets the values") {
        ctx.finish_backfill(s.id, 3);
        CHECK(ctx.find_suggestion(s.id)->backfilled == 3);
        CHECK(ctx.kept_values(s.id, "", 100).empty());
    }
}

// ---- decisions -----------------------------------------------------------------

TEST_CASE_METHOD(engine_fixture,
                 "suggest engine: accepting a new column without a type learns a pattern and leaves it to apply",
                 "[suggest]") {
    const auto s = pending_new_column("s1", text_column("coupon"));
    ctx.keep_values({{s.id, R"({"id":1})", "image 1"}});

    const auto d = engine.accept(s.id, "", "looks right");
    REQUIRE(d.error.empty());
    REQUIRE(d.suggestion);
    CHECK(d.suggestion->id == s.id);
    CHECK(d.suggestion->status == "accepted");
    CHECK(d.suggestion->decided_by == "user");
    CHECK(d.suggestion->action_type == "text");
    CHECK(d.suggestion->note == "looks right");
    CHECK(d.suggestion->pattern_id == 0);
    CHECK(d.suggestion->rule_id == 0);
    CHECK(d.suggestion->decided_at > 0);
    CHECK_FALSE(d.rule);  // the source's own type: no cast
    CHECK(ctx.list_rules("s1").empty());

    REQUIRE(d.pattern);
    CHECK(d.pattern->id > 0);
    CHECK(d.pattern->kind == "new_column");
    CHECK(d.pattern->table_pattern == "public.*");
    CHECK(d.pattern->new_type == "text");
    CHECK(d.pattern->old_type.empty());
    CHECK(d.pattern->decision == "accept");
    CHECK(d.pattern->action_type == "text");
    CHECK(d.pattern->from_suggestion == s.id);
    CHECK(d.pattern->stream == "s1");
    CHECK_FALSE(d.pattern->description.empty());
    const auto patterns = ctx.list_patterns();
    REQUIRE(patterns.size() == 1);
    CHECK(patterns[0].id == d.pattern->id);

    CHECK(engine.withholds("s1").empty());                   // no longer withheld
    CHECK(ctx.kept_values(s.id, "", 100).size() == 1);       // kept for the backfill
    auto due = engine.to_apply("s1");
    REQUIRE(due.size() == 1);
    CHECK(due[0].id == s.id);
    CHECK(engine.to_apply("s1").size() == 1);  // until the stream says it is done

    engine.applied(due[0], 1, "column coupon added, 1 kept value(s) backfilled");
    CHECK(engine.to_apply("s1").empty());
    CHECK(ctx.find_suggestion(s.id)->backfilled == 1);
    CHECK(ctx.kept_values(s.id, "", 100).empty());
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: the same decision twice learns one pattern", "[suggest]") {
    const auto a = pending_new_column("s1", text_column("coupon"));
    REQUIRE(engine.accept(a.id, "", "").pattern);
    const auto b = pending_new_column("s1", text_column("coupon"), "public", "invoices");
    const auto d = engine.accept(b.id, "", "");
    REQUIRE(d.error.empty());
    CHECK_FALSE(d.pattern);
    CHECK(ctx.list_patterns().size() == 1);
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: accepting a new column as another known type saves a cast rule",
                 "[suggest]") {
    const auto s = pending_new_column("s1", integer_column("visits"));
    const auto d = engine.accept(s.id, "bigint", "");
    REQUIRE(d.error.empty());
    REQUIRE(d.rule);
    CHECK(d.rule->id > 0);
    CHECK(d.rule->kind == "cast");
    CHECK(d.rule->stream == "s1");
    CHECK(d.rule->table == "public.orders");
    CHECK(d.rule->column == "visits");
    CHECK(d.rule->to == "bigint");
    CHECK(d.rule->on_fail == "null");
    CHECK(d.rule->provenance == "suggestion");
    CHECK(rules::validate(*d.rule).empty());

    const auto saved = ctx.list_rules("s1");
    REQUIRE(saved.size() == 1);
    CHECK(saved[0].id == d.rule->id);
    CHECK(saved[0].kind == "cast");
    CHECK(saved[0].provenance == "suggestion");

    REQUIRE(d.suggestion);
    CHECK(d.suggestion->status == "accepted");
    CHECK(d.suggestion->action_type == "bigint");
    CHECK(d.suggestion->rule_id == d.rule->id);
    REQUIRE(d.pattern);
    CHECK(d.pattern->new_type == "integer");
    CHECK(d.pattern->action_type == "bigint");
    CHECK(has_id(engine.to_apply("s1"), s.id));
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: a type no cast knows is refused and the suggestion stays pending",
                 "[suggest]") {
    const auto s = pending_new_column("s1", text_column("shape"));
    const auto d = engine.accept(s.id, "geometry", "");
    CHECK_FALSE(d.error.empty());
    CHECK_FALSE(d.suggestion);
    CHECK_FALSE(d.rule);
    CHECK_FALSE(d.pattern);
    CHECK(status_of(s.id) == "pending");
    CHECK(ctx.list_rules("s1").empty());
    CHECK(ctx.list_patterns().empty());
    CHECK(engine.withholds("s1").size() == 1);
    CHECK(engine.to_apply("s1").empty());

    SECTION("it can still be accepted afterwards") {
        const auto ok = engine.accept(s.id, "", "");
        REQUIRE(ok.error.empty());
        CHECK(status_of(s.id) == "accepted");
    }
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: rejecting a new column saves a drop rule and discards its kept values",
                 "[suggest]") {
    const auto s = pending_new_column("s1", text_column("secret"));
    ctx.keep_values({{s.id, R"({"id":1})", "a"}, {s.id, R"({"id":2})", "b"}});

    const auto d = engine.reject(s.id, "not for the warehouse");
    REQUIRE(d.error.empty());
    REQUIRE(d.suggestion);
    CHECK(d.suggestion->status == "rejected");
    CHECK(d.suggestion->decided_by == "user");
    CHECK(d.suggestion->note == "not for the warehouse");
    REQUIRE(d.rule);
    CHECK(d.rule->kind == "drop");
    CHECK(d.rule->table == "public.orders");
    CHECK(d.rule->column == "secret");
    CHECK(d.rule->provenance == "suggestion");
    CHECK(d.suggestion->rule_id == d.rule->id);
    const auto saved = ctx.list_rules("s1");
    REQUIRE(saved.size() == 1);
    CHECK(saved[0].kind == "drop");

    CHECK(ctx.kept_values(s.id, "", 100).empty());
    CHECK(engine.withholds("s1").empty());
    CHECK(engine.to_apply("s1").empty());
    REQUIRE(d.pattern);
    CHECK(d.pattern->decision == "reject");
    CHECK(d.pattern->action_type.empty());
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: a decided suggestion refuses a second decision", "[suggest]") {
    const auto s = pending_new_column("s1", text_column("coupon"));
    SECTION("accepted, then accepted or rejected again") {
        REQUIRE(engine.accept(s.id, "", "").error.empty());
        const auto again = engine.accept(s.id, "", "");
        CHECK_FALSE(again.error.empty());
        CHECK_FALSE(again.suggestion);
        const auto reject = engine.reject(s.id, "");
        CHECK_FALSE(reject.error.empty());
        CHECK_FALSE(reject.rule);
        CHECK(status_of(s.id) == "accepted");
        CHECK(ctx.list_rules("s1").empty());  // no drop rule slipped in
    }
    SECTION("rejected, then accepted") {
        REQUIRE(engine.reject(s.id, "").error.empty());
        const auto again = engine.accept(s.id, "bigint", "");
        CHECK_FALSE(again.error.empty());
        CHECK_FALSE(again.rule);
        CHECK(status_of(s.id) == "rejected");
        CHECK(ctx.list_rules("s1").size() == 1);  // only the drop
    }
    SECTION("an unknown suggestion") {
        CHECK_FALSE(engine.accept(s.id + 100, "", "").error.empty());
        CHECK_FALSE(engine.reject(s.id + 100, "").error.empty());
    }
}

TEST_CASE_METHOD(engine_fixture,
                 "suggest engine: an accepted type change waits in to_apply; an accepted dropped column is done at once",
                 "[suggest]") {
    engine.on_schema("s1", orders(), "0/10", "snapshot");
    auto next = orders();
    next.columns[2].type_name = "numeric(12,2)";
    next.columns.erase(next.columns.begin() + 1);
    const auto out = engine.on_schema("s1", next, "0/20", "relation");
    REQUIRE(out.created.size() == 2);
    const auto type_change = out.created[0], dropped = out.created[1];
    REQUIRE(type_change.kind == "type_change");
    REQUIRE(dropped.kind == "dropped_column");

    const auto t = engine.accept(type_change.id, "", "");
    REQUIRE(t.error.empty());
    CHECK_FALSE(t.rule);
    REQUIRE(t.pattern);
    CHECK(t.pattern->kind == "type_change");
    CHECK(t.pattern->old_type == "numeric");
    CHECK(t.pattern->new_type == "numeric(12,2)");

    const auto d = engine.accept(dropped.id, "", "");
    REQUIRE(d.error.empty());
    CHECK_FALSE(d.rule);
    CHECK(d.suggestion->backfilled == 0);

    const auto due = engine.to_apply("s1");
    REQUIRE(due.size() == 1);
    CHECK(due[0].id == type_change.id);
    engine.applied(due[0], 0, "target column amount altered to numeric(12,2)");
    CHECK(engine.to_apply("s1").empty());
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: to_apply lists accepted suggestions oldest first", "[suggest]") {
    const auto a = pending_new_column("s1", text_column("coupon"));
    const auto b = pending_new_column("s1", text_column("coupon"), "public", "invoices");
    REQUIRE(engine.accept(b.id, "", "").error.empty());
    REQUIRE(engine.accept(a.id, "", "").error.empty());
    const auto due = engine.to_apply("s1");
    REQUIRE(due.size() == 2);
    CHECK(due[0].id == a.id);
    CHECK(due[1].id == b.id);
}

// ---- patterns and autopilot ----------------------------------------------------

TEST_CASE_METHOD(engine_fixture,
                 "suggest engine: autopilot learned decides a drift like a past one by its pattern, and only those",
                 "[suggest]") {
    ctx.put_stream(stream_named("s1"));
    REQUIRE(ctx.set_autopilot("s1", "learned"));
    REQUIRE(ctx.find_stream("s1")->autopilot == "learned");

    // No pattern yet: even under learned, the first one waits for the user.
    const auto first = pending_new_column("s1", text_column("coupon"));
    const auto learned = engine.accept(first.id, "", "");
    REQUIRE(learned.pattern);
    const auto pattern_id = learned.pattern->id;

    SECTION("a new text column on another public table is accepted by the pattern") {
        const auto out = add_columns("s1", {text_column("nickname")}, "public", "customers");
        REQUIRE(out.created.size() == 1);
        const auto& s = out.created[0];
        CHECK(s.status == "auto_accepted");
        CHECK(s.decided_by == "pattern");
        CHECK(s.pattern_id == pattern_id);
        CHECK(s.action_type == "text");
        CHECK(s.backfilled == 0);  // decided before any value was withheld
        CHECK_FALSE(out.rules_changed);
        CHECK_THAT(s.message, Catch::Contains("Similar past decision"));
        CHECK(status_of(s.id) == "auto_accepted");
        CHECK(engine.withholds("s1").empty());
        CHECK_FALSE(has_id(engine.to_apply("s1"), s.id));
        const auto patterns = ctx.list_patterns();
        REQUIRE(patterns.size() == 1);  // an automatic decision learns nothing
        CHECK(patterns[0].uses == 1);
        CHECK(patterns[0].last_used_at > 0);
    }
    SECTION("a new column of another type stays pending") {
        const auto out = add_columns("s1", {integer_column("visits")}, "public", "customers");
        REQUIRE(out.created.size() == 1);
        CHECK(out.created[0].status == "pending");
        CHECK(out.created[0].pattern_id == 0);
        CHECK(out.rules_changed);
        CHECK_THAT(out.created[0].message, !Catch::Contains("Similar past decision"));
        REQUIRE(engine.withholds("s1").size() == 1);
        CHECK(engine.withholds("s1")[0].column == "visits");
    }
    SECTION("a new text column in another schema stays pending") {
        const auto out = add_columns("s1", {text_column("nickname")}, "sales", "customers");
        REQUIRE(out.created.size() == 1);
        CHECK(out.created[0].status == "pending");
    }
    SECTION("a pattern learned with a cast type casts the next one too, as a rule of provenance pattern") {
        const auto visits = pending_new_column("s1", integer_column("visits"), "public", "customers");
        const auto as_bigint = engine.accept(visits.id, "bigint", "");
        REQUIRE(as_bigint.pattern);
        const auto out = add_columns("s1", {integer_column("logins")}, "public", "users");
        REQUIRE(out.created.size() == 1);
        const auto& s = out.created[0];
        CHECK(s.status == "auto_accepted");
        CHECK(s.pattern_id == as_bigint.pattern->id);
        CHECK(s.action_type == "bigint");
        CHECK(out.rules_changed);
        const auto saved = ctx.list_rules("s1");
        REQUIRE(saved.size() == 2);
        CHECK(saved[1].kind == "cast");
        CHECK(saved[1].column == "logins");
        CHECK(saved[1].to == "bigint");
        CHECK(saved[1].provenance == "pattern");
        CHECK(s.rule_id == saved[1].id);
    }
    SECTION("a pattern learned from a reject leaves the next one out with a drop rule") {
        const auto secret = pending_new_column("s1", integer_column("pin"), "public", "customers");
        REQUIRE(engine.reject(secret.id, "").pattern);
        const auto out = add_columns("s1", {integer_column("pin")}, "public", "users");
        REQUIRE(out.created.size() == 1);
        CHECK(out.created[0].status == "auto_rejected");
        CHECK(out.created[0].decided_by == "pattern");
        CHECK(out.rules_changed);
        const auto saved = ctx.list_rules("s1");
        REQUIRE(saved.size() == 2);
        CHECK(saved[1].kind == "drop");
        CHECK(saved[1].column == "pin");
        CHECK(saved[1].provenance == "pattern");
    }
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: autopilot suggest only mentions a similar past decision", "[suggest]") {
    ctx.put_stream(stream_named("s1"));  // autopilot suggest by default
    REQUIRE(ctx.find_stream("s1")->autopilot == "suggest");
    const auto first = pending_new_column("s1", text_column("coupon"));
    const auto learned = engine.accept(first.id, "", "");
    REQUIRE(learned.pattern);

    const auto out = add_columns("s1", {text_column("nickname")}, "public", "customers");
    REQUIRE(out.created.size() == 1);
    const auto& s = out.created[0];
    CHECK(s.status == "pending");
    CHECK(s.decided_by.empty());
    CHECK(s.pattern_id == 0);
    CHECK(out.rules_changed);
    CHECK_THAT(s.message, Catch::Contains("Similar past decision") &&
                              Catch::Contains("pattern " + std::to_string(learned.pattern->id)));
    CHECK(ctx.list_patterns()[0].uses == 0);
    REQUIRE(engine.withholds("s1").size() == 1);
    CHECK(engine.withholds("s1")[0].column == "nickname");
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: a stream without a saved record is under autopilot suggest",
                 "[suggest]") {
    const auto first = pending_new_column("s1", text_column("coupon"));
    REQUIRE(engine.accept(first.id, "", "").pattern);
    const auto out = add_columns("s1", {text_column("nickname")}, "public", "customers");
    REQUIRE(out.created.size() == 1);
    CHECK(out.created[0].status == "pending");
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: autopilot all accepts a drift that no pattern covers", "[suggest]") {
    ctx.put_stream(stream_named("s1"));
    REQUIRE(ctx.set_autopilot("s1", "all"));
    REQUIRE(ctx.list_patterns().empty());

    SECTION("a new column") {
        const auto out = add_columns("s1", {text_column("coupon")});
        REQUIRE(out.created.size() == 1);
        const auto& s = out.created[0];
        CHECK(s.status == "auto_accepted");
        CHECK(s.decided_by == "autopilot");
        CHECK(s.pattern_id == 0);
        CHECK(s.backfilled == 0);
        CHECK_FALSE(out.rules_changed);
        CHECK(engine.withholds("s1").empty());
        CHECK(engine.to_apply("s1").empty());
        CHECK(ctx.list_patterns().empty());  // only a user's decision is learned
    }
    SECTION("a type change is accepted and left to apply") {
        engine.on_schema("s1", orders(), "0/10", "snapshot");
        auto next = orders();
        next.columns[2].type_name = "numeric(12,2)";
        const auto out = engine.on_schema("s1", next, "0/20", "relation");
        REQUIRE(out.created.size() == 1);
        CHECK(out.created[0].status == "auto_accepted");
        CHECK(out.created[0].decided_by == "autopilot");
        const auto due = engine.to_apply("s1");
        REQUIRE(due.size() == 1);
        CHECK(due[0].id == out.created[0].id);
    }
}

TEST_CASE_METHOD(engine_fixture, "suggest engine: set_autopilot needs a saved stream", "[suggest]") {
    CHECK_FALSE(ctx.set_autopilot("nobody", "all"));
    ctx.put_stream(stream_named("s1"));
    CHECK(ctx.set_autopilot("s1", "all"));
    CHECK(ctx.find_stream("s1")->autopilot == "all");
}

// ---- the ledger ----------------------------------------------------------------

TEST_CASE("suggest engine: suggestions, decisions and their application are recorded in the ledger", "[suggest]") {
    temp_home home;
    context_store ctx(home.path);
    engines::ledger::ledger ledger(home.path / "ledger.db");
    suggest_engine engine(ctx, &ledger);

    engine.on_schema("s1", orders(), "0/10", "snapshot");
    const auto out = engine.on_schema("s1", orders({text_column("coupon")}), "0/20", "relation");
    REQUIRE(out.created.size() == 1);
    const auto d = engine.accept(out.created[0].id, "", "");
    REQUIRE(d.error.empty());
    engine.applied(*d.suggestion, 0, "column coupon added");
    REQUIRE(ledger.flush());

    const auto entries = ledger.find({.stream = "s1", .kind = engines::ledger::kind_lifecycle});
    REQUIRE(entries.size() == 3);
    CHECK(entries[0].op == "suggestion");
    CHECK(entries[1].op == "suggestion_accepted");
    CHECK(entries[2].op == "suggestion_applied");
    for (const auto& e : entries) {
        CHECK(e.table == "public.orders");
        CHECK(e.position == "0/20");
        CHECK_THAT(e.body, Catch::Contains("\"suggestion\":" + std::to_string(out.created[0].id)));
    }
    CHECK(ledger.verify().ok);
}

// ---- the rule set's side -------------------------------------------------------

namespace {

std::shared_ptr<const table_schema> shared(table_schema t, std::uint64_t version = 2) {
    t.version = version;
    return std::make_shared<const table_schema>(std::move(t));
}

std::vector<std::string> column_names(const table_schema& t) {
    std::vector<std::string> out;
    for (const auto& c : t.columns) out.push_back(c.name);
    return out;
}

rules::rule withhold(std::int64_t suggestion, std::string column) {
    rules::rule r;
    r.id = -suggestion;
    r.stream = "s1";
    r.table = "public.orders";
    r.kind = "withhold";
    r.column = std::move(column);
    r.provenance = "suggestion";
    return r;
}

}  // namespace

TEST_CASE_METHOD(engine_fixture,
                 "rule_set: a withhold rule leaves its column out of the target and reports it as withheld",
                 "[suggest][rules]") {
    const auto s = pending_new_column("s1", text_column("coupon"));
    const auto t = shared(orders({text_column("coupon")}));
    rules::rule_set set(engine.withholds("s1"), "salt", 1);
    const auto& compiled = set.for_table(t);
    CHECK(column_names(*compiled.target()) == std::vector<std::string>{"id", "note", "amount"});
    CHECK_FALSE(compiled.identity());
    CHECK(compiled.warnings().empty());
    REQUIRE(compiled.withheld().size() == 1);
    CHECK(compiled.withheld()[0].first == 3);  // coupon's index in the source table
    CHECK(compiled.withheld()[0].second == s.id);

    auto c = test::make_change(t, change_op::insert, std::nullopt,
                               test::make_row(*t, {{"id", "1"}, {"note", "hi"}, {"amount", "2.5"}, {"coupon", "SAVE10"}}));
    std::string why;
    CHECK(set.apply(c, why) == rules::table_rules::outcome::keep);
    CHECK(c.table == compiled.target());
    REQUIRE(c.after.size() == 3);
    CHECK(c.after[0] == value::text_value("1"));
    CHECK(c.after[2] == value::text_value("2.5"));
}

TEST_CASE("rule_set: a key column is never withheld", "[suggest][rules]") {
    const auto t = shared(orders({text_column("coupon")}));
    rules::rule_set set({withhold(7, "id"), withhold(8, "missing")}, "salt", 1);
    const auto& compiled = set.for_table(t);
    CHECK(compiled.withheld().empty());
    CHECK(column_names(*compiled.target()) == std::vector<std::string>{"id", "note", "amount", "coupon"});
}

TEST_CASE("rule_set: a backfill skips filters and leaves derived columns unchanged", "[suggest][rules]") {
    const auto t = shared(orders({text_column("coupon")}));
    rules::rule filter;
    filter.id = 1;
    filter.kind = "filter";
    filter.condition = "note <> 'test'";
    rules::rule derive;
    derive.id = 2;
    derive.kind = "derive";
    derive.column = "label";
    derive.expression = "upper(note)";
    REQUIRE(rules::validate(filter).empty());
    REQUIRE(rules::validate(derive).empty());
    rules::rule_set set({filter, derive}, "salt", 1);
    const auto target = set.for_table(t).target();
    REQUIRE(column_names(*target) == std::vector<std::string>{"id", "note", "amount", "coupon", "label"});
    std::string why;

    SECTION("a row the filter would leave out is written") {
        const auto row = test::make_row(*t, {{"id", "1"}, {"note", "test"}, {"coupon", "SAVE10"}});
        auto normal = test::make_change(t, change_op::update, std::nullopt, row);
        CHECK(set.apply(normal, why) == rules::table_rules::outcome::filtered);
        auto backfill = test::make_change(t, change_op::update, std::nullopt, row);
        CHECK(set.apply(backfill, why, 0, true) == rules::table_rules::outcome::keep);
        REQUIRE(backfill.after.size() == 5);
        CHECK(backfill.after[3] == value::text_value("SAVE10"));
        CHECK(backfill.after[4].st == value::state::unchanged);  // not upper('test')
    }
    SECTION("a kept-value image (key and the new column) keeps the other columns unchanged") {
        auto backfill = test::make_change(t, change_op::update, std::nullopt,
                                          test::make_row(*t, {{"id", "1"}, {"note", "?"}, {"amount", "?"}, {"coupon", "X"}}));
        CHECK(set.apply(backfill, why, 0, true) == rules::table_rules::outcome::keep);
        CHECK(backfill.table == target);
        REQUIRE(backfill.after.size() == 5);
        CHECK(backfill.after[0] == value::text_value("1"));
        CHECK(backfill.after[1].st == value::state::unchanged);
        CHECK(backfill.after[2].st == value::state::unchanged);
        CHECK(backfill.after[3] == value::text_value("X"));
        CHECK(backfill.after[4].st == value::state::unchanged);
    }
    SECTION("without backfill the derived column is computed") {
        auto normal = test::make_change(t, change_op::update, std::nullopt,
                                        test::make_row(*t, {{"id", "1"}, {"note", "hello"}, {"coupon", "X"}}));
        CHECK(set.apply(normal, why) == rules::table_rules::outcome::keep);
        REQUIRE(normal.after.size() == 5);
        CHECK(normal.after[4] == value::text_value("HELLO"));
    }
}
