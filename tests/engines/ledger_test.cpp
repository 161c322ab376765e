#include "engines/ledger/ledger.hpp"

#include <thread>
#include <SQLiteCpp/SQLiteCpp.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <unistd.h>

using namespace datavor::engines::ledger;

namespace {

struct temp_home {
    std::filesystem::path dir;
    temp_home() {
        dir = std::filesystem::temp_directory_path() / ("datavor-ledger-test-" + std::to_string(::getpid()) + "-" +
                                                        std::to_string(reinterpret_cast<std::uintptr_t>(this)));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
    }
    ~temp_home() { std::filesystem::remove_all(dir); }
    std::filesystem::path file() const { return dir / "ledger.db"; }
};

entry batch(std::string stream, std::int64_t changes, std::int64_t at_us = 0) {
    entry e;
    e.stream = std::move(stream);
    e.kind = kind_batch;
    e.position = "0/10..0/20";
    e.at_us = at_us;
    e.body = R"({"changes":)" + std::to_string(changes) + "}";
    return e;
}

entry failed(std::string stream, std::string key) {
    entry e;
    e.stream = std::move(stream);
    e.kind = kind_failed;
    e.table = "public.orders";
    e.op = "c";
    e.row_key = std::move(key);
    e.error_class = "data";
    e.code = "23514";
    e.message = "new row violates check constraint";
    return e;
}

void exec(const std::filesystem::path& f, const std::string& sql) {
    SQLite::Database db(f.string(), SQLite::OPEN_READWRITE);
    db.exec(sql);
}

}  // namespace

TEST_CASE("SHA-256 matches the standard test vector", "[ledger]") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("the ledger chains entries and verify() finds any change", "[ledger]") {
    temp_home home;
    {
        ledger l(home.file());
        for (int i = 0; i < 50; ++i) l.append(batch("s1", i));
        l.append(failed("s1", R"({"id":7})"));
        REQUIRE(l.flush());
        CHECK(l.backlog() == 0);
        CHECK(l.health().empty());
        auto v = l.verify();
        CHECK(v.ok);
        CHECK(v.entries == 51);
        auto all = l.find({.stream = "s1", .limit = 1000});
        REQUIRE(all.size() == 51);
        CHECK(all.front().seq == 1);
        CHECK(all.front().prev_hash == std::string(64, '0'));
        CHECK(all[1].prev_hash == all[0].hash);
        CHECK(all.back().status == "open");
    }
    SECTION("an altered field") {
        exec(home.file(), "UPDATE entries SET message = 'nothing to see' WHERE seq = 51");
        ledger l(home.file());
        auto v = l.verify();
        CHECK_FALSE(v.ok);
        CHECK(v.first_bad_seq == 51);
        CHECK_THAT(v.problem, Catch::Contains("altered"));
    }
    SECTION("a removed entry") {
        exec(home.file(), "DELETE FROM entries WHERE seq = 20");
        ledger l(home.file());
        auto v = l.verify();
        CHECK_FALSE(v.ok);
        CHECK(v.first_bad_seq == 21);
        CHECK_THAT(v.problem, Catch::Contains("missing"));
    }
    SECTION("an entry rewritten with a fresh hash breaks the next link") {
        ledger l0(home.file());
        auto e = *l0.get(10);
        e.body = R"({"changes":999})";
        // Recompute entry 10's own hash as a forger would; entry 11 still points at the old one.
        std::string forged = sha256_hex(e.prev_hash + "\n" + std::string("[10,") + std::to_string(e.at_us) + ",\"s1\"]");
        exec(home.file(), "UPDATE entries SET body = '{\"changes\":999}', hash = '" + forged + "' WHERE seq = 10");
        auto v = l0.verify();
        CHECK_FALSE(v.ok);
        CHECK(v.first_bad_seq == 10);
    }
    SECTION("appending after a restart continues the chain") {
        {
            ledger l(home.file());
            l.append(batch("s2", 1));
            REQUIRE(l.flush());
        }
        ledger l(home.file());
        CHECK(l.verify().ok);
        CHECK(l.verify().entries == 52);
    }
}

TEST_CASE("retry and dismiss entries resolve failed rows", "[ledger]") {
    temp_home home;
    ledger l(home.file());
    l.append(failed("s", R"({"id":1})"));
    l.append(failed("s", R"({"id":2})"));
    l.append(failed("s", R"({"id":3})"));
    REQUIRE(l.flush());
    entry r;
    r.stream = "s";
    r.kind = kind_retry;
    r.body = R"({"resolved":[1,2],"applied":2})";
    l.append(r);
    entry d;
    d.stream = "s";
    d.kind = kind_dismiss;
    d.body = R"({"resolved":[3]})";
    l.append(d);
    REQUIRE(l.flush());
    CHECK(l.get(1)->status == "retried");
    CHECK(l.get(2)->status == "retried");
    CHECK(l.get(3)->status == "dismissed");
    CHECK(l.find({.stream = "s", .status = "open"}).empty());
    auto sum = l.failed_summary("s");
    REQUIRE(sum.size() == 1);
    CHECK(sum[0].error_class == "data");
    CHECK(sum[0].code == "23514");
    CHECK(sum[0].total == 3);
    CHECK(sum[0].open == 0);
    CHECK(l.verify().ok);
}

