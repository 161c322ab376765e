// The rules engine's expression language (engines/rules/expr.hpp): parsing,
// binding to a table version, evaluation against changes, to_text. No server
// needed: tables and changes are built by hand, values in PostgreSQL's text
// form as the sources deliver them.
#include "engines/rules/expr.hpp"

#include "tests/engines/rules_test_support.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

using namespace datavor;
using namespace datavor::connectors;
namespace rules = datavor::engines::rules;
using kind = rules::eval_value::kind;

namespace {

// PostgreSQL type OIDs.
constexpr std::uint32_t oid_bool = 16, oid_int8 = 20, oid_int4 = 23, oid_text = 25, oid_float8 = 701,
                        oid_varchar = 1043, oid_numeric = 1700;

std::shared_ptr<const table_schema> items_table(std::uint64_t version = 3) {
    auto t = std::make_shared<table_schema>();
    t->relation_id = 16384;
    t->schema = "public";
    t->name = "items";
    t->version = version;
    auto col = [&](std::string name, std::uint32_t oid, std::string type_name, bool key = false) {
        column_def c;
        c.name = std::move(name);
        c.type_oid = oid;
        c.type_name = std::move(type_name);
        c.key = key;
        c.nullable = !key;
        t->columns.push_back(std::move(c));
    };
    col("id", oid_int4, "integer", true);
    col("stock", oid_int4, "integer");
    col("qty", oid_int8, "bigint");
    col("price", oid_numeric, "numeric(12,2)");
    col("weight", oid_float8, "double precision");
    col("name", oid_text, "text");
    col("code", oid_varchar, "character varying(20)");
    col("active", oid_bool, "boolean");
    col("doc", oid_text, "text");  // a TOASTed value in some changes
    col("Order Total", oid_numeric, "numeric");
    col("MixedCase", oid_int4, "integer");
    return t;
}

using test::cell;
using test::make_row;
using test::key_only;
using test::make_change;

// An evaluation result with its string copied out (eval_value's view only
// lives until the next evaluate()).
struct result {
    kind k = kind::null;
    bool b = false;
    std::int64_t i = 0;
    double d = 0;
    std::string s;

