// The rules engine's rule set (engines/rules/rule_set.hpp) and casts
// (engines/rules/cast.hpp): naming a cast's type, checking and normalising a
// value's text for it, validating rules, matching tables, and compiling a
// stream's rules per source table version into the transformation every
// change goes through (filter, mask, drop, cast, rename, derive). No server
// needed: tables and changes are built by hand, values in PostgreSQL's text
// form as the sources deliver them.
#include "engines/rules/cast.hpp"
#include "engines/rules/rule_set.hpp"

#include "tests/engines/rules_test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

using namespace datavor;
using namespace datavor::connectors;
namespace rules = datavor::engines::rules;
using outcome = rules::table_rules::outcome;

namespace {

// PostgreSQL type OIDs.
constexpr std::uint32_t oid_bool = 16, oid_int8 = 20, oid_int2 = 21, oid_int4 = 23, oid_text = 25, oid_float4 = 700,
                        oid_float8 = 701, oid_date = 1082, oid_timestamp = 1114, oid_timestamptz = 1184,
                        oid_numeric = 1700;

// ---- casts -----------------------------------------------------------------

rules::cast_type type_named(std::string_view name) {
    auto t = rules::cast_type_of(name);
    INFO("type: " << name);
    REQUIRE(t);
    return *t;
}

// The value as the named type takes it, or "<refused>" (a string, so that a
// failure shows it).
constexpr const char* refused = "<refused>";
std::string cast(std::string_view value, std::string_view type) {
    return rules::cast_text(value, type_named(type)).value_or(refused);
}

// ---- tables and changes ----------------------------------------------------

// public.people: a key and text columns, as a source that keeps text would
// have them (casts give them their types in the target).
std::shared_ptr<const table_schema> people_table(std::uint64_t version = 3, std::uint32_t relation = 20000,
                                                 std::string schema = "public", std::string name = "people") {
    auto t = std::make_shared<table_schema>();
    t->relation_id = relation;
    t->schema = std::move(schema);
    t->name = std::move(name);
    t->replica_identity = 'd';
    t->version = version;
    auto col = [&](std::string n, std::uint32_t oid, std::string type_name, std::int32_t mod = -1, bool key = false) {
        column_def c;
        c.name = std::move(n);
        c.type_oid = oid;
        c.type_mod = mod;
        c.type_name = std::move(type_name);
        c.key = key;
        c.nullable = !key;
        t->columns.push_back(std::move(c));
    };
    col("id", oid_int4, "integer", -1, true);
    col("name", oid_text, "text");
    col("email", 1043, "character varying(100)", 104);
    col("card", oid_text, "text");
    col("age", oid_text, "text");
    col("born", oid_text, "text");
    col("score", oid_text, "text");
    col("doc", oid_text, "text");  // a TOASTed value in some changes
    col("city", oid_text, "text");
    return t;
}

using test::cell;
using test::make_row;
// The row most tests use, with some columns replaced.
row ada(const table_schema& t, std::initializer_list<cell> changes = {}) {
    auto r = make_row(t, {{"id", "1"},
                          {"name", "Ada Lovelace"},
                          {"email", "ada@example.com"},
                          {"card", "4111111111111111"},
                          {"age", "36"},
                          {"born", "1815-12-10"},
                          {"score", "9.5"},
                          {"doc", "long text"},
                          {"city", "London"}});
    const auto patch = make_row(t, changes);
    for (const auto& c : changes) {
        std::size_t i = 0;
        while (t.columns[i].name != c.column) ++i;
        r[i] = patch[i];
    }
    return r;
}
using test::key_only;
using test::make_change;
change_event insert_of(const std::shared_ptr<const table_schema>& t, row r) {
    return make_change(t, change_op::insert, std::nullopt, std::move(r));
}

std::optional<std::size_t> column_at(const table_schema& t, const std::string& name) {
    for (std::size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i].name == name) return i;
    return std::nullopt;
}
std::vector<std::string> column_names(const table_schema& t) {
    std::vector<std::string> out;
    for (const auto& c : t.columns) out.push_back(c.name);
    return out;
}
const column_def& column(const table_schema& t, const std::string& name) {
    const auto i = column_at(t, name);
    INFO("column " << name << " of " << t.qualified());
    REQUIRE(i);
    return t.columns[*i];
}
std::string show(const value& v) {
    switch (v.st) {
        case value::state::null: return "<null>";
        case value::state::unchanged: return "<unchanged>";
        case value::state::text: return v.data;
        case value::state::binary: return "<binary " + v.data + ">";
    }
    return "?";
}
// A column's value in the change's new image (its table is the one the
// change carries: the target's after the rules ran).
std::string after(const change_event& c, const std::string& name) {
    const auto i = column_at(*c.table, name);
    INFO("column " << name);
    REQUIRE(i);
    REQUIRE(*i < c.after.size());
    return show(c.after[*i]);
}
std::string before(const change_event& c, const std::string& name) {
    const auto i = column_at(*c.table, name);
    INFO("column " << name);
    REQUIRE(i);
    REQUIRE(c.before);
    REQUIRE(*i < c.before->size());
    return show((*c.before)[*i]);
}

// ---- rules -----------------------------------------------------------------

rules::rule make_rule(std::string kind, std::string table = "*") {
    static std::int64_t next_id = 1;
    rules::rule r;
    r.id = next_id++;
    r.stream = "rule_set_test";
    r.table = std::move(table);
    r.kind = std::move(kind);
    return r;
}
rules::rule filter_rule(std::string condition, std::string table = "*") {
    auto r = make_rule("filter", std::move(table));
    r.condition = std::move(condition);
    return r;
}
rules::rule mask_rule(std::string column, std::string method, std::string table = "*") {
    auto r = make_rule("mask", std::move(table));
    r.column = std::move(column);
    r.method = std::move(method);
    return r;
}
rules::rule drop_rule(std::string column) {
    auto r = make_rule("drop");
    r.column = std::move(column);
    return r;
}
rules::rule cast_rule(std::string column, std::string to, std::string on_fail = "") {
    auto r = make_rule("cast");
    r.column = std::move(column);
    r.to = std::move(to);
    r.on_fail = std::move(on_fail);
    return r;
}
rules::rule rename_rule(std::string column, std::string to) {
    auto r = make_rule("rename");
    r.column = std::move(column);
    r.to = std::move(to);
    return r;
}
rules::rule rename_table_rule(std::string to) { return rename_rule("", std::move(to)); }
rules::rule derive_rule(std::string column, std::string expression, std::string to = "") {
    auto r = make_rule("derive");
    r.column = std::move(column);
    r.expression = std::move(expression);
    r.to = std::move(to);
    return r;
}

constexpr const char* salt = "pepper";

rules::rule_set set_of(std::vector<rules::rule> rs, std::uint64_t generation = 1, std::string s = salt) {
    return rules::rule_set(std::move(rs), std::move(s), generation);
}

// Applies the set to `c`, with `why` checked empty unless rejected.
outcome run(rules::rule_set& set, change_event& c, std::string* why_out = nullptr) {
    std::string why;
    const auto o = set.apply(c, why);
    if (o != outcome::rejected) CHECK(why.empty());
    if (why_out) *why_out = why;
    return o;
}

bool is_lower_hex(const std::string& s) {
    return std::all_of(s.begin(), s.end(), [](char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); });
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

// ============================================================================
// cast_type_of
// ============================================================================

