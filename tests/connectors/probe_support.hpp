#pragma once
// Helpers shared by the prober tests: run a probe to completion on a private
// io_context, find a check by id, and read the test servers' environment
// (a missing variable fails the test with a message saying how to start them).
#include "connectors/common/prerequisites.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace datavor::test {

template <class T>
T run_coro(boost::asio::awaitable<T> a) {
    boost::asio::io_context io;
    auto f = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
    io.run();
    return f.get();
}

inline connectors::probe_report run_probe(connectors::prerequisite_prober& prober, connectors::probe_request req,
                                          std::vector<std::string>* progress_ids = nullptr) {
    connectors::probe_progress progress;
    if (progress_ids)
        progress = [progress_ids](const connectors::prerequisite_check& c) { progress_ids->push_back(c.id); };
    return run_coro(prober.run_checks(std::move(req), std::move(progress)));
}

inline const connectors::prerequisite_check* find_check(const connectors::probe_report& r, std::string_view id) {
    for (const auto& c : r.checks)
        if (c.id == id) return &c;
    return nullptr;
}

// The check with this id; fails the test when the report has none.
inline const connectors::prerequisite_check& check(const connectors::probe_report& r, std::string_view id) {
    const auto* c = find_check(r, id);
    INFO("check id: " << id);
    REQUIRE(c != nullptr);
    return *c;
}

inline std::vector<std::string> failed_ids(const connectors::probe_report& r) {
    std::vector<std::string> out;
    for (const auto& c : r.checks)
        if (c.status == connectors::check_status::fail) out.push_back(c.id);
    return out;
}

// Every check of a report, one line each, for failure messages.
inline std::string describe(const connectors::probe_report& r) {
    std::string s = "server " + r.server_version + "\n";
    for (const auto& c : r.checks)
        s += "  " + c.id + ": " + std::string(connectors::to_string(c.status)) + " | " + c.detail +
             (c.fix.empty() ? "" : " | fix: " + c.fix) + "\n";
    return s;
}

// The value of a test-server variable; FAILs (never skips) when it is unset.
inline std::string required_env(const std::string& name) {
    const char* v = std::getenv(name.c_str());
    if (!v || !*v)
        FAIL(name << " is not set. This test needs the servers that scripts/test starts; for a manual run: "
                     "source scripts/lib/servers.sh; datavor_start_pg pg; datavor_start_mariadb mariadb MARIADB "
                     "--log-bin=mariadb-bin --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL "
                     "--server-id=1; datavor_start_mariadb mariadb-plain MARIADB_PLAIN --skip-log-bin "
                     "--binlog-row-image=MINIMAL (see scripts/README.md)");
    return v;
}

// A short lowercase suffix unique to this run, for role, user and table names.
inline const std::string& run_suffix() {
    static const std::string s = [] {
        std::random_device rd;
        std::mt19937_64 gen(rd() ^ static_cast<std::uint64_t>(::getpid()));
        const char* chars = "abcdefghijklmnopqrstuvwxyz0123456789";
        std::string out;
        for (int i = 0; i < 8; ++i) out += chars[gen() % 36];
        return out;
    }();
    return s;
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace datavor::test