    static result of(const rules::eval_value& v) { return {v.k, v.b, v.i, v.d, std::string(v.s)}; }
    bool operator==(const result& o) const {
        if (k != o.k) return false;
        switch (k) {
            case kind::null: return true;
            case kind::boolean: return b == o.b;
            case kind::integer: return i == o.i;
            case kind::real: return d == o.d || (std::isnan(d) && std::isnan(o.d));
            case kind::text: return s == o.s;
        }
        return false;
    }
};
result Null() { return {}; }
result B(bool b) { return {kind::boolean, b}; }
result I(std::int64_t i) { return {kind::integer, false, i}; }
result R(double d) { return {kind::real, false, 0, d}; }
result S(std::string s) { return {kind::text, false, 0, 0, std::move(s)}; }

std::string show(const result& r) {
    std::ostringstream o;
    o.precision(17);
    switch (r.k) {
        case kind::null: return "null";
        case kind::boolean: return r.b ? "boolean true" : "boolean false";
        case kind::integer: o << "integer " << r.i; return o.str();
        case kind::real: o << "real " << r.d; return o.str();
        case kind::text: return "text '" + r.s + "'";
    }
    return "?";
}

rules::expr_error parse_error(std::string_view source) {
    auto p = rules::expression::parse(source);
    INFO("source: " << source);
    REQUIRE(std::holds_alternative<rules::expr_error>(p));
    return std::get<rules::expr_error>(p);
}

rules::expression parse_ok(std::string_view source) {
    auto p = rules::expression::parse(source);
    if (auto* e = std::get_if<rules::expr_error>(&p)) FAIL("parse failed: " << e->describe(source));
    return std::move(std::get<rules::expression>(p));
}

rules::program compile(std::string_view source, const std::shared_ptr<const table_schema>& t = items_table()) {
    auto e = parse_ok(source);
    auto p = rules::program::bind(e, *t);
    if (auto* err = std::get_if<rules::expr_error>(&p)) FAIL("bind failed: " << err->describe(source));
    return std::move(std::get<rules::program>(p));
}

// The error from parse or, when it parses, from bind.
rules::expr_error compile_error(std::string_view source, const std::shared_ptr<const table_schema>& t = items_table()) {
    INFO("source: " << source);
    auto p = rules::expression::parse(source);
    if (auto* e = std::get_if<rules::expr_error>(&p)) return *e;
    auto b = rules::program::bind(std::get<rules::expression>(p), *t);
    REQUIRE(std::holds_alternative<rules::expr_error>(b));
    return std::get<rules::expr_error>(b);
}

// The row most tests read: stock 5, qty 100, price 9.50, etc.
change_event sample_insert() {
    auto t = items_table();
    return make_change(t, change_op::insert, std::nullopt,
                       make_row(*t, {{"id", "1"},
                                     {"stock", "5"},
                                     {"qty", "100"},
                                     {"price", "9.50"},
                                     {"weight", "2.5"},
                                     {"name", "Widget"},
                                     {"code", "AB-12"},
                                     {"active", "t"},
                                     {"doc", "long text"},
                                     {"Order Total", "120.25"},
                                     {"MixedCase", "7"}}));
}

result eval(std::string_view source, const change_event& c = sample_insert()) {
    auto p = compile(source, c.table);
    rules::evaluator ev;
    return result::of(p.evaluate(c, ev));
}

bool passes(std::string_view source, const change_event& c = sample_insert()) {
    auto p = compile(source, c.table);
    rules::evaluator ev;
    return p.evaluate(c, ev).truthy();
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<result> {
    static std::string convert(const result& r) { return show(r); }
};
}  // namespace Catch

// ---------------------------------------------------------------- parsing

TEST_CASE("expression: and binds tighter than or, not tighter than and, comparisons tighter than not", "[rules]") {
    CHECK(eval("true or false and false") == B(true));    // true or (false and false)
    CHECK(eval("false and false or true") == B(true));    // (false and false) or true
    CHECK(eval("not false and false") == B(false));       // (not false) and false
    CHECK(eval("not true or true") == B(true));           // (not true) or true
    CHECK(eval("not not true") == B(true));
    CHECK(eval("not 1 = 2") == B(true));                  // not (1 = 2)
    CHECK(eval("not stock < 3") == B(true));              // not (5 < 3)
    CHECK(eval("stock > 1 and stock < 10 or false") == B(true));
    CHECK(eval("(true or false) and false") == B(false));
}

TEST_CASE("expression: arithmetic precedence and left associativity", "[rules]") {
    CHECK(eval("1 + 2 * 3") == I(7));
    CHECK(eval("(1 + 2) * 3") == I(9));
    CHECK(eval("10 - 2 - 3") == I(5));
    CHECK(eval("100 / 10 / 5") == I(2));
    CHECK(eval("7 % 4 * 2") == I(6));
    CHECK(eval("2 + 7 % 4") == I(5));
    CHECK(eval("-2 * 3") == I(-6));
    CHECK(eval("- -2") == I(2));
    CHECK(eval("-(2 + 3)") == I(-5));
    CHECK(eval("1 + 1 = 2") == B(true));                  // sum binds tighter than comparison
    CHECK(eval("stock * 2 + 1 > 10") == B(true));         // 11 > 10
    CHECK(eval("'a' || 'b' || 'c'") == S("abc"));
    CHECK(eval("'a' || 'b' = 'ab'") == B(true));          // || binds tighter than =
    CHECK(eval("name like 'W' || '%'") == B(true));       // the pattern is a sum
}

TEST_CASE("expression: keywords and function names are case-insensitive", "[rules]") {
    CHECK(eval("NOT FALSE AND TRUE") == B(true));
    CHECK(eval("name IS NOT NULL") == B(true));
    CHECK(eval("NULL Is Null") == B(true));
    CHECK(eval("name LIKE 'W%'") == B(true));
    CHECK(eval("LOWER(name)") == S("widget"));
    CHECK(eval("Upper(name)") == S("WIDGET"));
    CHECK(eval("stock IN (1, 5)") == B(true));
    CHECK(eval("OP = 'insert'") == B(true));
}

TEST_CASE("expression: literals", "[rules]") {
    CHECK(eval("'it''s'") == S("it's"));
    CHECK(eval("''''") == S("'"));
    CHECK(eval("''") == S(""));
    CHECK(eval("length('it''s')") == I(4));
    CHECK(eval("42") == I(42));
    CHECK(eval("0") == I(0));
    CHECK(eval("2.5") == R(2.5));
    CHECK(eval("9223372036854775807") == I(std::numeric_limits<std::int64_t>::max()));
    CHECK(eval("true") == B(true));
    CHECK(eval("false") == B(false));
    CHECK(eval("null") == Null());
    CHECK(eval("'text with \"double\" quotes'") == S("text with \"double\" quotes"));
}

TEST_CASE("expression: a number too large for 64 bits is a double", "[rules]") {
    CHECK(eval("9223372036854775808") == R(9223372036854775808.0));
    CHECK(eval("100000000000000000000") == R(1e20));
}

TEST_CASE("expression: quoted names keep case, spaces and keywords", "[rules]") {
    CHECK(eval("\"Order Total\" > 100") == B(true));
    CHECK(eval("\"MixedCase\"") == I(7));
    CHECK(eval("\"name\"") == S("Widget"));
    auto e = parse_ok("\"Order Total\" > 100 and \"MixedCase\" = 7 and stock > 0");
    CHECK(std::find(e.columns().begin(), e.columns().end(), "Order Total") != e.columns().end());
    CHECK(std::find(e.columns().begin(), e.columns().end(), "MixedCase") != e.columns().end());
    CHECK(std::find(e.columns().begin(), e.columns().end(), "stock") != e.columns().end());
}

TEST_CASE("expression: source() and columns() report the text and the columns referred to", "[rules]") {
    auto e = parse_ok("old.stock > new.stock and lower(name) like 'w%' and changed(price)");
    CHECK(e.source() == "old.stock > new.stock and lower(name) like 'w%' and changed(price)");
    for (const char* c : {"stock", "name", "price"}) {
        INFO(c);
        CHECK(std::find(e.columns().begin(), e.columns().end(), c) != e.columns().end());
    }
    for (const auto& c : e.columns()) {
        INFO(c);
        CHECK((c == "stock" || c == "name" || c == "price"));
    }
    CHECK(parse_ok("1 + 2 = 3 and op = 'insert'").columns().empty());
}

TEST_CASE("expression: like, not like, in, not in, is null, is not null", "[rules]") {
    CHECK(eval("'abc' like 'a%'") == B(true));
    CHECK(eval("'abc' like '%c'") == B(true));
    CHECK(eval("'abc' like '%b%'") == B(true));
    CHECK(eval("'abc' like 'a_c'") == B(true));
    CHECK(eval("'abc' like '_b'") == B(false));
    CHECK(eval("'abc' like 'abc'") == B(true));
    CHECK(eval("'abc' like 'ab'") == B(false));
    CHECK(eval("'abc' like '%'") == B(true));
    CHECK(eval("'' like '%'") == B(true));
    CHECK(eval("'' like '_'") == B(false));
    CHECK(eval("'abc' like '___'") == B(true));
    CHECK(eval("'abc' like '____'") == B(false));
    CHECK(eval("'a%c' like 'a%%c'") == B(true));
    CHECK(eval("'ABC' like 'abc'") == B(false));  // bytewise, case-sensitive
    CHECK(eval("'abc' not like 'a%'") == B(false));
    CHECK(eval("'abc' not like 'x%'") == B(true));
    CHECK(eval("code like 'AB-%'") == B(true));
    CHECK(eval("null like 'a%'") == Null());
    CHECK(eval("'a' like null") == Null());

    CHECK(eval("stock in (1, 5, 9)") == B(true));
    CHECK(eval("stock in (1, 2)") == B(false));
    CHECK(eval("stock in (stock)") == B(true));
    CHECK(eval("name in ('Gadget', 'Widget')") == B(true));
    CHECK(eval("stock not in (1, 2)") == B(true));
    CHECK(eval("stock not in (5)") == B(false));
    CHECK(eval("stock in (2 + 3)") == B(true));
    CHECK(eval("stock in (1, null)") == Null());      // SQL: no match and a null in the list
    CHECK(eval("stock in (5, null)") == B(true));
    CHECK(eval("stock not in (1, null)") == Null());
    CHECK(eval("null in (1, 2)") == Null());

    CHECK(eval("name is null") == B(false));
    CHECK(eval("name is not null") == B(true));
    CHECK(eval("null is null") == B(true));
    CHECK(eval("null is not null") == B(false));
    CHECK(eval("(1 = null) is null") == B(true));
}

TEST_CASE("expression: parse errors give the offset of the offending character", "[rules]") {
    SECTION("an expression that ends early points at the end") {
        auto e = parse_error("stock < ");
        CHECK(e.offset == 8);
        CHECK(!e.message.empty());
        CHECK(parse_error("stock <").offset == 7);
        CHECK(parse_error("").offset == 0);
        CHECK(parse_error("a and").offset == 5);
        CHECK(parse_error("not").offset == 3);
    }
    SECTION("an unterminated string points at its opening quote") {
        CHECK(parse_error("a = 'x").offset == 4);
        CHECK(parse_error("'").offset == 0);
        CHECK(parse_error("name = 'it''s").offset == 7);
    }
    SECTION("an unterminated quoted name points at its opening quote") {
        CHECK(parse_error("\"Order Total > 1").offset == 0);
    }
    SECTION("a missing closing parenthesis points at the end") {
        CHECK(parse_error("lower(a").offset == 7);
        CHECK(parse_error("(1 + 2").offset == 6);
        CHECK(parse_error("a in (1, 2").offset == 10);
        CHECK(parse_error("substring(a, 1").offset == 14);
    }
    SECTION("an unexpected token points at that token") {
        CHECK(parse_error("a ++ b").offset == 3);  // no unary plus
        CHECK(parse_error("a = = b").offset == 4);
        CHECK(parse_error("1 2").offset == 2);
        CHECK(parse_error("a b").offset == 2);
        CHECK(parse_error("(1 + 2))").offset == 7);
        CHECK(parse_error("1 < 2 < 3").offset == 6);  // comparisons do not chain
        CHECK(parse_error("a is 5").offset == 5);
        CHECK(parse_error("a in 5").offset == 5);
        CHECK(parse_error("a in ()").offset == 6);
        CHECK(parse_error("lower(a,)").offset == 8);
        CHECK(parse_error("old.").offset == 4);
        CHECK(parse_error("old.5").offset == 3);  // ".5" lexes as a number after the column old
        CHECK(parse_error("a = 1 ;").offset == 6);
        CHECK(parse_error("a # 1").offset == 2);
        CHECK(parse_error("a not 5").offset == 2);  // "not" is neither not like nor not in
    }
    SECTION("every error offset lies within the text or at its end") {
        for (std::string_view s : {"(", ")", "'", "\"", "a.", "1 +", "x in (", "lower(", "not not", "1..2", "a = 'x",
                                   "\x01", "\xff\xfe", "a ||| b", "old.\"", "new.x.y"}) {
            auto p = rules::expression::parse(s);
            if (auto* e = std::get_if<rules::expr_error>(&p)) {
                INFO("source: " << s);
                CHECK(e->offset <= s.size());
                CHECK(!e->message.empty());
            }
        }
    }
}

TEST_CASE("expression: describe() shows the message, the text and a caret under the spot", "[rules]") {
    for (std::string_view source : {"stock < ", "a = 'x", "lower(a", "a ++ b", "1 < 2 < 3"}) {
        INFO("source: " << source);
        auto e = parse_error(source);
        const auto d = e.describe(source);
        INFO("describe():\n" << d);
        CHECK(d.find(e.message) != std::string::npos);
        std::vector<std::string> lines;
        std::istringstream in(d);
        for (std::string l; std::getline(in, l);) lines.push_back(l);
        bool found = false;
        for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
            const auto at = lines[i].find(source);
            if (at == std::string::npos) continue;
            const auto& caret = lines[i + 1];
            const auto col = at + e.offset;
            found |= caret.size() > col && caret[col] == '^' &&
                     caret.find_first_not_of(' ') == col;  // only spaces before the caret
        }
        CHECK(found);
    }
}