TEST_CASE("cast_type_of: every type name and alias gives PostgreSQL's OID and format_type name", "[rules]") {
    struct expect {
        const char* name;
        std::uint32_t oid;
        const char* type;
    };
    const expect all[] = {
        {"integer", oid_int4, "integer"},
        {"int", oid_int4, "integer"},
        {"int4", oid_int4, "integer"},
        {"bigint", oid_int8, "bigint"},
        {"int8", oid_int8, "bigint"},
        {"smallint", oid_int2, "smallint"},
        {"int2", oid_int2, "smallint"},
        {"numeric", oid_numeric, "numeric"},
        {"decimal", oid_numeric, "numeric"},
        {"double", oid_float8, "double precision"},
        {"double precision", oid_float8, "double precision"},
        {"float8", oid_float8, "double precision"},
        {"float", oid_float8, "double precision"},
        {"real", oid_float4, "real"},
        {"float4", oid_float4, "real"},
        {"text", oid_text, "text"},
        {"string", oid_text, "text"},
        {"varchar", oid_text, "text"},
        {"boolean", oid_bool, "boolean"},
        {"bool", oid_bool, "boolean"},
        {"date", oid_date, "date"},
        {"timestamp", oid_timestamp, "timestamp without time zone"},
        {"timestamptz", oid_timestamptz, "timestamp with time zone"},
    };
    for (const auto& e : all) {
        INFO("name: " << e.name);
        auto t = rules::cast_type_of(e.name);
        REQUIRE(t);
        CHECK(t->oid == e.oid);
        CHECK(t->name == e.type);
    }
}

TEST_CASE("cast_type_of: names are case-insensitive and may have spaces around them", "[rules]") {
    CHECK(rules::cast_type_of("INTEGER")->oid == oid_int4);
    CHECK(rules::cast_type_of("  BigInt\t")->oid == oid_int8);
    CHECK(rules::cast_type_of("Double Precision")->oid == oid_float8);
    CHECK(rules::cast_type_of(" TimestampTZ ")->oid == oid_timestamptz);
    CHECK(rules::cast_type_of("Bool")->name == "boolean");
}

TEST_CASE("cast_type_of: names it does not know give nothing", "[rules]") {
    for (const char* n : {"", " ", "uuid", "json", "jsonb", "bytea", "money", "serial", "interval", "time",
                          "integer[]", "int 4", "intege", "integers", "double  precision", "precision", "timestamp tz",
                          "int16", "float16", "'text'", "text;"}) {
        INFO("name: '" << n << "'");
        CHECK_FALSE(rules::cast_type_of(n));
    }
}

// ============================================================================
// cast_text
// ============================================================================

TEST_CASE("cast_text: integers are normalised (signs, spaces, leading zeros)", "[rules]") {
    for (const char* type : {"smallint", "integer", "bigint"}) {
        INFO("type: " << type);
        CHECK(cast("42", type) == "42");
        CHECK(cast("-42", type) == "-42");
        CHECK(cast("+42", type) == "42");
        CHECK(cast(" 42 ", type) == "42");
        CHECK(cast("\t7\n", type) == "7");
        CHECK(cast("007", type) == "7");
        CHECK(cast("-0", type) == "0");
        CHECK(cast("0", type) == "0");
    }
}

TEST_CASE("cast_text: each integer type's range limits", "[rules]") {
    SECTION("smallint") {
        CHECK(cast("32767", "smallint") == "32767");
        CHECK(cast("-32768", "smallint") == "-32768");
        CHECK(cast("32768", "smallint") == refused);
        CHECK(cast("-32769", "smallint") == refused);
        CHECK(cast("100000", "smallint") == refused);
    }
    SECTION("integer") {
        CHECK(cast("2147483647", "integer") == "2147483647");
        CHECK(cast("-2147483648", "integer") == "-2147483648");
        CHECK(cast("2147483648", "integer") == refused);
        CHECK(cast("-2147483649", "integer") == refused);
        CHECK(cast("32768", "integer") == "32768");
    }
    SECTION("bigint") {
        CHECK(cast("9223372036854775807", "bigint") == "9223372036854775807");
        CHECK(cast("-9223372036854775808", "bigint") == "-9223372036854775808");
        CHECK(cast("9223372036854775808", "bigint") == refused);
        CHECK(cast("-9223372036854775809", "bigint") == refused);
        CHECK(cast("99999999999999999999", "bigint") == refused);
        CHECK(cast("2147483648", "bigint") == "2147483648");
    }
}

TEST_CASE("cast_text: integers refuse junk", "[rules]") {
    for (const char* type : {"smallint", "integer", "bigint"}) {
        for (const char* v : {"", " ", "+", "-", "++1", "--1", "-+1", "1.0", "1.5", "1e3", "12abc", "abc", "0x10", "1 2",
                              "- 1", "1,000", "1_000", "NaN", "\xd9\xa1"}) {
            INFO("type: " << type << ", value: '" << v << "'");
            CHECK(cast(v, type) == refused);
        }
    }
}

TEST_CASE("cast_text: numeric accepts PostgreSQL's decimal forms and keeps the text", "[rules]") {
    CHECK(cast("0", "numeric") == "0");
    CHECK(cast("-1.5", "numeric") == "-1.5");
    CHECK(cast("+1.5", "numeric") == "+1.5");
    CHECK(cast(".5", "numeric") == ".5");
    CHECK(cast("5.", "numeric") == "5.");
    CHECK(cast(" 3.14 ", "numeric") == "3.14");
    CHECK(cast("123456789012345678901234567890.123456789", "numeric") == "123456789012345678901234567890.123456789");
    SECTION("exponents") {
        CHECK(cast("1e10", "numeric") == "1e10");
        CHECK(cast("1.5E-3", "numeric") == "1.5E-3");
        CHECK(cast("-2.5e+7", "numeric") == "-2.5e+7");
        CHECK(cast(".5e1", "numeric") == ".5e1");
    }
    SECTION("NaN") { CHECK(cast("NaN", "numeric") == "NaN"); }
    SECTION("junk") {
        for (const char* v : {"", " ", ".", "-", "+", "e5", "1e", "1e+", "1e-", "1.2.3", "1,5", "abc", "1 000", "0x1A",
                              "--1", "+-1", "1e5.5", "1.5x", "NaNa"}) {
            INFO("value: '" << v << "'");
            CHECK(cast(v, "numeric") == refused);
        }
    }
}

TEST_CASE("cast_text: double precision and real", "[rules]") {
    for (const char* type : {"double", "real"}) {
        INFO("type: " << type);
        CHECK(cast("1.5", type) == "1.5");
        CHECK(cast("-1.5", type) == "-1.5");
        CHECK(cast("+1.5", type) == "+1.5");
        CHECK(cast(" 2.5e3 ", type) == "2.5e3");
        CHECK(cast("42", type) == "42");
        CHECK(cast(".5", type) == ".5");
        // Infinities and NaN, as PostgreSQL spells them.
        for (const char* v : {"inf", "-inf", "+inf", "Infinity", "-Infinity", "INF", "NaN", "nan"}) {
            INFO("value: " << v);
            CHECK(cast(v, type) == std::string(v));
        }
        for (const char* v : {"", " ", "+", "-", "abc", "1.5x", "1,5", "1..2", "--1", "1 2", "0x10", "e5", "in"}) {
            INFO("value: '" << v << "'");
            CHECK(cast(v, type) == refused);
        }
    }
    // Out of a double's range.
    CHECK(cast("1e400", "double") == refused);
    CHECK(cast("-1e400", "double") == refused);
}

TEST_CASE("cast_text: boolean, every spelling in any case, to PostgreSQL's t/f", "[rules]") {
    for (const char* v : {"t", "true", "yes", "y", "on", "1", "T", "TRUE", "True", "YES", "Y", "On", " yes ", "\ttrue\n"}) {
        INFO("value: '" << v << "'");
        CHECK(cast(v, "boolean") == "t");
    }
    for (const char* v : {"f", "false", "no", "n", "off", "0", "F", "FALSE", "False", "NO", "N", "OFF", " off ", "\tf"}) {
        INFO("value: '" << v << "'");
        CHECK(cast(v, "boolean") == "f");
    }
    for (const char* v : {"", " ", "2", "-1", "10", "01", "o", "truth", "yess", "nope", "offf", "t rue", "null"}) {
        INFO("value: '" << v << "'");
        CHECK(cast(v, "boolean") == refused);
    }
}

