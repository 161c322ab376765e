// libpq_options needs no server: it only maps a connection_spec to libpq keywords.
#include "connectors/pg/pg_prober.hpp"

#include "tests/connectors/result_string_maker.hpp"

#include <catch2/catch.hpp>

using namespace datavor::connectors;

TEST_CASE("libpq_options maps the spec to libpq keywords and adds the password only when given", "[pg_options]") {
    auto parsed = parse_connection_url("postgresql://rep@db.internal:5433/shop?sslmode=verify-full&sslrootcert=/ca.pem");
    REQUIRE(parsed);
    auto o = pg::libpq_options(parsed->spec, std::nullopt);
    CHECK(o.at("host") == "db.internal");
    CHECK(o.at("port") == "5433");
    CHECK(o.at("user") == "rep");
    CHECK(o.at("dbname") == "shop");
    CHECK(o.at("sslmode") == "verify-full");
    CHECK(o.at("sslrootcert") == "/ca.pem");
    CHECK(o.at("application_name") == "datavor");
    CHECK(o.count("password") == 0);

    auto with_pw = pg::libpq_options(parsed->spec, std::string("s3cret"));
    CHECK(with_pw.at("password") == "s3cret");
}

TEST_CASE("libpq_options leaves out what the URL does not name", "[pg_options]") {
    auto parsed = parse_connection_url("postgresql://h");
    REQUIRE(parsed);
    auto o = pg::libpq_options(parsed->spec, std::nullopt);
    CHECK(o.count("port") == 0);
    CHECK(o.count("user") == 0);
    CHECK(o.count("dbname") == 0);
    CHECK(o.at("host") == "h");
}