// ---------------------------------------------------------------- binding

TEST_CASE("binding: an unknown column names the reference's offset and the table's columns", "[rules]") {
    const std::string source = "stock < 10 and colour = 'red'";
    auto e = parse_ok(source);
    const auto table = items_table();
    auto b = rules::program::bind(e, *table);
    REQUIRE(std::holds_alternative<rules::expr_error>(b));
    const auto& err = std::get<rules::expr_error>(b);
    CHECK(err.offset == 15);
    INFO(err.message);
    CHECK(err.message.find("colour") != std::string::npos);
    for (const auto& c : table->columns) CHECK(err.message.find(c.name) != std::string::npos);

    CHECK(compile_error("old.colour = 1").offset == 0);
    CHECK(compile_error("1 = new.colour").offset == 4);
    CHECK(compile_error("changed(colour)").offset == 8);
    CHECK(compile_error("lower(\"colour\")").offset == 6);
}

TEST_CASE("binding: a name spelled as the column wins; a case-insensitive match must be unique", "[rules]") {
    auto t = std::make_shared<table_schema>(*items_table());
    column_def upper_stock;
    upper_stock.name = "Stock";
    upper_stock.type_oid = oid_int4;
    t->columns.push_back(upper_stock);  // now both "stock" and "Stock"
    std::shared_ptr<const table_schema> ct = t;
    auto c = make_change(ct, change_op::insert, std::nullopt, make_row(*t, {{"stock", "1"}, {"Stock", "2"}, {"name", "n"}}));
    CHECK(eval("stock", c) == I(1));
    CHECK(eval("\"Stock\"", c) == I(2));
    CHECK(eval("Stock", c) == I(2));
    CHECK(compile_error("STOCK", ct).offset == 0);  // which one? neither
    CHECK(eval("NAME", c) == S("n"));               // a unique case-insensitive match binds
}

