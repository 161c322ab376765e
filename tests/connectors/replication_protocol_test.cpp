// The streaming replication CopyBoth framing, from hand-built byte fixtures.
#include "connectors/pg/replication_protocol.hpp"

#include "tests/connectors/result_string_maker.hpp"

#include <catch2/catch.hpp>

#include <limits>

using namespace datavor::connectors;
using namespace datavor::connectors::pg;

namespace {

std::string xlog_fixture(std::string_view payload) {
    std::string s = "w";
    put_u64(s, 0x16B374D848ull);      // dataStart 16/B374D848
    put_u64(s, 0x17000000A0ull);      // walEnd
    put_u64(s, 1'000'000);            // one second after 2000-01-01
    return s + std::string(payload);
}

std::string keepalive_fixture(std::uint8_t reply) {
    std::string s = "k";
    put_u64(s, 0x0100000002ull);
    put_u64(s, static_cast<std::uint64_t>(std::int64_t{-1}));  // a microsecond before 2000-01-01
    put_u8(s, reply);
    return s;
}

}  // namespace

TEST_CASE("replication framing parses XLogData with a payload viewing the input", "[replication]") {
    const std::string in = xlog_fixture(std::string("B\0\x01", 3));
    auto r = parse_server_copy_data(in);
    REQUIRE(r.has_value());
    REQUIRE(std::holds_alternative<xlog_data>(*r));
    const auto& x = std::get<xlog_data>(*r);
    CHECK(x.wal_start.to_string() == "16/B374D848");
    CHECK(x.wal_end.v == 0x17000000A0ull);
    CHECK(x.send_time_us == pg_epoch_unix_us + 1'000'000);
    CHECK(x.payload == std::string_view("B\0\x01", 3));
    CHECK(x.payload.data() == in.data() + 25);  // no copy
}

TEST_CASE("replication framing parses XLogData with an empty payload", "[replication]") {
    auto r = parse_server_copy_data(xlog_fixture(""));
    REQUIRE(r.has_value());
    CHECK(std::get<xlog_data>(*r).payload.empty());
}

TEST_CASE("replication framing parses a primary keepalive", "[replication]") {
    for (std::uint8_t reply : {0, 1, 7}) {
        auto r = parse_server_copy_data(keepalive_fixture(reply));
        REQUIRE(r.has_value());
        REQUIRE(std::holds_alternative<primary_keepalive>(*r));
        const auto& k = std::get<primary_keepalive>(*r);
        CHECK(k.wal_end.to_string() == "1/2");
        CHECK(k.send_time_us == pg_epoch_unix_us - 1);
        CHECK(k.reply_requested == (reply != 0));
    }
}

TEST_CASE("replication framing rejects a truncated message at every byte offset", "[replication]") {
    const std::string keepalive = keepalive_fixture(1);
    for (std::size_t n = 1; n < keepalive.size(); ++n) {
        INFO("keepalive prefix of " << n << " bytes");
        auto r = parse_server_copy_data(std::string_view(keepalive).substr(0, n));
        REQUIRE(r.has_error());
        CHECK(r.error() == replication_error::truncated);
    }
    const std::string xlog = xlog_fixture("");
    for (std::size_t n = 1; n < xlog.size(); ++n) {
        INFO("XLogData prefix of " << n << " bytes");
        auto r = parse_server_copy_data(std::string_view(xlog).substr(0, n));
        REQUIRE(r.has_error());
        CHECK(r.error() == replication_error::truncated);
    }
}

TEST_CASE("replication framing rejects an empty payload and unknown message types", "[replication]") {
    CHECK(parse_server_copy_data("").error() == replication_error::unknown_message);
    CHECK(parse_server_copy_data("r").error() == replication_error::unknown_message);
    CHECK(parse_server_copy_data(std::string(18, '\0')).error() == replication_error::unknown_message);
}

TEST_CASE("replication framing rejects trailing bytes after a keepalive", "[replication]") {
    CHECK(parse_server_copy_data(keepalive_fixture(0) + "x").error() == replication_error::trailing_data);
}

TEST_CASE("replication framing builds a standby status update byte for byte", "[replication]") {
    standby_status_update s;
    s.written = lsn{0x0102030405060708ull};
    s.flushed = lsn{0x1112131415161718ull};
    s.applied = lsn{0x2122232425262728ull};
    s.client_time_us = pg_epoch_unix_us + 0x0A0B;
    s.reply_requested = true;
    const std::string expected("r"
                               "\x01\x02\x03\x04\x05\x06\x07\x08"
                               "\x11\x12\x13\x14\x15\x16\x17\x18"
                               "\x21\x22\x23\x24\x25\x26\x27\x28"
                               "\x00\x00\x00\x00\x00\x00\x0A\x0B"
                               "\x01",
                               34);
    CHECK(build_standby_status_update(s) == expected);
    s.reply_requested = false;
    CHECK(build_standby_status_update(s).back() == '\0');
}

TEST_CASE("replication framing converts between the PostgreSQL and unix epochs", "[replication]") {
    constexpr auto max = std::numeric_limits<std::int64_t>::max();
    constexpr auto min = std::numeric_limits<std::int64_t>::min();
    CHECK(pg_to_unix_us(0) == 946'684'800'000'000);
    CHECK(unix_to_pg_us(946'684'800'000'000) == 0);
    CHECK(unix_to_pg_us(0) == -946'684'800'000'000);
    for (std::int64_t t : {std::int64_t{0}, std::int64_t{-5}, std::int64_t{1'700'000'000'000'000}})
        CHECK(pg_to_unix_us(unix_to_pg_us(t)) == t);
    SECTION("infinity stays infinity and hostile values saturate") {
        CHECK(pg_to_unix_us(max) == max);
        CHECK(pg_to_unix_us(min) == min);
        CHECK(pg_to_unix_us(max - 1) == max);
        CHECK(unix_to_pg_us(max) == max);
        CHECK(unix_to_pg_us(min) == min);
        CHECK(unix_to_pg_us(min + 1) == min);
    }
}

TEST_CASE("wire reader fails for good after reading past the end", "[replication]") {
    wire_reader r(std::string_view("\x01\x02\x03", 3));
    CHECK(r.u16() == 0x0102);
    CHECK(r.u16() == 0);
    CHECK_FALSE(r.ok());
    CHECK(r.u8() == 0);  // the remaining byte is not read after a failure
    CHECK(r.remaining() == 0);
    CHECK_FALSE(r.at_end());

    wire_reader s(std::string_view("ab\0cd", 5));
    CHECK(s.cstring() == "ab");
    CHECK(s.cstring().empty());  // "cd" has no NUL
    CHECK_FALSE(s.ok());
}
