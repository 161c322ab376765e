#include "connectors/common/connection_spec.hpp"

#include "tests/connectors/result_string_maker.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

using namespace datavor::connectors;

namespace {

parsed_url must_parse(std::string_view url) {
    auto r = parse_connection_url(url);
    INFO("url: " << url);
    REQUIRE(r.has_value());
    return *r;
}

boost::system::error_code parse_error(std::string_view url) {
    auto r = parse_connection_url(url);
    INFO("url: " << url);
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

}  // namespace

TEST_CASE("a postgresql URL gives user, host, port, database and parameters", "[connection_spec]") {
    auto p = must_parse("postgresql://replicator@db.internal:5433/shop?sslmode=verify-full&sslrootcert=/etc/ca.pem");
    CHECK(p.spec.kind == db_kind::postgresql);
    CHECK(p.spec.user == "replicator");
    CHECK(p.spec.host == "db.internal");
    CHECK(p.spec.port == 5433);
    CHECK(p.spec.database == "shop");
    CHECK(p.spec.param("sslmode") == "verify-full");
    CHECK(p.spec.param("sslrootcert") == "/etc/ca.pem");
    CHECK_FALSE(p.password.has_value());
}

TEST_CASE("postgres:// is an alias of postgresql://", "[connection_spec]") {
    auto p = must_parse("postgres://u@h/db");
    CHECK(p.spec.kind == db_kind::postgresql);
    CHECK(p.spec.port == 0);
    CHECK(p.spec.redacted_url() == "postgresql://u@h/db");
}

TEST_CASE("mariadb:// and mysql:// both give a mariadb connection", "[connection_spec]") {
    auto m = must_parse("mariadb://root@127.0.0.1:3307/app");
    CHECK(m.spec.kind == db_kind::mariadb);
    CHECK(m.spec.port == 3307);
    auto y = must_parse("mysql://root@127.0.0.1/app?ssl-mode=required");
    CHECK(y.spec.kind == db_kind::mariadb);
    CHECK(y.spec.param("ssl-mode") == "required");
    CHECK(y.spec.redacted_url() == "mariadb://root@127.0.0.1/app?ssl-mode=required");
}

TEST_CASE("a sqlite URL keeps its file path in either form", "[connection_spec]") {
    CHECK(must_parse("sqlite:/var/lib/a.db").spec.path == "/var/lib/a.db");
    CHECK(must_parse("sqlite:///var/lib/a.db").spec.path == "/var/lib/a.db");
    CHECK(must_parse("sqlite:relative/b.db").spec.path == "relative/b.db");
    auto p = must_parse("sqlite:/var/lib/a.db");
    CHECK(p.spec.kind == db_kind::sqlite);
    CHECK(p.spec.redacted_url() == "sqlite:/var/lib/a.db");
}

TEST_CASE("a password in the URL is split off and never kept in the spec", "[connection_spec]") {
    auto p = must_parse("postgresql://app:s3cret-pw@db:5432/shop");
    REQUIRE(p.password.has_value());
    CHECK(*p.password == "s3cret-pw");
    CHECK(p.spec.user == "app");
    CHECK(p.spec.redacted_url() == "postgresql://app@db:5432/shop");
}

TEST_CASE("a password may contain '@' and ':' and the last '@' ends the user info", "[connection_spec]") {
    auto p = must_parse("mariadb://app:p@ss:w@rd@db.example:3306/x");
    REQUIRE(p.password.has_value());
    CHECK(*p.password == "p@ss:w@rd");
    CHECK(p.spec.user == "app");
    CHECK(p.spec.host == "db.example");
    CHECK(p.spec.redacted_url().find("p@ss") == std::string::npos);
}

TEST_CASE("an empty password in the URL is still a password", "[connection_spec]") {
    auto p = must_parse("postgresql://app:@db/x");
    REQUIRE(p.password.has_value());
    CHECK(p.password->empty());
}

TEST_CASE("a password given as a query parameter is split off too", "[connection_spec]") {
    auto p = must_parse("postgresql://app@db/x?sslmode=require&password=hunter2");
    REQUIRE(p.password.has_value());
    CHECK(*p.password == "hunter2");
    CHECK(p.spec.params.count("password") == 0);
    CHECK(p.spec.redacted_url() == "postgresql://app@db/x?sslmode=require");
}

TEST_CASE("percent-escapes are decoded in user, password, database and parameters", "[connection_spec]") {
    auto p = must_parse("postgresql://us%40er:p%2Fw%25%3A@db/my%20db?sslrootcert=%2Ftmp%2Fca%20x.pem");
    CHECK(p.spec.user == "us@er");
    REQUIRE(p.password.has_value());
    CHECK(*p.password == "p/w%:");
    CHECK(p.spec.database == "my db");
    CHECK(p.spec.param("sslrootcert") == "/tmp/ca x.pem");
}

TEST_CASE("an IPv6 literal in brackets is the host, with or without a port", "[connection_spec]") {
    auto p = must_parse("postgresql://u@[::1]:5432/db");
    CHECK(p.spec.host == "::1");
    CHECK(p.spec.port == 5432);
    CHECK(p.spec.redacted_url() == "postgresql://u@[::1]:5432/db");
    auto q = must_parse("mariadb://u@[fe80::1]/db");
    CHECK(q.spec.host == "fe80::1");
    CHECK(q.spec.port == 0);
}

TEST_CASE("a port that is not a number between 1 and 65535 is bad_port", "[connection_spec]") {
    for (const char* url : {"postgresql://u@h:0/db", "postgresql://u@h:65536/db", "postgresql://u@h:abc/db",
                            "postgresql://u@h:54x/db", "postgresql://u@h:-1/db", "postgresql://u@[::1]x/db",
                            "mariadb://u@h:99999999999/db"}) {
        INFO(url);
        CHECK(parse_error(url) == url_error::bad_port);
    }
    CHECK(must_parse("postgresql://u@h:65535/db").spec.port == 65535);
    CHECK(must_parse("postgresql://u@h:1/db").spec.port == 1);
}

TEST_CASE("malformed URLs are rejected with the matching url_error", "[connection_spec]") {
    CHECK(parse_error("") == url_error::empty);
    CHECK(parse_error("http://h/db") == url_error::unknown_scheme);
    CHECK(parse_error("POSTGRESQL://h/db") == url_error::unknown_scheme);
    CHECK(parse_error("postgresql://u@/db") == url_error::missing_host);
    CHECK(parse_error("postgresql://u@:5432/db") == url_error::missing_host);
    CHECK(parse_error("postgresql://u@[::1/db") == url_error::missing_host);
    CHECK(parse_error("postgresql://u:%zz@h/db") == url_error::bad_escape);
    CHECK(parse_error("postgresql://u@h/db%2") == url_error::bad_escape);
    CHECK(parse_error("postgresql://u@h/db?x=%") == url_error::bad_escape);
    CHECK(parse_error("sqlite:") == url_error::missing_path);
    CHECK(parse_error("sqlite://") == url_error::missing_path);
}

TEST_CASE("every url_error has a description that tells what to write", "[connection_spec]") {
    for (auto e : {url_error::empty, url_error::unknown_scheme, url_error::missing_host, url_error::bad_port,
                   url_error::bad_escape, url_error::missing_path}) {
        boost::system::error_code ec = e;
        CHECK(ec.category().name() == std::string("datavor.url"));
        CHECK_FALSE(describe(e).empty());
        CHECK(ec.message() == describe(e));
    }
}

TEST_CASE("redacted_url never contains the password, whatever it looks like", "[connection_spec]") {
    for (const char* pw : {"plain", "with space", "p@ss", "a:b:c", "%41%42", "sl/ash", "q?uery", "h#sh", "'\";--"}) {
        for (const char* scheme : {"postgresql", "mariadb"}) {
            // Escape the characters that would otherwise end the user info early.
            std::string enc;
            for (char c : std::string(pw)) {
                if (c == '/' || c == '?' || c == '%' || c == '#' || c == ' ') {
                    char buf[4];
                    std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
                    enc += buf;
                } else {
                    enc += c;
                }
            }
            std::string url = std::string(scheme) + "://user:" + enc + "@host:1234/db?sslmode=require";
            INFO(url);
            auto p = must_parse(url);
            REQUIRE(p.password.has_value());
            CHECK(*p.password == pw);
            const std::string red = p.spec.redacted_url();
            CHECK(red.find(pw) == std::string::npos);
            CHECK(red.find(enc) == std::string::npos);
            CHECK(red == std::string(scheme) + "://user@host:1234/db?sslmode=require");
        }
    }
}

TEST_CASE("redacted_url parses back to the same connection", "[connection_spec]") {
    for (const char* url :
         {"postgresql://a%20b@db.internal:5433/my%20shop?sslmode=verify-full&sslrootcert=%2Fca%20dir%2Fca.pem",
          "postgresql://u@[::1]:5432/db", "mariadb://root@127.0.0.1:3306/mysql", "mysql://x:y@h/",
          "postgresql://h", "sqlite:/tmp/x y.db", "postgresql://us%40er@h/db%3Fq"}) {
        INFO(url);
        auto first = must_parse(url);
        auto again = must_parse(first.spec.redacted_url());
        CHECK(again.spec.kind == first.spec.kind);
        CHECK(again.spec.user == first.spec.user);
        CHECK(again.spec.host == first.spec.host);
        CHECK(again.spec.port == first.spec.port);
        CHECK(again.spec.database == first.spec.database);
        CHECK(again.spec.path == first.spec.path);
        CHECK(again.spec.params == first.spec.params);
        CHECK_FALSE(again.password.has_value());
        CHECK(again.spec.redacted_url() == first.spec.redacted_url());
    }
}

TEST_CASE("param returns the fallback when the parameter is absent", "[connection_spec]") {
    auto p = must_parse("postgresql://u@h/db?a=1&&b=");
    CHECK(p.spec.param("a") == "1");
    CHECK(p.spec.param("b", "x").empty());
    CHECK(p.spec.param("c", "fallback") == "fallback");
    CHECK(p.spec.param("c").empty());
}

TEST_CASE("db_kind names are the URL schemes", "[connection_spec]") {
    CHECK(to_string(db_kind::postgresql) == "postgresql");
    CHECK(to_string(db_kind::mariadb) == "mariadb");
    CHECK(to_string(db_kind::sqlite) == "sqlite");
}
