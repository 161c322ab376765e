#include "connectors/sqlite/sqlite_prober.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <filesystem>

namespace datavor::connectors::sqlite {

boost::asio::awaitable<probe_report> sqlite_prober::run_checks(probe_request req, probe_progress progress) {
    probe_report rep;
    check_recorder add(rep, std::move(progress));
    const std::filesystem::path path = req.spec.path;
    auto dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
        add("directory", "The target folder exists", check_status::fail, dir.string() + " does not exist",
            "mkdir -p " + dir.string());
        co_return rep;
    }
    add("directory", "The target folder exists", check_status::pass, dir.string(), "");
    // Opening is a local file operation of microseconds: no I/O thread needed.
    try {
        SQLite::Database db(path.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
        rep.server_version = SQLite::VERSION;
        db.exec("PRAGMA schema_version");
        add("writable", "The database file can be opened for writing", check_status::pass,
            path.string() + " (SQLite " + rep.server_version + ")", "");
    } catch (const SQLite::Exception& e) {
        add("writable", "The database file can be opened for writing", check_status::fail, e.what(),
            "Make " + path.string() + " and its folder writable by the user running Datavor.");
    }
    co_return rep;
}

}  // namespace datavor::connectors::sqlite
