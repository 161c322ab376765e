#include "connectors/common/prerequisites.hpp"

#include <catch2/catch.hpp>

using namespace datavor::connectors;

TEST_CASE("a probe report is ok unless some check failed", "[prerequisites]") {
    probe_report r;
    CHECK(r.ok());
    r.checks.push_back({"a", "A", check_status::pass, "", ""});
    r.checks.push_back({"b", "B", check_status::warn, "", "fix b"});
    r.checks.push_back({"c", "C", check_status::skip, "", ""});
    CHECK(r.ok());
    r.checks.push_back({"d", "D", check_status::fail, "", "fix d"});
    CHECK_FALSE(r.ok());
}

TEST_CASE("check statuses have stable names", "[prerequisites]") {
    CHECK(to_string(check_status::pass) == "pass");
    CHECK(to_string(check_status::warn) == "warn");
    CHECK(to_string(check_status::fail) == "fail");
    CHECK(to_string(check_status::skip) == "skip");
}