TEST_CASE("binding: a function with the wrong number of arguments or an unknown function is an error", "[rules]") {
    for (std::string_view s : {"lower()", "lower(name, name)", "upper()", "length(name, 1)", "substring(name)",
                               "substring(name, 1, 2, 3)", "coalesce()", "abs()", "abs(1, 2)", "changed()",
                               "changed(stock, price)", "frobnicate(name)"}) {
        INFO("source: " << s);
        auto e = compile_error(s);
        CHECK(!e.message.empty());
        CHECK(e.offset < s.size());
    }
}

TEST_CASE("binding: a program carries the table version it was bound to", "[rules]") {
    auto p = compile("stock < 10", items_table(7));
    CHECK(p.table_version() == 7);
    auto q = compile("stock < 10", items_table(8));
    CHECK(q.table_version() == 8);
}

TEST_CASE("binding: one expression binds to two table versions with columns at different positions", "[rules]") {
    auto e = parse_ok("stock < 10");
    auto v1 = std::make_shared<table_schema>(*items_table(1));
    auto v2 = std::make_shared<table_schema>(*items_table(2));
    std::swap(v2->columns[1], v2->columns[2]);  // stock and qty trade places
    auto p1 = rules::program::bind(e, *v1);
    auto p2 = rules::program::bind(e, *v2);
    REQUIRE(std::holds_alternative<rules::program>(p1));
    REQUIRE(std::holds_alternative<rules::program>(p2));
    rules::evaluator ev;
    auto c1 = make_change(v1, change_op::insert, std::nullopt, make_row(*v1, {{"stock", "3"}, {"qty", "50"}}));
    auto c2 = make_change(v2, change_op::insert, std::nullopt, make_row(*v2, {{"stock", "3"}, {"qty", "50"}}));
    CHECK(std::get<rules::program>(p1).evaluate(c1, ev).truthy());
    CHECK(std::get<rules::program>(p2).evaluate(c2, ev).truthy());
}

// ---------------------------------------------------------------- evaluation

TEST_CASE("evaluation: column values take their column's type", "[rules]") {
    CHECK(eval("stock") == I(5));
    CHECK(eval("qty") == I(100));
    CHECK(eval("price") == R(9.5));
    CHECK(eval("weight") == R(2.5));
    CHECK(eval("name") == S("Widget"));
    CHECK(eval("code") == S("AB-12"));
    CHECK(eval("active") == B(true));
    CHECK(eval("id") == I(1));
    auto t = items_table();
    auto c = make_change(t, change_op::insert, std::nullopt,
                         make_row(*t, {{"qty", "9223372036854775807"}, {"active", "f"}, {"stock", "-2147483648"}}));
    CHECK(eval("qty", c) == I(std::numeric_limits<std::int64_t>::max()));
    CHECK(eval("active", c) == B(false));
    CHECK(eval("stock", c) == I(-2147483648LL));
    CHECK(eval("name", c) == Null());
    CHECK(eval("price", c) == Null());
}

TEST_CASE("evaluation: comparisons on integer, numeric, float and text columns", "[rules]") {
    CHECK(passes("stock < 10"));
    CHECK_FALSE(passes("stock < 5"));
    CHECK(passes("stock <= 5"));
    CHECK(passes("stock >= 5"));
    CHECK_FALSE(passes("stock > 5"));
    CHECK(passes("stock = 5"));
    CHECK(passes("stock != 4"));
    CHECK(passes("stock <> 4"));
    CHECK_FALSE(passes("stock <> 5"));
    CHECK(passes("price < 10"));      // numeric "9.50" compares as 9.5
    CHECK(passes("price > 9.49"));
    CHECK(passes("price = 9.5"));
    CHECK(passes("price = 9.50"));
    CHECK_FALSE(passes("price < 9.5"));
    CHECK(passes("price * 2 = 19"));
    CHECK(passes("\"Order Total\" = 120.25"));
    CHECK(passes("weight = 2.5"));
    CHECK(passes("stock = 5.0"));    // integers and doubles compare by value
    CHECK(passes("qty > stock"));
    CHECK(passes("name = 'Widget'"));
    CHECK(passes("name < 'Wodget'"));
    CHECK(passes("name > 'Wa'"));
    CHECK(passes("'B' < 'a'"));       // bytewise
    CHECK(passes("'abc' < 'abd'"));
    CHECK(passes("'ab' < 'abc'"));
    CHECK(passes("'é' > 'z'"));       // UTF-8 bytes: 0xC3 > 'z'
    CHECK(passes("active"));
    CHECK(passes("active = true"));
    CHECK(passes("code = 'AB-12'"));
}

TEST_CASE("evaluation: a large integer column value stays exact", "[rules]") {
    auto t = items_table();
    auto c = make_change(t, change_op::insert, std::nullopt, make_row(*t, {{"qty", "9007199254740993"}}));
    // 2^53 + 1 is not a double: comparing as doubles would call it equal to 2^53.
    CHECK(passes("qty = 9007199254740993", c));
    CHECK_FALSE(passes("qty = 9007199254740992", c));
    CHECK(eval("qty + 1", c) == I(9007199254740994));
}

