#include "connectors/common/change_spool.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

using namespace datavor::connectors;

namespace {

std::filesystem::path spool_dir() {
    auto d = std::filesystem::temp_directory_path() / ("datavor-spool-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
}

std::shared_ptr<table_schema> table(std::string name) {
    auto t = std::make_shared<table_schema>();
    t->schema = "public";
    t->name = std::move(name);
    t->columns = {{"id", 23, -1, "integer", true, false}, {"v", 25, -1, "text", false, true}};
    return t;
}

change_event insert(const std::shared_ptr<const table_schema>& t, int id, value v) {
    return {t, change_op::insert, std::nullopt, {value::text_value(std::to_string(id)), std::move(v)}};
}

}  // namespace

TEST_CASE("change_spool reads back every change exactly, in order, in chunks", "[spool]") {
    const auto dir = spool_dir();
    auto a = table("a"), b = table("b");
    change_spool spool(dir);
    // The file is anonymous: nothing is left in the folder.
    CHECK(std::filesystem::is_empty(dir));

    std::vector<change_event> written;
    written.push_back(insert(a, 1, value::text_value("x")));
    written.push_back(insert(b, 2, value::null_value()));
    written.push_back({a, change_op::update, row{value::text_value("1"), value::null_value()},
                       row{value::text_value("1"), value::unchanged_value()}});
    written.push_back({b, change_op::erase, row{value::text_value("2"), value::null_value()}, {}});
    written.push_back({a, change_op::truncate, std::nullopt, {}});
    written.push_back(insert(a, 3, value{value::state::binary, std::string("\0\xff\n", 3)}));
    written.push_back(insert(a, 4, value::text_value(std::string(3 << 20, 'z'))));  // forces a flush mid-way
    for (const auto& c : written) spool.append(c);
    CHECK(spool.changes() == written.size());

    std::vector<change_event> read;
    for (;;) {
        auto part = spool.read(3);
        if (part.empty()) break;
        CHECK(part.size() <= 3);
        for (auto& c : part) read.push_back(std::move(c));
    }
    REQUIRE(read.size() == written.size());
    for (std::size_t i = 0; i < read.size(); ++i) {
        INFO("change " << i);
        CHECK(read[i].table == written[i].table);
        CHECK(read[i].op == written[i].op);
        CHECK(read[i].before == written[i].before);
        CHECK(read[i].after == written[i].after);
    }
    // Reading again needs a rewind.
    CHECK(spool.read(10).empty());
    spool.rewind();
    CHECK(spool.read(100).size() == written.size());
    std::filesystem::remove_all(dir);
}

TEST_CASE("change_spool truncate drops an aborted subtransaction's changes", "[spool]") {
    const auto dir = spool_dir();
    auto a = table("a");
    change_spool spool(dir);
    for (int i = 0; i < 10; ++i) spool.append(insert(a, i, value::text_value("keep")));

    SECTION("still in the write buffer") {
        auto m = spool.mark();
        for (int i = 10; i < 20; ++i) spool.append(insert(a, i, value::text_value("gone")));
        spool.truncate(m);
    }
    SECTION("already written to the file") {
        auto m = spool.mark();
        for (int i = 10; i < 20; ++i) spool.append(insert(a, i, value::text_value(std::string(300000, 'g'))));
        spool.truncate(m);
    }
    spool.append(insert(a, 99, value::text_value("after")));
    auto all = spool.read(1000);
    REQUIRE(all.size() == 11);
    for (int i = 0; i < 10; ++i) CHECK(all[i].after[0].data == std::to_string(i));
    CHECK(all[10].after[0].data == "99");
    CHECK(all[10].after[1].data == "after");
    std::filesystem::remove_all(dir);
}

TEST_CASE("change_spool says where it could not write", "[spool]") {
    CHECK_THROWS_WITH(change_spool("/proc/datavor-no-such-dir"), Catch::Contains("/proc/datavor-no-such-dir"));
}
