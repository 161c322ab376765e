#include "connectors/common/sql_quote.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace datavor::connectors;
using namespace std::string_literals;

TEST_CASE("quote_pg_ident always quotes and doubles embedded double quotes", "[sql_quote]") {
    CHECK(quote_pg_ident("plain") == R"("plain")");
    CHECK(quote_pg_ident("MixedCase") == R"("MixedCase")");
    CHECK(quote_pg_ident("") == R"("")");
    CHECK(quote_pg_ident(R"(na"me)") == R"("na""me")");
    CHECK(quote_pg_ident(R"(dv"evil; drop)") == R"("dv""evil; drop")");
    CHECK(quote_pg_ident(R"("; DROP TABLE x; --)") == R"("""; DROP TABLE x; --")");
    CHECK(quote_pg_ident("it's") == R"("it's")");
}

TEST_CASE("quote_pg_literal doubles single quotes and keeps backslashes", "[sql_quote]") {
    CHECK(quote_pg_literal("plain") == "'plain'");
    CHECK(quote_pg_literal("it's") == "'it''s'");
    CHECK(quote_pg_literal(R"(a\b)") == R"('a\b')");
    CHECK(quote_pg_literal("") == "''");
}

TEST_CASE("quote_mysql_ident always quotes and doubles embedded backticks", "[sql_quote]") {
    CHECK(quote_mysql_ident("shop") == "`shop`");
    CHECK(quote_mysql_ident("na`me") == "`na``me`");
    CHECK(quote_mysql_ident("a.b") == "`a.b`");
}

TEST_CASE("quote_mysql_literal escapes quotes, backslashes and NUL", "[sql_quote]") {
    CHECK(quote_mysql_literal("plain") == "'plain'");
    CHECK(quote_mysql_literal("it's") == R"('it\'s')");
    CHECK(quote_mysql_literal(R"(a\b)") == R"('a\\b')");
    CHECK(quote_mysql_literal(R"(\')") == R"('\\\'')");
    CHECK(quote_mysql_literal("a\0b"s) == R"('a\0b')");
}

TEST_CASE("split_qualified splits schema.table and defaults the schema", "[sql_quote]") {
    auto q = split_qualified("sales.orders", "public");
    CHECK(q.schema == "sales");
    CHECK(q.name == "orders");
    auto d = split_qualified("orders", "public");
    CHECK(d.schema == "public");
    CHECK(d.name == "orders");
    auto e = split_qualified("orders", "");
    CHECK(e.schema.empty());
    CHECK(e.name == "orders");
}