TEST_CASE("evaluation: three-valued logic as in SQL, and a filter treats null as false", "[rules]") {
    CHECK(eval("null = 1") == Null());
    CHECK(eval("1 = null") == Null());
    CHECK(eval("null = null") == Null());
    CHECK(eval("null != 1") == Null());
    CHECK(eval("null < 1") == Null());
    CHECK(eval("null and false") == B(false));
    CHECK(eval("false and null") == B(false));
    CHECK(eval("null and true") == Null());
    CHECK(eval("null or true") == B(true));
    CHECK(eval("true or null") == B(true));
    CHECK(eval("null or false") == Null());
    CHECK(eval("not null") == Null());
    CHECK(eval("null + 1") == Null());
    CHECK(eval("null || 'x'") == Null());
    CHECK(eval("-null") == Null());
    CHECK_FALSE(passes("null"));
    CHECK_FALSE(passes("null = 1"));
    CHECK_FALSE(passes("not (null = 1)"));
    CHECK_FALSE(passes("false"));
    CHECK(passes("true"));

    auto t = items_table();
    auto c = make_change(t, change_op::insert, std::nullopt, make_row(*t, {{"id", "1"}}));  // stock null
    CHECK(eval("stock < 10", c) == Null());
    CHECK_FALSE(passes("stock < 10", c));
    CHECK_FALSE(passes("stock >= 10", c));
    CHECK(passes("stock is null", c));
    CHECK(passes("stock < 10 or stock is null", c));
    CHECK(eval("stock < 10 and false", c) == B(false));
}

TEST_CASE("evaluation: a non-boolean result is not truthy", "[rules]") {
    CHECK_FALSE(passes("1"));
    CHECK_FALSE(passes("stock"));
    CHECK_FALSE(passes("'true'"));
    CHECK_FALSE(passes("name"));
}

TEST_CASE("evaluation: functions", "[rules]") {
    CHECK(eval("lower(name)") == S("widget"));
    CHECK(eval("upper(name)") == S("WIDGET"));
    CHECK(eval("lower('MiXeD 123')") == S("mixed 123"));
    CHECK(eval("length(name)") == I(6));
    CHECK(eval("length('')") == I(0));
    CHECK(eval("length('héllo wörld')") == I(11));  // characters, not bytes
    CHECK(eval("length('日本語')") == I(3));
    CHECK(eval("substring('hello', 2)") == S("ello"));
    CHECK(eval("substring('hello', 2, 3)") == S("ell"));
    CHECK(eval("substring('hello', 1, 1)") == S("h"));
    CHECK(eval("substring('hello', 5)") == S("o"));
    CHECK(eval("substring('hello', 6)") == S(""));
    CHECK(eval("substring('hello', 9, 2)") == S(""));
    CHECK(eval("substring('hello', 2, 0)") == S(""));
    CHECK(eval("substring('hello', 3, 100)") == S("llo"));
    CHECK(eval("substring('héllo', 2, 3)") == S("éll"));  // characters, not bytes
    CHECK(eval("substring('日本語', 2)") == S("本語"));
    CHECK(eval("substring(name, 1, 3) = 'Wid'") == B(true));
    CHECK(eval("lower(null)") == Null());
    CHECK(eval("length(null)") == Null());
    CHECK(eval("substring(null, 1)") == Null());
    CHECK(eval("substring('abc', null)") == Null());

    CHECK(eval("coalesce(null, 2, 3)") == I(2));
    CHECK(eval("coalesce(1)") == I(1));
    CHECK(eval("coalesce(null, null)") == Null());
    CHECK(eval("coalesce(null, 'x')") == S("x"));
    CHECK(eval("coalesce(name, 'none')") == S("Widget"));

    CHECK(eval("abs(-5)") == I(5));
    CHECK(eval("abs(5)") == I(5));
    CHECK(eval("abs(-2.5)") == R(2.5));
    CHECK(eval("abs(null)") == Null());
    CHECK(eval("abs(stock - 8)") == I(3));

    auto t = items_table();
    auto c = make_change(t, change_op::insert, std::nullopt, make_row(*t, {{"id", "1"}}));
    CHECK(eval("coalesce(name, code, 'none')", c) == S("none"));
    CHECK(eval("coalesce(stock, 0) + 1", c) == I(1));
}

TEST_CASE("evaluation: arithmetic, overflow and division by zero", "[rules]") {
    CHECK(eval("stock + 1") == I(6));
    CHECK(eval("stock - 10") == I(-5));
    CHECK(eval("stock * 3") == I(15));
    CHECK(eval("stock / 5") == I(1));
    CHECK(eval("stock % 3") == I(2));
    CHECK(eval("stock + 0.5") == R(5.5));
    CHECK(eval("price + 1") == R(10.5));
    CHECK(eval("1.5 * 2") == R(3.0));
    CHECK(eval("7 / 2") == R(3.5));  // integers only while exact
    CHECK(eval("-7 % 3") == I(-1));

    SECTION("past 64 bits an integer result falls back to a double") {
        CHECK(eval("9223372036854775807 + 1") == R(9223372036854775808.0));
        CHECK(eval("9223372036854775807 * 2") == R(18446744073709551614.0));
        CHECK(eval("-9223372036854775807 - 2") == R(-9223372036854775809.0));
        CHECK(eval("(-9223372036854775807 - 1) / -1") == R(9223372036854775808.0));
        CHECK(eval("abs(-9223372036854775807 - 1)") == R(9223372036854775808.0));
        CHECK(eval("-(-9223372036854775807 - 1)") == R(9223372036854775808.0));
        CHECK(eval("(-9223372036854775807 - 1) % -1") == I(0));
        auto t = items_table();
        auto c = make_change(t, change_op::insert, std::nullopt, make_row(*t, {{"qty", "9223372036854775807"}}));
        CHECK(eval("qty + 1", c) == R(9223372036854775808.0));
        CHECK(eval("qty - 1", c) == I(9223372036854775806));
    }
    SECTION("division and modulo by zero are null") {
        CHECK(eval("1 / 0") == Null());
        CHECK(eval("1 % 0") == Null());
        CHECK(eval("1.5 / 0") == Null());
        CHECK(eval("1 / 0.0") == Null());
        CHECK(eval("stock / (stock - 5)") == Null());
        CHECK(eval("stock % (stock - 5)") == Null());
        CHECK_FALSE(passes("1 / 0 > 0"));
    }
    SECTION("string concatenation") {
        CHECK(eval("name || '-' || code") == S("Widget-AB-12"));
        CHECK(eval("'' || ''") == S(""));
        CHECK(eval("lower(name) || upper(name)") == S("widgetWIDGET"));
    }
}

