#include "connectors/sqlite/sqlite_prober.hpp"

#include "tests/connectors/probe_support.hpp"

#include "tests/connectors/result_string_maker.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace datavor::connectors;
using datavor::connectors::sqlite::sqlite_prober;
namespace fs = std::filesystem;
using datavor::test::check;
using datavor::test::run_probe;

namespace {

struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "datavor-sqlite-test.XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

probe_request sqlite_request(const fs::path& file) {
    auto parsed = parse_connection_url("sqlite:" + file.string());
    REQUIRE(parsed);
    return probe_request{parsed->spec, std::nullopt, {}, std::chrono::seconds(5)};
}

}  // namespace

TEST_CASE("sqlite prober passes for a new file in an existing folder and creates it", "[sqlite]") {
    temp_dir dir;
    const auto file = dir.path / "target.db";
    sqlite_prober prober;
    std::vector<std::string> progress;
    auto rep = run_probe(prober, sqlite_request(file), &progress);
    INFO(datavor::test::describe(rep));
    CHECK(rep.ok());
    CHECK(check(rep, "directory").status == check_status::pass);
    CHECK(check(rep, "writable").status == check_status::pass);
    CHECK(check(rep, "writable").fix.empty());
    CHECK_FALSE(rep.server_version.empty());
    CHECK(fs::exists(file));
    CHECK(progress == std::vector<std::string>{"directory", "writable"});
}

TEST_CASE("sqlite prober fails directory with a mkdir fix when the folder is missing", "[sqlite]") {
    temp_dir dir;
    const auto file = dir.path / "no" / "such" / "target.db";
    sqlite_prober prober;
    auto rep = run_probe(prober, sqlite_request(file));
    INFO(datavor::test::describe(rep));
    CHECK_FALSE(rep.ok());
    REQUIRE(rep.checks.size() == 1);
    CHECK(rep.checks[0].id == "directory");
    CHECK(rep.checks[0].status == check_status::fail);
    CHECK(rep.checks[0].fix == "mkdir -p " + (dir.path / "no" / "such").string());
    CHECK_FALSE(fs::exists(dir.path / "no"));
}

TEST_CASE("sqlite prober fails writable when the path is a folder", "[sqlite]") {
    temp_dir dir;
    fs::create_directory(dir.path / "a_folder");
    sqlite_prober prober;
    auto rep = run_probe(prober, sqlite_request(dir.path / "a_folder"));
    INFO(datavor::test::describe(rep));
    CHECK(check(rep, "directory").status == check_status::pass);
    CHECK(check(rep, "writable").status == check_status::fail);
    CHECK_FALSE(check(rep, "writable").fix.empty());
    CHECK_FALSE(rep.ok());
}

TEST_CASE("sqlite prober fails writable when the file is not a SQLite database", "[sqlite]") {
    temp_dir dir;
    const auto file = dir.path / "garbage.db";
    {
        std::ofstream out(file);
        for (int i = 0; i < 200; ++i) out << "this is not a sqlite database file\n";
    }
    sqlite_prober prober;
    auto rep = run_probe(prober, sqlite_request(file));
    INFO(datavor::test::describe(rep));
    CHECK(check(rep, "writable").status == check_status::fail);
    CHECK_FALSE(rep.ok());
}