TEST_CASE("cast_text: dates, with leap years and month lengths", "[rules]") {
    SECTION("leap years") {
        CHECK(cast("2024-02-29", "date") == "2024-02-29");
        CHECK(cast("2000-02-29", "date") == "2000-02-29");  // divisible by 400
        CHECK(cast("1600-02-29", "date") == "1600-02-29");
        CHECK(cast("2023-02-29", "date") == refused);
        CHECK(cast("1900-02-29", "date") == refused);  // divisible by 100, not 400
        CHECK(cast("2100-02-29", "date") == refused);
        CHECK(cast("2023-02-28", "date") == "2023-02-28");
        CHECK(cast("2024-02-30", "date") == refused);
    }
    SECTION("month lengths") {
        for (const char* m : {"01", "03", "05", "07", "08", "10", "12"}) {
            INFO("month " << m);
            CHECK(cast(std::string("2024-") + m + "-31", "date") != refused);
            CHECK(cast(std::string("2024-") + m + "-32", "date") == refused);
        }
        for (const char* m : {"04", "06", "09", "11"}) {
            INFO("month " << m);
            CHECK(cast(std::string("2024-") + m + "-30", "date") != refused);
            CHECK(cast(std::string("2024-") + m + "-31", "date") == refused);
        }
        CHECK(cast("2024-13-01", "date") == refused);
        CHECK(cast("2024-00-10", "date") == refused);
        CHECK(cast("2024-01-00", "date") == refused);
        CHECK(cast("2024-99-99", "date") == refused);
    }
    SECTION("spaces around are trimmed") { CHECK(cast(" 1815-12-10 ", "date") == "1815-12-10"); }
    SECTION("junk") {
        for (const char* v : {"", " ", "2024-05", "not a date", "2024-05-06x", "2024-O5-06", "2024-05-0", "12024-05-06x",
                              "2024-05-06-", "abcd-ef-gh"}) {
            INFO("value: '" << v << "'");
            CHECK(cast(v, "date") == refused);
        }
    }
}

TEST_CASE("cast_text: timestamp and timestamptz", "[rules]") {
    for (const char* type : {"timestamp", "timestamptz"}) {
        INFO("type: " << type);
        {  // date and time, T or space, seconds optional
            CHECK(cast("2024-05-06 12:34", type) == "2024-05-06 12:34");
            CHECK(cast("2024-05-06 12:34:56", type) == "2024-05-06 12:34:56");
            CHECK(cast("2024-05-06T12:34:56", type) == "2024-05-06 12:34:56");
            CHECK(cast("2024-05-06t12:34:56", type) == "2024-05-06 12:34:56");
            CHECK(cast(" 2024-05-06T00:00:00 ", type) == "2024-05-06 00:00:00");
            CHECK(cast("2024-05-06 23:59:59", type) == "2024-05-06 23:59:59");
            CHECK(cast("2024-12-31 23:59:60", type) == "2024-12-31 23:59:60");  // a leap second, as PostgreSQL takes it
            CHECK(cast("2024-02-29 00:00", type) != refused);
        }
        {  // fractions of up to 6 digits
            CHECK(cast("2024-05-06 12:34:56.1", type) == "2024-05-06 12:34:56.1");
            CHECK(cast("2024-05-06 12:34:56.123456", type) == "2024-05-06 12:34:56.123456");
            CHECK(cast("2024-05-06T12:34:56.000001", type) == "2024-05-06 12:34:56.000001");
            CHECK(cast("2024-05-06 12:34:56.1234567", type) == refused);
            CHECK(cast("2024-05-06 12:34:56.", type) == refused);
            CHECK(cast("2024-05-06 12:34.5", type) == refused);  // a fraction needs seconds
        }
        {  // invalid dates and times
            for (const char* v : {"2023-02-29 12:00", "2024-04-31 12:00", "2024-05-06 25:00", "2024-05-06 12:60",
                                  "2024-05-06 12:34:61", "2024-05-06 1:00", "2024-05-06 12:3", "2024-05-06X12:00",
                                  "2024-05-06 12", "2024-05-06  12:00", "2024-05-06 noon", "2024-05-06 12:34:5",
                                  "2024-05-06 ab:cd", "", "2024-05-06 12:34:56+", "2024-05-06 12:34:56++02"}) {
                INFO("value: '" << v << "'");
                CHECK(cast(v, type) == refused);
            }
        }
    }
    SECTION("timestamptz takes a zone: Z, +HH, -HH, +HH:MM, +HHMM") {
        CHECK(cast("2024-05-06 12:34:56Z", "timestamptz") == "2024-05-06 12:34:56Z");
        CHECK(cast("2024-05-06T12:34:56z", "timestamptz") == "2024-05-06 12:34:56z");
        CHECK(cast("2024-05-06 12:34:56+02", "timestamptz") == "2024-05-06 12:34:56+02");
        CHECK(cast("2024-05-06 12:34:56-05", "timestamptz") == "2024-05-06 12:34:56-05");
        CHECK(cast("2024-05-06 12:34:56+05:30", "timestamptz") == "2024-05-06 12:34:56+05:30");
        CHECK(cast("2024-05-06 12:34:56+0530", "timestamptz") == "2024-05-06 12:34:56+0530");
        CHECK(cast("2024-05-06T12:34:56.123456-03:30", "timestamptz") == "2024-05-06 12:34:56.123456-03:30");
        CHECK(cast("2024-05-06 12:34+01", "timestamptz") == "2024-05-06 12:34+01");
        for (const char* v : {"2024-05-06 12:34:56+2", "2024-05-06 12:34:56+05:3", "2024-05-06 12:34:56+05:300",
                              "2024-05-06 12:34:56ZZ", "2024-05-06 12:34:56 +02", "2024-05-06 12:34:56+ab"}) {
            INFO("value: '" << v << "'");
            CHECK(cast(v, "timestamptz") == refused);
        }
    }
    SECTION("timestamp (without time zone) refuses a zone") {
        for (const char* v : {"2024-05-06 12:34:56Z", "2024-05-06 12:34:56+02", "2024-05-06 12:34:56-05:30",
                              "2024-05-06T12:34:56.5+0100"}) {
            INFO("value: '" << v << "'");
            CHECK(cast(v, "timestamp") == refused);
        }
    }
}

TEST_CASE("cast_text: text takes anything as is", "[rules]") {
    for (const std::string& v : {std::string(""), std::string("  spaces kept  "), std::string("Zoë 日本"),
                                std::string("1e400"), std::string("line\nbreak"), std::string("nul\0inside", 10)}) {
        for (const char* type : {"text", "varchar", "string"}) {
            INFO("type: " << type);
            CHECK(cast(v, type) == v);
        }
    }
}