TEST_CASE("evaluation: op names the change's kind", "[rules]") {
    auto t = items_table();
    const auto r = make_row(*t, {{"id", "1"}, {"stock", "5"}});
    CHECK(eval("op", make_change(t, change_op::insert, std::nullopt, r)) == S("insert"));
    CHECK(eval("op", make_change(t, change_op::update, std::nullopt, r)) == S("update"));
    CHECK(eval("op", make_change(t, change_op::erase, r, {})) == S("delete"));
    CHECK(eval("op", make_change(t, change_op::truncate, std::nullopt, {})) == S("truncate"));
    CHECK(eval("op", make_change(t, change_op::read, std::nullopt, r)) == S("read"));
    CHECK(passes("op = 'delete'", make_change(t, change_op::erase, r, {})));
    CHECK_FALSE(passes("op = 'delete'", make_change(t, change_op::insert, std::nullopt, r)));
    CHECK(passes("op in ('insert', 'read')", make_change(t, change_op::read, std::nullopt, r)));
}

TEST_CASE("evaluation: col, old.col and new.col on each kind of change", "[rules]") {
    auto t = items_table();
    SECTION("insert: col and new.col are the new values, old.col is null") {
        auto c = make_change(t, change_op::insert, std::nullopt, make_row(*t, {{"id", "1"}, {"stock", "5"}}));
        CHECK(eval("stock", c) == I(5));
        CHECK(eval("new.stock", c) == I(5));
        CHECK(eval("old.stock", c) == Null());
        CHECK(eval("old.stock is null", c) == B(true));
        CHECK(eval("NEW.stock", c) == I(5));
    }
    SECTION("read (snapshot row): like an insert") {
        auto c = make_change(t, change_op::read, std::nullopt, make_row(*t, {{"id", "1"}, {"stock", "5"}}));
        CHECK(eval("stock", c) == I(5));
        CHECK(eval("old.stock", c) == Null());
    }
    SECTION("update with a full old image") {
        auto c = make_change(t, change_op::update, make_row(*t, {{"id", "1"}, {"stock", "12"}, {"name", "a"}}),
                             make_row(*t, {{"id", "1"}, {"stock", "4"}, {"name", "a"}}));
        CHECK(eval("stock", c) == I(4));
        CHECK(eval("new.stock", c) == I(4));
        CHECK(eval("old.stock", c) == I(12));
        CHECK(passes("old.stock >= 10 and new.stock < 10", c));
        CHECK(eval("new.stock - old.stock", c) == I(-8));
    }
    SECTION("update without an old image: old.col is null") {
        auto c = make_change(t, change_op::update, std::nullopt, make_row(*t, {{"id", "1"}, {"stock", "4"}}));
        CHECK(eval("old.stock", c) == Null());
        CHECK(eval("stock", c) == I(4));
    }
    SECTION("delete: col reads the old image, new.col is null") {
        auto c = make_change(t, change_op::erase, make_row(*t, {{"id", "3"}, {"stock", "8"}, {"name", "gone"}}), {});
        CHECK(eval("stock", c) == I(8));
        CHECK(eval("name", c) == S("gone"));
        CHECK(eval("old.stock", c) == I(8));
        CHECK(eval("new.stock", c) == Null());
        CHECK(passes("op = 'delete' and id = 3", c));
    }
    SECTION("delete with a key-only old image: the key is known, other columns are null") {
        auto c = make_change(t, change_op::erase, key_only(*t, "3"), {});
        CHECK(eval("id", c) == I(3));
        CHECK(eval("old.id", c) == I(3));
        CHECK(eval("stock", c) == Null());
        CHECK(eval("name is null", c) == B(true));
    }
    SECTION("truncate: every column is null") {
        auto c = make_change(t, change_op::truncate, std::nullopt, {});
        CHECK(eval("id", c) == Null());
        CHECK(eval("old.id", c) == Null());
        CHECK(eval("new.id", c) == Null());
        CHECK(eval("changed(id)", c) == B(false));
    }
}