TEST_CASE("retention rolls old batch entries up and verify() accepts only recorded gaps", "[ledger]") {
    temp_home home;
    ledger l(home.file());
    const std::int64_t old = 1'000'000'000'000'000;  // 2001
    for (int i = 0; i < 10; ++i) l.append(batch("s", 10, old + i));
    l.append(failed("s", R"({"id":1})"));  // stays: failed rows are kept until resolved
    l.append([&] { auto e = failed("s", R"({"id":2})"); e.at_us = old + 20; return e; }());
    for (int i = 0; i < 5; ++i) l.append(batch("s", 10, old + 30 + i));
    for (int i = 0; i < 3; ++i) l.append(batch("s", 10));  // recent: stay
    REQUIRE(l.flush());
    CHECK(l.apply_retention({std::chrono::hours(24)}) == 15);
    auto v = l.verify();
    CHECK(v.ok);
    CHECK(v.rolled_up == 15);
    auto rollups = l.find({.kind = kind_rollup});
    REQUIRE(rollups.size() == 1);
    CHECK_THAT(rollups[0].body, Catch::Contains("\"changes\":150"));
    CHECK(l.find({.stream = "s", .kind = kind_failed}).size() == 2);
    // A second pass over nothing old is a no-op; an unexplained deletion still fails.
    CHECK(l.apply_retention({std::chrono::hours(24)}) == 0);
    exec(home.file(), "DELETE FROM entries WHERE seq = (SELECT max(seq) - 1 FROM entries WHERE kind = 'batch')");
    CHECK_FALSE(l.verify().ok);
}

TEST_CASE("retention by size rolls up the oldest batch entries until the ledger fits", "[ledger]") {
    temp_home home;
    ledger l(home.file());
    const std::string pad(400, 'x');  // about half a kB per entry
    auto big = [&](std::int64_t changes) {
        auto e = batch("s", changes);
        e.message = pad;
        return e;
    };
    for (int i = 0; i < 4000; ++i) l.append(big(1));
    l.append(failed("s", R"({"id":1})"));
    for (int i = 0; i < 10; ++i) l.append(big(2));
    REQUIRE(l.flush());
    const auto before = l.used_bytes();
    REQUIRE(before > 1'500'000);
    const std::int64_t limit = before / 2;
    // Nothing is old: only the size limit removes entries.
    const auto removed = l.apply_retention({.batch_age = std::chrono::hours(24 * 365), .max_bytes = limit});
    CHECK(removed > 1500);
    CHECK(removed < 4000);
    CHECK(l.used_bytes() <= limit);
    auto v = l.verify();
    CHECK(v.ok);
    CHECK(v.rolled_up == removed);
    // The oldest went; the failed row and the newest batches stayed.
    CHECK(l.find({.stream = "s", .kind = kind_failed}).size() == 1);
    auto rollup = l.find({.kind = kind_rollup});
    REQUIRE(rollup.size() == 1);
    CHECK_THAT(rollup[0].message, Catch::Contains("size limit"));
    CHECK_THAT(rollup[0].body, Catch::Contains("\"changes\":" + std::to_string(removed)));
    auto last = l.find({.stream = "s", .kind = kind_batch, .limit = 10, .newest_first = true});
    REQUIRE(last.size() == 10);
    for (const auto& e : last) CHECK_THAT(e.body, Catch::Contains("\"changes\":2"));
    // Within the limit now: a second pass removes nothing.
    CHECK(l.apply_retention({.batch_age = std::chrono::hours(24 * 365), .max_bytes = limit}) == 0);
}

TEST_CASE("automatic retention runs on its own thread at the configured interval", "[ledger]") {
    temp_home home;
    const std::int64_t old = 1'000'000'000'000'000;
    {
        ledger l(home.file());
        for (int i = 0; i < 20; ++i) l.append(batch("s", 1, old + i));
        REQUIRE(l.flush());
    }
    ledger_options o;
    o.auto_retention = retention{std::chrono::hours(24)};
    o.retention_every = std::chrono::milliseconds(200);
    ledger l(home.file(), o);
    for (int i = 0; i < 50 && l.find({.kind = kind_rollup}).empty(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(l.find({.kind = kind_rollup}).size() == 1);
    CHECK(l.find({.kind = kind_batch}).empty());
    CHECK(l.retention_health().empty());
    CHECK(l.verify().ok);
}

TEST_CASE("a ledger that cannot write keeps its entries and says why", "[ledger]") {
    temp_home home;
    ledger l(home.file(), {.flush_entries = 10, .flush_interval = std::chrono::milliseconds(20)});
    // Another connection holds the write lock.
    SQLite::Database other(home.file().string(), SQLite::OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");
    for (int i = 0; i < 5; ++i) l.append(batch("s", 1));
    CHECK_FALSE(l.flush(std::chrono::milliseconds(4000)));
    CHECK(l.backlog() == 5);
    CHECK_THAT(l.health(), Catch::Contains("cannot write the ledger"));
    other.exec("COMMIT");
    CHECK(l.flush(std::chrono::seconds(10)));
    CHECK(l.backlog() == 0);
    CHECK(l.health().empty());
    CHECK(l.verify().entries == 5);
}

TEST_CASE("a copied row digest continues from the state it was copied at", "[ledger]") {
    row_digest a;
    a.add("first part|");
    row_digest saved(a);  // before the second part
    a.add("second part|");
    row_digest whole;
    whole.add("first part|second part|");
    row_digest b;
    b = saved;
    b.add("second part|");
    const auto hb = b.hex();
    CHECK(hb == whole.hex());
    CHECK(a.hex() == hb);
    CHECK(saved.hex() == sha256_hex("first part|"));
}