// Values the cast passes as valid that PostgreSQL refuses: the target's
// INSERT fails on them, when the rule should have nulled them or set the
// change aside. (Each one checked against PostgreSQL 15 with a ::type cast.)
TEST_CASE("cast_text: values PostgreSQL refuses for the type are refused", "[rules]") {
    SECTION("a sign followed by another sign") {
        CHECK(cast("+-5", "integer") == refused);  // PG: invalid input syntax for type integer: "+-5"
        CHECK(cast("+-5", "smallint") == refused);
        CHECK(cast("+-5", "bigint") == refused);
        CHECK(cast("+-1.5", "double") == refused);  // PG: invalid input syntax for type double precision
        CHECK(cast("+-1.5", "real") == refused);
        CHECK(cast("+-inf", "double") == refused);
    }
    SECTION("real out of range") {
        CHECK(cast("1e39", "real") == refused);  // PG: "1e39" is out of range for type real
        CHECK(cast("-1e39", "real") == refused);
        CHECK(cast("3.5e38", "real") == refused);
        CHECK(cast("1e-50", "real") == refused);
    }
    SECTION("year 0") {
        CHECK(cast("0000-01-01", "date") == refused);  // PG: date/time field value out of range
        CHECK(cast("0000-01-01 12:00", "timestamp") == refused);
        CHECK(cast("0000-01-01 12:00Z", "timestamptz") == refused);
    }
    SECTION("a zone displacement beyond 15:59") {
        CHECK(cast("2024-05-06 12:00+16", "timestamptz") == refused);  // PG: time zone displacement out of range
        CHECK(cast("2024-05-06 12:00+99", "timestamptz") == refused);
        CHECK(cast("2024-05-06 12:00+05:60", "timestamptz") == refused);
        CHECK(cast("2024-05-06 12:00+05:99", "timestamptz") == refused);
        CHECK(cast("2024-05-06 12:00+15:59", "timestamptz") != refused);
    }
}

// ============================================================================
// validate and table_matches
// ============================================================================

TEST_CASE("validate: a complete rule of each kind is valid", "[rules]") {
    CHECK(rules::validate(filter_rule("status <> 'test' and amount > 0")) == "");
    CHECK(rules::validate(mask_rule("email", "sha256")) == "");
    CHECK(rules::validate(mask_rule("email", "redact")) == "");
    CHECK(rules::validate(mask_rule("card", "keep_last:1")) == "");
    CHECK(rules::validate(mask_rule("card", "keep_last:4")) == "");
    CHECK(rules::validate(mask_rule("card", "keep_last:64")) == "");
    CHECK(rules::validate(drop_rule("doc")) == "");
    CHECK(rules::validate(cast_rule("age", "integer")) == "");
    CHECK(rules::validate(cast_rule("age", "INT", "null")) == "");
    CHECK(rules::validate(cast_rule("age", "bigint", "set_aside")) == "");
    CHECK(rules::validate(rename_rule("city", "town")) == "");
    CHECK(rules::validate(rename_table_rule("archive.people")) == "");
    CHECK(rules::validate(rename_rule("city", std::string(63, 'x'))) == "");
    CHECK(rules::validate(derive_rule("label", "name || ' ' || city")) == "");
    CHECK(rules::validate(derive_rule("total", "age * 2", "bigint")) == "");
}

TEST_CASE("validate: each kind's missing or wrong fields are named", "[rules]") {
    SECTION("the table") {
        auto r = mask_rule("email", "sha256", "");
        const auto e = rules::validate(r);
        CHECK(contains(e, "table"));
    }
    SECTION("filter") {
        CHECK(contains(rules::validate(filter_rule("")), "condition"));
        const auto e = rules::validate(filter_rule("amount > "));
        INFO(e);
        CHECK(e.starts_with("condition: "));
        CHECK(contains(e, "amount > "));  // describe() shows the text
        CHECK(contains(e, "^"));          // and a caret under the spot
    }
    SECTION("mask") {
        CHECK(contains(rules::validate(mask_rule("", "sha256")), "column"));
        for (const char* m : {"", "md5", "keep_last", "keep_last:", "keep_last:0", "keep_last:65",
                              "keep_last:-1", "keep_last:x", "keep_last:4 ", "keep_last:4.5", "keep_last_4"}) {
            INFO("method: '" << m << "'");
            const auto e = rules::validate(mask_rule("card", m));
            CHECK(contains(e, "sha256, redact or keep_last:N"));
            CHECK(contains(e, "'" + std::string(m) + "'"));
        }
    }
    SECTION("drop") { CHECK(contains(rules::validate(drop_rule("")), "column")); }
    SECTION("cast") {
        CHECK(contains(rules::validate(cast_rule("", "integer")), "column"));
        auto e = rules::validate(cast_rule("age", ""));
        CHECK(contains(e, "cast to"));
        CHECK(contains(e, "integer, bigint, smallint, numeric, double, real, text, boolean, date, timestamp or timestamptz"));
        e = rules::validate(cast_rule("age", "uuid"));
        CHECK(contains(e, "'uuid'"));
        e = rules::validate(cast_rule("age", "integer", "skip"));
        CHECK(contains(e, "on_fail"));
        CHECK(contains(e, "null or set_aside"));
        CHECK(contains(e, "'skip'"));
    }
    SECTION("rename") {
        CHECK(contains(rules::validate(rename_rule("city", "")), "(to)"));
        CHECK(contains(rules::validate(rename_table_rule("")), "(to)"));
        CHECK(contains(rules::validate(rename_rule("city", std::string(64, 'x'))), "63"));
    }
    SECTION("derive") {
        CHECK(contains(rules::validate(derive_rule("", "1 + 1")), "column"));
        CHECK(contains(rules::validate(derive_rule("label", "")), "expression"));
        const auto e = rules::validate(derive_rule("label", "upper(name"));
        INFO(e);
        CHECK(e.starts_with("expression: "));
        CHECK(contains(e, "upper(name"));
        const auto t = rules::validate(derive_rule("label", "upper(name)", "uuid"));
        CHECK(contains(t, "(to)"));
        CHECK(contains(t, "'uuid'"));
    }
    SECTION("an unknown kind") {
        for (const char* k : {"encrypt", "", "masks"}) {
            INFO("kind: '" << k << "'");
            auto r = make_rule(k);
            r.column = "x";
            const auto e = rules::validate(r);
            CHECK(contains(e, "unknown rule kind '" + std::string(k) + "'"));
            for (const char* kind : {"filter", "mask", "drop", "cast", "rename", "derive"}) CHECK(contains(e, kind));
        }
    }
}

TEST_CASE("table_matches: *, schema.*, schema.table and a bare name for public", "[rules]") {
    const auto people = people_table();
    const auto sales_people = people_table(1, 30000, "sales", "people");
    const auto sales_orders = people_table(1, 30001, "sales", "orders");
    CHECK(rules::table_matches("*", *people));
    CHECK(rules::table_matches("*", *sales_orders));
    CHECK(rules::table_matches("public.*", *people));
    CHECK_FALSE(rules::table_matches("public.*", *sales_people));
    CHECK(rules::table_matches("sales.*", *sales_orders));
    CHECK(rules::table_matches("sales.*", *sales_people));
    CHECK_FALSE(rules::table_matches("sales.*", *people));
    CHECK(rules::table_matches("public.people", *people));
    CHECK_FALSE(rules::table_matches("public.people", *sales_people));
    CHECK(rules::table_matches("people", *people));  // a bare name means public.name
    CHECK_FALSE(rules::table_matches("people", *sales_people));
    CHECK(rules::table_matches("sales.people", *sales_people));
    CHECK_FALSE(rules::table_matches("sales.people", *people));
    CHECK_FALSE(rules::table_matches("public.peopl", *people));
    CHECK_FALSE(rules::table_matches("public.people2", *people));
    CHECK_FALSE(rules::table_matches("publi.people", *people));
    CHECK_FALSE(rules::table_matches("orders", *sales_orders));
}

// ============================================================================
// rule_set
// ============================================================================