TEST_CASE("evaluation: changed(col) on updates", "[rules]") {
    auto t = items_table();
    SECTION("with a full old image") {
        auto c = make_change(t, change_op::update,
                             make_row(*t, {{"id", "1"}, {"stock", "12"}, {"name", "a"}, {"price", "1.00"}}),
                             make_row(*t, {{"id", "1"}, {"stock", "4"}, {"name", "a"}, {"price", "1.0"}}));
        CHECK(eval("changed(stock)", c) == B(true));
        CHECK(eval("changed(name)", c) == B(false));
        CHECK(eval("changed(id)", c) == B(false));
        CHECK(eval("changed(code)", c) == B(false));  // null before and after
        CHECK(passes("changed(stock) and not changed(name)", c));
    }
    SECTION("null to a value and back count as changes") {
        auto c = make_change(t, change_op::update, make_row(*t, {{"id", "1"}, {"name", "a"}}),
                             make_row(*t, {{"id", "1"}, {"stock", "4"}}));
        CHECK(eval("changed(stock)", c) == B(true));
        CHECK(eval("changed(name)", c) == B(true));
    }
    SECTION("without an old image nothing counts as changed") {
        auto c = make_change(t, change_op::update, std::nullopt, make_row(*t, {{"id", "1"}, {"stock", "4"}}));
        CHECK(eval("changed(stock)", c) == B(false));
        CHECK(eval("changed(id)", c) == B(false));
    }
    SECTION("with a key-only old image only a moved key counts") {
        auto same = make_change(t, change_op::update, key_only(*t, "1"), make_row(*t, {{"id", "1"}, {"stock", "4"}}));
        CHECK(eval("changed(id)", same) == B(false));
        CHECK(eval("changed(stock)", same) == B(false));
        auto moved = make_change(t, change_op::update, key_only(*t, "1"), make_row(*t, {{"id", "2"}, {"stock", "4"}}));
        CHECK(eval("changed(id)", moved) == B(true));
        CHECK(eval("changed(stock)", moved) == B(false));
        CHECK(eval("old.id", moved) == I(1));
        CHECK(eval("new.id", moved) == I(2));
    }
    SECTION("an unchanged TOAST value is not a change") {
        auto c = make_change(t, change_op::update, make_row(*t, {{"id", "1"}, {"doc", "?"}, {"stock", "1"}}),
                             make_row(*t, {{"id", "1"}, {"doc", "?"}, {"stock", "2"}}));
        CHECK(eval("changed(doc)", c) == B(false));
        CHECK(eval("changed(stock)", c) == B(true));
        auto no_old = make_change(t, change_op::update, std::nullopt, make_row(*t, {{"id", "1"}, {"doc", "?"}}));
        CHECK(eval("changed(doc)", no_old) == B(false));
    }
    SECTION("inserts, deletes and snapshot rows change nothing") {
        CHECK(eval("changed(stock)") == B(false));
        auto d = make_change(t, change_op::erase, make_row(*t, {{"id", "1"}, {"stock", "4"}}), {});
        CHECK(eval("changed(stock)", d) == B(false));
        auto r = make_change(t, change_op::read, std::nullopt, make_row(*t, {{"id", "1"}, {"stock", "4"}}));
        CHECK(eval("changed(stock)", r) == B(false));
    }
}

TEST_CASE("evaluation: an unchanged TOAST value reads from a full old image, else as null", "[rules]") {
    auto t = items_table();
    auto c = make_change(t, change_op::update, std::nullopt, make_row(*t, {{"id", "1"}, {"doc", "?"}}));
    CHECK(eval("doc", c) == Null());
    CHECK(eval("length(doc)", c) == Null());
    auto full = make_change(t, change_op::update, make_row(*t, {{"id", "1"}, {"doc", "big value"}}),
                            make_row(*t, {{"id", "1"}, {"doc", "?"}}));
    CHECK(eval("doc", full) == S("big value"));
    CHECK(eval("new.doc", full) == S("big value"));
    CHECK(eval("old.doc", full) == S("big value"));
    CHECK(eval("changed(doc)", full) == B(false));
}

TEST_CASE("evaluation: one evaluator reused across rows and programs leaks nothing between them", "[rules]") {
    auto t = items_table();
    const std::vector<std::string> sources = {
        "lower(name) || '/' || upper(code)",
        "stock < 10 and name like 'W%'",
        "coalesce(old.stock, new.stock, -1) * 2",
        "substring(name, 2, 3) || lower(code)",
        "op",
        "changed(stock)",
        "abs(price - 10) + weight",
        "stock in (1, 2, 3, null)",
        "1 + (2 + (3 + (4 + (5 + (6 + (7 + (8 + stock)))))))",
        "name",
    };
    std::vector<rules::program> programs;
    for (const auto& s : sources) programs.push_back(compile(s, t));

    std::vector<change_event> changes;
    for (int i = 0; i < 40; ++i) {
        const auto id = std::to_string(i);
        const auto name = i % 5 == 0 ? std::optional<std::string>{} : std::optional<std::string>{"Name" + id + std::string(i, 'x')};
        const auto code = i % 3 == 0 ? std::optional<std::string>{} : std::optional<std::string>{"c" + id};
        auto after = make_row(*t, {{"id", id},
                                   {"stock", std::to_string(i % 13)},
                                   {"price", std::to_string(i) + ".25"},
                                   {"weight", "0.5"},
                                   {"name", name},
                                   {"code", code}});
        switch (i % 4) {
            case 0: changes.push_back(make_change(t, change_op::insert, std::nullopt, after)); break;
            case 1:
                changes.push_back(make_change(t, change_op::update,
                                              make_row(*t, {{"id", id}, {"stock", std::to_string(i)}}), after));
                break;
            case 2: changes.push_back(make_change(t, change_op::update, std::nullopt, after)); break;
            case 3: changes.push_back(make_change(t, change_op::erase, after, {})); break;
        }
    }

    // Expected: every (program, change) evaluated with a fresh evaluator.
    std::vector<std::vector<result>> expected(programs.size());
    for (std::size_t p = 0; p < programs.size(); ++p)
        for (const auto& c : changes) {
            rules::evaluator fresh;
            expected[p].push_back(result::of(programs[p].evaluate(c, fresh)));
        }

    rules::evaluator shared;
    for (int round = 0; round < 3; ++round)
        for (std::size_t ci = 0; ci < changes.size(); ++ci)
            for (std::size_t p = 0; p < programs.size(); ++p) {
                // Interleave programs (different stack depths and text slots) on one evaluator.
                const auto pi = (p + ci + static_cast<std::size_t>(round)) % programs.size();
                INFO("source: " << sources[pi] << ", change " << ci << ", round " << round);
                CHECK(result::of(programs[pi].evaluate(changes[ci], shared)) == expected[pi][ci]);
            }
    // Spot checks that the expected values are what they should be.
    CHECK(expected[0][1] == S("name1x/C1"));
    CHECK(expected[0][0] == Null());
    CHECK(expected[4][3] == S("delete"));
    CHECK(expected[5][1] == B(false));  // stock 1 before and after
    CHECK(expected[5][13] == B(true));  // stock 13 before, 0 after
}

TEST_CASE("evaluation: a text result stays valid until the next evaluate()", "[rules]") {
    auto p = compile("lower(name) || '-' || code");
    rules::evaluator ev;
    auto c = sample_insert();
    auto v = p.evaluate(c, ev);
    REQUIRE(v.k == kind::text);
    CHECK(v.s == "widget-AB-12");
    auto q = compile("name");
    auto w = q.evaluate(c, ev);
    REQUIRE(w.k == kind::text);
    CHECK(w.s == "Widget");
}

// ---------------------------------------------------------------- to_text

TEST_CASE("to_text renders each kind of value", "[rules]") {
    rules::eval_value v;
    CHECK_FALSE(rules::to_text(v).has_value());

    v.k = kind::boolean;
    v.b = true;
    CHECK(rules::to_text(v) == "true");
    v.b = false;
    CHECK(rules::to_text(v) == "false");

    v = {};
    v.k = kind::integer;
    v.i = 42;
    CHECK(rules::to_text(v) == "42");
    v.i = -7;
    CHECK(rules::to_text(v) == "-7");
    v.i = 0;
    CHECK(rules::to_text(v) == "0");
    v.i = std::numeric_limits<std::int64_t>::min();
    CHECK(rules::to_text(v) == "-9223372036854775808");

    v = {};
    v.k = kind::real;
    v.d = 2.5;
    CHECK(rules::to_text(v) == "2.5");
    v.d = 0.1;
    CHECK(rules::to_text(v) == "0.1");  // shortest round-trip form, not 0.10000000000000001
    v.d = -9.5;
    CHECK(rules::to_text(v) == "-9.5");
    v.d = 1.0 / 3.0;
    REQUIRE(rules::to_text(v).has_value());
    CHECK(std::stod(*rules::to_text(v)) == 1.0 / 3.0);
    v.d = 9223372036854775808.0;
    REQUIRE(rules::to_text(v).has_value());
    CHECK(std::stod(*rules::to_text(v)) == 9223372036854775808.0);

    v.d = std::numeric_limits<double>::quiet_NaN();
    CHECK(rules::to_text(v) == "NaN");  // PostgreSQL's spellings
    v.d = std::numeric_limits<double>::infinity();
    CHECK(rules::to_text(v) == "Infinity");
    v.d = -std::numeric_limits<double>::infinity();
    CHECK(rules::to_text(v) == "-Infinity");

    v = {};
    v.k = kind::text;
    v.s = "héllo";
    CHECK(rules::to_text(v) == "héllo");
    v.s = "";
    CHECK(rules::to_text(v) == "");

    // And from evaluations.
    auto show_text = [](std::string_view src) {
        auto p = compile(src);
        rules::evaluator ev;
        return rules::to_text(p.evaluate(sample_insert(), ev));
    };
    CHECK(show_text("price") == "9.5");
    CHECK(show_text("stock * 2") == "10");
    CHECK(show_text("stock < 10") == "true");
    CHECK(show_text("upper(code)") == "AB-12");
    CHECK_FALSE(show_text("null").has_value());
    CHECK(show_text("price * 3") == "28.5");
}

// ---------------------------------------------------------------- limits

TEST_CASE("expression: deep nesting is refused with an error, not a crash", "[rules]") {
    for (std::string_view unit : {"(", "- ", "not ", "lower(", "coalesce(1, "}) {
        std::string s;
        for (int i = 0; i < 20000; ++i) s += unit;
        s += "1";
        INFO("20000 × " << unit);
        auto e = parse_error(s);
        CHECK(e.offset <= s.size());
        CHECK(!e.message.empty());
    }
    std::string ok;
    for (int i = 0; i < 50; ++i) ok += "(";
    ok += "1";
    for (int i = 0; i < 50; ++i) ok += ")";
    CHECK(eval(ok) == I(1));
}

// Runs `f` in a child process, so that a crash fails one test instead of
// ending the whole run. Returns the wait status.
static int run_in_child(const std::function<bool()>& f) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) std::signal(sig, SIG_DFL);  // not Catch's report
        ::_exit(f() ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    return status;
}

TEST_CASE("expression: a long chain of operators is evaluated or refused, never a crash", "[rules]") {
    // Left-associative chains nest the syntax tree as deeply as they are long.
    constexpr int chain = 100000;
    auto t = items_table();
    for (std::string_view op : {" + ", " and ", " or ", " || ", " * "}) {
        std::string s = "stock";
        for (int i = 0; i < chain; ++i) (s += op) += "stock";
        INFO("\"stock" << op << "stock" << op << "...\" with " << chain << " operators");
        const int status = run_in_child([&] {
            auto p = rules::expression::parse(s);
            if (auto* e = std::get_if<rules::expr_error>(&p)) return e->offset <= s.size() && !e->message.empty();
            auto b = rules::program::bind(std::get<rules::expression>(p), *t);
            if (auto* e = std::get_if<rules::expr_error>(&b)) return e->offset <= s.size() && !e->message.empty();
            rules::evaluator ev;
            const auto v = result::of(std::get<rules::program>(b).evaluate(sample_insert(), ev));
            if (op == " + ") return v == I(5 * (chain + 1));
            if (op == " and " || op == " or ") return v == Null();  // stock is not a boolean
            if (op == " || ") return v == S(std::string(chain + 1, '5'));  // stock is 5
            return v.k == kind::real;  // 5^(chain + 1) overflows to a double
        });
        const std::string child = WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                                      : "exit code " + std::to_string(WEXITSTATUS(status));
        CHECK(child == "exit code 0");  // 1: a wrong result or error; a signal: a crash
    }
}