TEST_CASE("salted_sha256: HMAC-SHA256 of the value keyed by the salt, as 64 lowercase hex digits", "[rules]") {
    // RFC 4231, test case 2.
    CHECK(rules::salted_sha256("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(rules::salted_sha256("", "") == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    CHECK(rules::salted_sha256("pepper", "ada@example.com") ==
          "73c43507a0192e95887a051ea55e31d1744e34bf152ba65977f3e52fd1f683a5");
    CHECK(rules::salted_sha256("pepper", "a") != rules::salted_sha256("salt", "a"));
    CHECK(rules::salted_sha256("pepper", std::string_view("a\0b", 3)) != rules::salted_sha256("pepper", "a"));
}

TEST_CASE("rule_set: a filter applies to inserts, updates and snapshot rows; deletes and truncates pass", "[rules]") {
    const auto t = people_table();
    auto set = set_of({filter_rule("city = 'London'")});
    SECTION("insert") {
        auto keep = insert_of(t, ada(*t));
        CHECK(run(set, keep) == outcome::keep);
        auto drop = insert_of(t, ada(*t, {{"city", "Paris"}}));
        CHECK(run(set, drop) == outcome::filtered);
        auto null_city = insert_of(t, ada(*t, {{"city", std::nullopt}}));
        CHECK(run(set, null_city) == outcome::filtered);  // null is not true
    }
    SECTION("snapshot row (read)") {
        auto keep = make_change(t, change_op::read, std::nullopt, ada(*t));
        CHECK(run(set, keep) == outcome::keep);
        auto drop = make_change(t, change_op::read, std::nullopt, ada(*t, {{"city", "Paris"}}));
        CHECK(run(set, drop) == outcome::filtered);
    }
    SECTION("update: the new row decides") {
        auto keep = make_change(t, change_op::update, ada(*t, {{"city", "Paris"}}), ada(*t));
        CHECK(run(set, keep) == outcome::keep);
        auto drop = make_change(t, change_op::update, ada(*t), ada(*t, {{"city", "Paris"}}));
        CHECK(run(set, drop) == outcome::filtered);
    }
    SECTION("delete passes whatever the row") {
        auto full = make_change(t, change_op::erase, ada(*t, {{"city", "Paris"}}), {});
        CHECK(run(set, full) == outcome::keep);
        auto key = make_change(t, change_op::erase, key_only(*t, "1"), {});
        CHECK(run(set, key) == outcome::keep);
        CHECK(before(key, "id") == "1");
    }
    SECTION("truncate passes") {
        auto tr = make_change(t, change_op::truncate, std::nullopt, {});
        CHECK(run(set, tr) == outcome::keep);
        CHECK(tr.after.empty());
        CHECK_FALSE(tr.before);
    }
    SECTION("every filter must pass") {
        auto two = set_of({filter_rule("city = 'London'"), filter_rule("name like 'A%'")});
        auto keep = insert_of(t, ada(*t));
        CHECK(run(two, keep) == outcome::keep);
        auto drop = insert_of(t, ada(*t, {{"name", "Bob"}}));
        CHECK(run(two, drop) == outcome::filtered);
    }
    SECTION("a kept row's values are untouched") {
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(c.after == ada(*t));
        CHECK(column_names(*c.table) == column_names(*t));
    }
}

TEST_CASE("rule_set: mask sha256 hashes with the salt; equal values stay equal", "[rules]") {
    const auto t = people_table();
    auto set = set_of({mask_rule("email", "sha256")});
    auto c = insert_of(t, ada(*t));
    REQUIRE(run(set, c) == outcome::keep);
    const auto hashed = after(c, "email");
    CHECK(hashed.size() == 64);
    CHECK(is_lower_hex(hashed));
    CHECK(hashed == rules::salted_sha256(salt, "ada@example.com"));
    CHECK(after(c, "name") == "Ada Lovelace");  // other columns as they were

    SECTION("equal inputs give equal hashes, across changes") {
        auto d = insert_of(t, ada(*t, {{"id", "2"}}));
        REQUIRE(run(set, d) == outcome::keep);
        CHECK(after(d, "email") == hashed);
        auto e = insert_of(t, ada(*t, {{"email", "bob@example.com"}}));
        REQUIRE(run(set, e) == outcome::keep);
        CHECK(after(e, "email") != hashed);
    }
    SECTION("another salt gives another hash") {
        auto other = set_of({mask_rule("email", "sha256")}, 1, "another salt");
        auto d = insert_of(t, ada(*t));
        REQUIRE(run(other, d) == outcome::keep);
        CHECK(after(d, "email") == rules::salted_sha256("another salt", "ada@example.com"));
        CHECK(after(d, "email") != hashed);
    }
    SECTION("an update's old image is masked the same way") {
        auto u = make_change(t, change_op::update, ada(*t), ada(*t, {{"city", "Paris"}}));
        REQUIRE(run(set, u) == outcome::keep);
        CHECK(before(u, "email") == hashed);
        CHECK(after(u, "email") == hashed);
    }
    SECTION("null and unchanged values stay so") {
        auto n = insert_of(t, ada(*t, {{"email", std::nullopt}}));
        REQUIRE(run(set, n) == outcome::keep);
        CHECK(after(n, "email") == "<null>");
        auto u = make_change(t, change_op::update, key_only(*t, "1"), ada(*t, {{"email", "?"}}));
        REQUIRE(run(set, u) == outcome::keep);
        CHECK(after(u, "email") == "<unchanged>");
        CHECK(before(u, "email") == "<unchanged>");
    }
    SECTION("a masked key is hashed and stays the key, as text") {
        auto k = set_of({mask_rule("id", "sha256")});
        auto d = make_change(t, change_op::erase, key_only(*t, "1"), {});
        REQUIRE(run(k, d) == outcome::keep);
        CHECK(before(d, "id") == rules::salted_sha256(salt, "1"));
        CHECK(column(*d.table, "id").key);
        CHECK(column(*d.table, "id").type_oid == oid_text);
    }
}

TEST_CASE("rule_set: mask redact", "[rules]") {
    const auto t = people_table();
    auto set = set_of({mask_rule("name", "redact")});
    auto c = insert_of(t, ada(*t));
    REQUIRE(run(set, c) == outcome::keep);
    CHECK(after(c, "name") == "[redacted]");
    auto empty = insert_of(t, ada(*t, {{"name", ""}}));
    REQUIRE(run(set, empty) == outcome::keep);
    CHECK(after(empty, "name") == "[redacted]");
    auto n = insert_of(t, ada(*t, {{"name", std::nullopt}}));
    REQUIRE(run(set, n) == outcome::keep);
    CHECK(after(n, "name") == "<null>");
}

TEST_CASE("rule_set: mask keep_last:N counts UTF-8 characters; a short value is all stars", "[rules]") {
    const auto t = people_table();
    auto masked = [&](const char* method, std::string v) {
        auto set = set_of({mask_rule("card", method)});
        auto c = insert_of(t, ada(*t, {{"card", v}}));
        REQUIRE(run(set, c) == outcome::keep);
        return after(c, "card");
    };
    CHECK(masked("keep_last:4", "4111111111111111") == "************1111");
    CHECK(masked("keep_last:1", "secret") == "*****t");
    CHECK(masked("keep_last:3", "Zoë Ångström") == "*********röm");  // 12 characters, 15 bytes
    CHECK(masked("keep_last:2", "Ångström") == "******öm");
    CHECK(masked("keep_last:2", "日本語テキスト") == "*****スト");
    CHECK(masked("keep_last:1", "a😀") == "*😀");  // a 4-byte character kept whole
    SECTION("a value no longer than N shows nothing: one star per character") {
        CHECK(masked("keep_last:4", "abc") == "***");
        CHECK(masked("keep_last:4", "abcd") == "****");
        CHECK(masked("keep_last:4", "åäö") == "***");
        CHECK(masked("keep_last:4", "日本語テ") == "****");
        CHECK(masked("keep_last:4", "") == "");
        CHECK(masked("keep_last:64", "4111111111111111") == "****************");
    }
}

TEST_CASE("rule_set: drop leaves a column out; a key column stays, with a warning", "[rules]") {
    const auto t = people_table();
    SECTION("a non-key column") {
        auto set = set_of({drop_rule("doc")});
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(column_names(*c.table) ==
              std::vector<std::string>{"id", "name", "email", "card", "age", "born", "score", "city"});
        REQUIRE(c.after.size() == 8);
        CHECK(after(c, "city") == "London");  // the columns after it keep their values
        CHECK(set.for_table(t).warnings().empty());
        auto u = make_change(t, change_op::update, ada(*t), ada(*t, {{"doc", "new"}}));
        REQUIRE(run(set, u) == outcome::keep);
        CHECK(u.before->size() == 8);
        CHECK(u.after.size() == 8);
    }
    SECTION("a key column is kept, with a warning") {
        auto r = drop_rule("id");
        auto set = set_of({r});
        const auto& tr = set.for_table(t);
        REQUIRE(tr.warnings().size() == 1);
        const auto& w = tr.warnings()[0];
        INFO(w);
        CHECK(contains(w, "rule " + std::to_string(r.id) + " (drop) on public.people"));
        CHECK(contains(w, "id"));
        CHECK(contains(w, "key"));
        CHECK(tr.identity());
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(after(c, "id") == "1");
    }
}

TEST_CASE("rule_set: cast with on_fail null makes a value that is not of the type null", "[rules]") {
    const auto t = people_table();
    for (const char* on_fail : {"", "null"}) {
        INFO("on_fail: '" << on_fail << "'");
        auto set = set_of({cast_rule("age", "integer", on_fail)});
        auto ok = insert_of(t, ada(*t, {{"age", " 036 "}}));
        REQUIRE(run(set, ok) == outcome::keep);
        CHECK(after(ok, "age") == "36");
        auto bad = insert_of(t, ada(*t, {{"age", "thirty-six"}}));
        REQUIRE(run(set, bad) == outcome::keep);
        CHECK(after(bad, "age") == "<null>");
        CHECK(after(bad, "name") == "Ada Lovelace");
        auto u = make_change(t, change_op::update, ada(*t, {{"age", "x"}}), ada(*t, {{"age", "37"}}));
        REQUIRE(run(set, u) == outcome::keep);
        CHECK(after(u, "age") == "37");
    }
}

TEST_CASE("rule_set: cast with on_fail set_aside rejects the change, saying which column and type", "[rules]") {
    const auto t = people_table();
    auto set = set_of({cast_rule("age", "integer", "set_aside"), mask_rule("email", "sha256"),
                       mask_rule("card", "keep_last:4"), rename_rule("city", "town")});
    SECTION("a valid value passes, converted") {
        auto c = insert_of(t, ada(*t, {{"age", "+36"}}));
        CHECK(run(set, c) == outcome::keep);
        CHECK(after(c, "age") == "36");
    }
    SECTION("an invalid value rejects the change") {
        auto c = insert_of(t, ada(*t, {{"age", "thirty-six"}}));
        std::string why;
        REQUIRE(run(set, c, &why) == outcome::rejected);
        INFO("why: " << why);
        CHECK(contains(why, "age"));
        CHECK(contains(why, "integer"));
        CHECK(contains(why, "thirty-six"));
        // The change as the target would have had it: the other masks applied,
        // the failed value as it came (nothing raw from a masked column).
        CHECK(c.table == set.for_table(t).target());
        CHECK(after(c, "age") == "thirty-six");
        CHECK(after(c, "email") == rules::salted_sha256(salt, "ada@example.com"));
        CHECK(after(c, "card") == "************1111");
        CHECK(after(c, "town") == "London");
        for (const auto& v : c.after) CHECK(v.data != "ada@example.com");
    }
    SECTION("why names the column as the target has it") {
        auto renamed = set_of({cast_rule("age", "smallint", "set_aside"), rename_rule("age", "years")});
        auto c = insert_of(t, ada(*t, {{"age", "99999"}}));
        std::string why;
        REQUIRE(run(renamed, c, &why) == outcome::rejected);
        INFO("why: " << why);
        CHECK(contains(why, "years"));
        CHECK(contains(why, "smallint"));
        CHECK(contains(why, "99999"));
    }
    SECTION("a long value is cut in why") {
        auto c = insert_of(t, ada(*t, {{"age", std::string(5000, '9')}}));
        std::string why;
        REQUIRE(run(set, c, &why) == outcome::rejected);
        CHECK(why.size() < 300);
    }
    SECTION("null and unchanged values are not failures") {
        auto n = insert_of(t, ada(*t, {{"age", std::nullopt}}));
        CHECK(run(set, n) == outcome::keep);
        CHECK(after(n, "age") == "<null>");
        auto u = make_change(t, change_op::update, key_only(*t, "1"), ada(*t, {{"age", "?"}}));
        CHECK(run(set, u) == outcome::keep);
        CHECK(after(u, "age") == "<unchanged>");
    }
    SECTION("deletes and truncates are not rejected") {
        auto d = make_change(t, change_op::erase, key_only(*t, "1"), {});
        CHECK(run(set, d) == outcome::keep);
        auto tr = make_change(t, change_op::truncate, std::nullopt, {});
        CHECK(run(set, tr) == outcome::keep);
    }
    SECTION("a date that does not exist sets the change aside") {
        auto two = set_of({cast_rule("age", "integer", "set_aside"), cast_rule("born", "date", "set_aside")});
        auto c = insert_of(t, ada(*t, {{"born", "1815-02-30"}}));
        std::string why;
        REQUIRE(run(two, c, &why) == outcome::rejected);
        CHECK(contains(why, "born"));
        CHECK(contains(why, "date"));
    }
}

TEST_CASE("rule_set: cast converts each type's values to the target's text form", "[rules]") {
    const auto t = people_table();
    auto set = set_of({cast_rule("age", "bigint"), cast_rule("born", "timestamptz"), cast_rule("score", "numeric"),
                       cast_rule("doc", "boolean"), cast_rule("city", "text")});
    auto c = insert_of(t, ada(*t, {{"age", "+36"}, {"born", "1815-12-10T08:00:00Z"}, {"score", " 9.5 "}, {"doc", "Yes"},
                                   {"city", " London "}}));
    REQUIRE(run(set, c) == outcome::keep);
    CHECK(after(c, "age") == "36");
    CHECK(after(c, "born") == "1815-12-10 08:00:00Z");
    CHECK(after(c, "score") == "9.5");
    CHECK(after(c, "doc") == "t");
    CHECK(after(c, "city") == " London ");
}

TEST_CASE("rule_set: rename a column or the table", "[rules]") {
    const auto t = people_table();
    SECTION("a column keeps its place, type and values") {
        auto set = set_of({rename_rule("city", "town")});
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(column_names(*c.table) ==
              std::vector<std::string>{"id", "name", "email", "card", "age", "born", "score", "doc", "town"});
        CHECK(after(c, "town") == "London");
        CHECK(column(*c.table, "town").type_oid == oid_text);
        CHECK(c.table->qualified() == "public.people");
    }
    SECTION("a key column stays the key") {
        auto set = set_of({rename_rule("id", "person_id")});
        const auto& target = *set.for_table(t).target();
        CHECK(column(target, "person_id").key);
        CHECK(column(target, "person_id").type_oid == oid_int4);
    }
    SECTION("the table, by name only: the schema stays") {
        auto set = set_of({rename_table_rule("persons")});
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(c.table->schema == "public");
        CHECK(c.table->name == "persons");
        CHECK(column_names(*c.table) == column_names(*t));
        CHECK(c.after == ada(*t));
    }
    SECTION("the table, by schema.name") {
        auto set = set_of({rename_table_rule("archive.people_copy")});
        const auto& target = *set.for_table(t).target();
        CHECK(target.schema == "archive");
        CHECK(target.name == "people_copy");
        CHECK(target.relation_id == t->relation_id);
    }
    SECTION("other rules still name the source table and columns") {
        auto set = set_of({rename_table_rule("archive.persons"), rename_rule("email", "mail"),
                           mask_rule("email", "redact", "public.people"), filter_rule("city = 'London'", "people")});
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(c.table->qualified() == "archive.persons");
        CHECK(after(c, "mail") == "[redacted]");
        CHECK(set.for_table(t).warnings().empty());
    }
    SECTION("a filter on the new column name does not bind") {
        auto set = set_of({rename_rule("city", "town"), filter_rule("town = 'London'")});
        const auto& tr = set.for_table(t);
        REQUIRE(tr.warnings().size() == 1);
        CHECK(contains(tr.warnings()[0], "(filter)"));
        auto c = insert_of(t, ada(*t, {{"city", "Paris"}}));
        CHECK(run(set, c) == outcome::keep);  // the filter is not applied
    }
}

TEST_CASE("rule_set: derive appends a computed column, typed", "[rules]") {
    const auto t = people_table();
    SECTION("text by default") {
        auto set = set_of({derive_rule("label", "name || ' from ' || city")});
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        REQUIRE(c.table->columns.size() == t->columns.size() + 1);
        CHECK(c.table->columns.back().name == "label");
        CHECK(c.table->columns.back().type_oid == oid_text);
        CHECK(c.table->columns.back().type_name == "text");
        CHECK(c.table->columns.back().nullable);
        CHECK_FALSE(c.table->columns.back().key);
        REQUIRE(c.after.size() == c.table->columns.size());
        CHECK(after(c, "label") == "Ada Lovelace from London");
    }
    SECTION("a type casts the result") {
        auto set = set_of({derive_rule("next_age", "age + 1", "integer"), derive_rule("adult", "age >= 18", "boolean"),
                           derive_rule("name_len", "length(name)", "varchar")});
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(column_names(*c.table) == std::vector<std::string>{"id", "name", "email", "card", "age", "born", "score",
                                                                 "doc", "city", "next_age", "adult", "name_len"});
        CHECK(column(*c.table, "next_age").type_oid == oid_int4);
        CHECK(column(*c.table, "next_age").type_name == "integer");
        CHECK(column(*c.table, "adult").type_oid == oid_bool);
        CHECK(column(*c.table, "name_len").type_oid == oid_text);
        CHECK(after(c, "next_age") == "37");
        CHECK(after(c, "adult") == "t");
        CHECK(after(c, "name_len") == "12");
    }
    SECTION("a result that is not of the type, or null, gives null") {
        auto set = set_of({derive_rule("whole", "score", "integer"), derive_rule("ratio", "age / 0", "numeric"),
                           derive_rule("missing", "doc")});
        auto c = insert_of(t, ada(*t, {{"doc", std::nullopt}}));
        REQUIRE(run(set, c) == outcome::keep);  // never set aside
        CHECK(after(c, "whole") == "<null>");
        CHECK(after(c, "ratio") == "<null>");
        CHECK(after(c, "missing") == "<null>");
    }
    SECTION("an update's old image gets unchanged for a derived column") {
        auto set = set_of({derive_rule("label", "upper(city)")});
        auto u = make_change(t, change_op::update, ada(*t), ada(*t, {{"city", "Paris"}}));
        REQUIRE(run(set, u) == outcome::keep);
        CHECK(after(u, "label") == "PARIS");
        CHECK(before(u, "label") == "<unchanged>");
        CHECK(before(u, "city") == "London");
        auto d = make_change(t, change_op::erase, key_only(*t, "1"), {});
        REQUIRE(run(set, d) == outcome::keep);
        CHECK(d.after.empty());
        CHECK(before(d, "label") == "<unchanged>");
        CHECK(before(d, "id") == "1");
    }
    SECTION("a column that exists already, or an expression that does not bind: a warning, not applied") {
        auto exists = derive_rule("city", "upper(city)");
        auto unknown = derive_rule("label", "upper(town)");
        auto set = set_of({exists, unknown});
        const auto& tr = set.for_table(t);
        REQUIRE(tr.warnings().size() == 2);
        CHECK(contains(tr.warnings()[0], "rule " + std::to_string(exists.id) + " (derive)"));
        CHECK(contains(tr.warnings()[0], "city"));
        CHECK(contains(tr.warnings()[0], "exists already"));
        CHECK(contains(tr.warnings()[1], "rule " + std::to_string(unknown.id) + " (derive)"));
        CHECK(contains(tr.warnings()[1], "town"));
        CHECK(contains(tr.warnings()[1], "not applied"));
        CHECK(tr.identity());
        CHECK(tr.target() == t);
    }
}

TEST_CASE("rule_set: filters and derived values read the source row, before masks, casts and drops", "[rules]") {
    const auto t = people_table();
    SECTION("a filter sees the raw value of a masked, cast, renamed or dropped column") {
        auto set = set_of({mask_rule("name", "sha256"), cast_rule("age", "integer"), rename_rule("email", "mail"),
                           drop_rule("city"), filter_rule("name = 'Ada Lovelace'"), filter_rule("age = ' 36'"),
                           filter_rule("email like '%@example.com'"), filter_rule("city = 'London'")});
        auto c = insert_of(t, ada(*t, {{"age", " 36"}}));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(after(c, "name") == rules::salted_sha256(salt, "Ada Lovelace"));
        CHECK(after(c, "age") == "36");
        auto d = insert_of(t, ada(*t, {{"age", " 36"}, {"city", "Paris"}}));
        CHECK(run(set, d) == outcome::filtered);
    }
    SECTION("a derived value is computed from raw values, whatever the rules' order") {
        const std::vector<rules::rule> derives = {derive_rule("initials", "substring(name, 1, 3)"),
                                                  derive_rule("place", "upper(city)"),
                                                  derive_rule("raw_age", "age")};
        const std::vector<rules::rule> others = {mask_rule("name", "redact"), drop_rule("city"),
                                                 cast_rule("age", "integer")};
        std::vector<rules::rule> first = derives, last = others;
        first.insert(first.end(), others.begin(), others.end());
        last.insert(last.end(), derives.begin(), derives.end());
        for (auto* rs : {&first, &last}) {
            auto set = set_of(*rs);
            auto c = insert_of(t, ada(*t, {{"age", "thirty-six"}}));
            REQUIRE(run(set, c) == outcome::keep);
            CHECK(after(c, "name") == "[redacted]");
            CHECK_FALSE(column_at(*c.table, "city"));
            CHECK(after(c, "age") == "<null>");
            CHECK(after(c, "initials") == "Ada");
            CHECK(after(c, "place") == "LONDON");
            CHECK(after(c, "raw_age") == "thirty-six");
        }
    }
}

TEST_CASE("rule_set: the target schema", "[rules]") {
    const auto t = people_table();
    const std::vector<rules::rule> rs = {mask_rule("email", "sha256"), mask_rule("card", "keep_last:4"),
                                        cast_rule("age", "integer"),   cast_rule("born", "date"),
                                        cast_rule("score", "numeric"), cast_rule("card", "bigint"),
                                        drop_rule("doc"),              rename_rule("city", "town"),
                                        derive_rule("label", "name"),  derive_rule("age2", "age * 2", "bigint")};
    auto set = set_of(rs, 1);
    const auto& target = *set.for_table(t).target();
    CHECK(set.for_table(t).warnings().empty());
    CHECK_FALSE(set.for_table(t).identity());
    CHECK(column_names(target) ==
          std::vector<std::string>{"id", "name", "email", "card", "age", "born", "score", "town", "label", "age2"});
    SECTION("masked columns are text, even with a cast") {
        for (const char* n : {"email", "card"}) {
            INFO(n);
            CHECK(column(target, n).type_oid == oid_text);
            CHECK(column(target, n).type_name == "text");
            CHECK(column(target, n).type_mod == -1);
        }
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(after(c, "card") == "************1111");
    }
    SECTION("cast columns take the cast's type") {
        CHECK(column(target, "age").type_oid == oid_int4);
        CHECK(column(target, "age").type_name == "integer");
        CHECK(column(target, "born").type_oid == oid_date);
        CHECK(column(target, "born").type_name == "date");
        CHECK(column(target, "score").type_oid == oid_numeric);
        CHECK(column(target, "score").type_mod == -1);
    }
    SECTION("other columns keep their definition") {
        CHECK(column(target, "id").key);
        CHECK(column(target, "id").type_oid == oid_int4);
        CHECK_FALSE(column(target, "id").nullable);
        CHECK(column(target, "name").type_name == "text");
        CHECK(column(target, "town").type_oid == oid_text);
        CHECK(target.relation_id == t->relation_id);
        CHECK(target.qualified() == "public.people");
        CHECK(target.replica_identity == t->replica_identity);
    }
    SECTION("derived columns are appended, in rule order, with their types") {
        CHECK(column(target, "label").type_oid == oid_text);
        CHECK(column(target, "age2").type_oid == oid_int8);
        CHECK(column(target, "age2").type_name == "bigint");
    }
    SECTION("the source schema is left as it was") {
        const auto fresh = people_table();
        CHECK(column_names(*t) == column_names(*fresh));
        CHECK(column(*t, "email").type_oid == 1043);
        CHECK(column(*t, "age").type_oid == oid_text);
    }
    SECTION("the version differs from the source's, per rule generation and per source version") {
        CHECK(target.version != t->version);
        auto gen2 = set_of(rs, 2);
        const auto v_gen2 = gen2.for_table(t).target()->version;
        CHECK(v_gen2 != target.version);
        auto again = set_of(rs, 1);
        CHECK(again.for_table(t).target()->version == target.version);  // deterministic
        const auto t4 = people_table(4);
        const auto v4 = set.for_table(t4).target()->version;
        CHECK(v4 != target.version);
        CHECK(v4 != v_gen2);
        CHECK(gen2.for_table(t4).target()->version != v4);
    }
}

TEST_CASE("rule_set: a rule on an unknown column is skipped with a warning", "[rules]") {
    const auto t = people_table();
    SECTION("alone: the table passes untouched") {
        for (auto r : {mask_rule("nope", "sha256"), drop_rule("nope"), cast_rule("nope", "integer"),
                       rename_rule("nope", "yes"), filter_rule("nope = 1")}) {
            INFO("kind: " << r.kind);
            auto set = set_of({r});
            const auto& tr = set.for_table(t);
            REQUIRE(tr.warnings().size() == 1);
            const auto& w = tr.warnings()[0];
            INFO(w);
            CHECK(contains(w, "rule " + std::to_string(r.id) + " (" + r.kind + ") on public.people"));
            CHECK(contains(w, "nope"));
            CHECK(contains(w, "not applied"));
            CHECK(tr.identity());
            CHECK(tr.target() == t);
            auto c = insert_of(t, ada(*t));
            CHECK(run(set, c) == outcome::keep);
            CHECK(c.table == t);
            CHECK(c.after == ada(*t));
        }
    }
    SECTION("the other rules still apply") {
        auto set = set_of({mask_rule("nope", "sha256"), mask_rule("name", "redact")});
        const auto& tr = set.for_table(t);
        CHECK(tr.warnings().size() == 1);
        CHECK_FALSE(tr.identity());
        auto c = insert_of(t, ada(*t));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(after(c, "name") == "[redacted]");
        CHECK(c.table->columns.size() == t->columns.size());
    }
}

TEST_CASE("rule_set: rules for another table have no effect", "[rules]") {
    const auto t = people_table();
    auto set = set_of({mask_rule("email", "sha256", "public.orders"), filter_rule("city = 'Paris'", "sales.*"),
                      mask_rule("name", "redact", "sales.people"), filter_rule("nope = 1", "orders")});
    const auto& tr = set.for_table(t);
    CHECK(tr.identity());
    CHECK(tr.warnings().empty());  // not even compiled for this table
    CHECK(tr.target().get() == t.get());
    auto c = insert_of(t, ada(*t));
    REQUIRE(run(set, c) == outcome::keep);
    CHECK(c.table.get() == t.get());
    CHECK(c.after == ada(*t));
    SECTION("while applying to the table they name") {
        const auto sales = people_table(1, 30000, "sales", "people");
        auto s = insert_of(sales, ada(*sales));
        CHECK(run(set, s) == outcome::filtered);  // city = 'Paris'
        auto p = insert_of(sales, ada(*sales, {{"city", "Paris"}}));
        REQUIRE(run(set, p) == outcome::keep);
        CHECK(after(p, "name") == "[redacted]");
        CHECK(after(p, "email") == "ada@example.com");
    }
}

TEST_CASE("rule_set: rules are compiled once per (relation, version)", "[rules]") {
    const auto t = people_table(3);
    auto set = set_of({mask_rule("email", "sha256")});
    CHECK_FALSE(set.compiled(t));
    const auto* first = &set.for_table(t);
    CHECK(set.compiled(t));
    CHECK(&set.for_table(t) == first);
    CHECK(set.for_table(t).target() == first->target());
    SECTION("another object for the same relation and version is the same compilation") {
        const auto same = people_table(3);
        CHECK(set.compiled(same));
        CHECK(&set.for_table(same) == first);
    }
    SECTION("a new version is compiled on its own") {
        const auto t4 = people_table(4);
        CHECK_FALSE(set.compiled(t4));
        const auto* second = &set.for_table(t4);
        CHECK(second != first);
        CHECK(set.compiled(t4));
        CHECK(&set.for_table(t) == first);
    }
    SECTION("another relation is compiled on its own") {
        const auto other = people_table(3, 20001, "public", "people2");
        CHECK_FALSE(set.compiled(other));
        CHECK(&set.for_table(other) != first);
    }
    SECTION("apply compiles on first use and reuses it") {
        const auto t5 = people_table(5);
        auto c = insert_of(t5, ada(*t5));
        CHECK_FALSE(set.compiled(t5));
        REQUIRE(run(set, c) == outcome::keep);
        CHECK(set.compiled(t5));
        const auto target = c.table;
        auto d = insert_of(t5, ada(*t5));
        REQUIRE(run(set, d) == outcome::keep);
        CHECK(d.table == target);  // the same target schema object
    }
}

TEST_CASE("rule_set: no rules, or a change without a table, pass untouched", "[rules]") {
    const auto t = people_table();
    rules::rule_set none;
    CHECK(none.empty());
    auto c = insert_of(t, ada(*t));
    CHECK(run(none, c) == outcome::keep);
    CHECK(c.table == t);
    CHECK(c.after == ada(*t));
    CHECK_FALSE(none.compiled(t));
    auto set = set_of({mask_rule("name", "redact")});
    CHECK_FALSE(set.empty());
    CHECK(set.rules().size() == 1);
    change_event bare;
    bare.after = ada(*t);
    CHECK(run(set, bare) == outcome::keep);
    CHECK(bare.after == ada(*t));
    CHECK_FALSE(bare.table);
}

TEST_CASE("keyed_hmac gives the same hex as the one-shot salted_sha256, value after value", "[rules]") {
    using datavor::engines::rules::keyed_hmac;
    using datavor::engines::rules::salted_sha256;
    const std::string salt = "0123456789abcdef0123456789abcdef";
    keyed_hmac h(salt);
    for (const std::string& v : std::vector<std::string>{"ada@example.org", "", "ada@example.org", std::string(1000, 'x'), "héllo"})
        CHECK(h.hex(v) == salted_sha256(salt, v));
    // RFC 4231 test case 2: key "Jefe".
    keyed_hmac jefe("Jefe");
    CHECK(jefe.hex("what do ya want for nothing?") == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    keyed_hmac other("another salt");
    CHECK(other.hex("ada@example.org") != h.hex("ada@example.org"));
}
