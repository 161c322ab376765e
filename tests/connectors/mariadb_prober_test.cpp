// MariaDB prerequisite checks against the two servers that scripts/test starts:
// MARIADB (binlog set up for CDC) and MARIADB_PLAIN (binlog off, MINIMAL row
// image). Setup SQL goes through the `mariadb` client with the server's
// option file. Users and databases made here are unique to the run and are
// dropped at the end of their test, also on failure.
#include "connectors/mariadb/mariadb_prober.hpp"

#include "tests/connectors/probe_support.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

using namespace datavor::connectors;
using namespace datavor::test;
using namespace std::chrono_literals;
using datavor::connectors::mariadb::mariadb_prober;
namespace fs = std::filesystem;

namespace {

struct mariadb_env {
    std::string name;  // MARIADB or MARIADB_PLAIN
    std::string password;
    std::string cnf;
    connection_spec spec;  // from the URL: root@127.0.0.1:PORT/mysql
};

mariadb_env load_env(const std::string& name) {
    mariadb_env e;
    e.name = name;
    const std::string prefix = "DATAVOR_TEST_" + name + "_";
    const std::string url = required_env(prefix + "URL");
    e.password = required_env(prefix + "PASSWORD");
    e.cnf = required_env(prefix + "CNF");
    required_env(prefix + "HOST");
    required_env(prefix + "PORT");
    required_env(prefix + "USER");
    auto parsed = parse_connection_url(url);
    INFO(prefix << "URL=" << url);
    REQUIRE(parsed.has_value());
    e.spec = parsed->spec;
    CHECK(e.spec.kind == db_kind::mariadb);
    CHECK(std::to_string(e.spec.port) == required_env(prefix + "PORT"));
    return e;
}

std::string sql_literal(const std::string& s) {  // written here, not with quote_mysql_literal, to test that one
    std::string out = "'";
    for (char c : s) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

// Runs SQL as root through the mariadb client; remembers cleanup statements
// and runs them (newest first, errors ignored) when the test ends.
class mariadb_admin {
public:
    explicit mariadb_admin(mariadb_env e) : env_(std::move(e)) {
        std::string tmpl = (fs::temp_directory_path() / "datavor-mariadb-test.XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        dir_ = tmpl;
    }
    mariadb_admin(const mariadb_admin&) = delete;
    mariadb_admin& operator=(const mariadb_admin&) = delete;
    ~mariadb_admin() {
        for (auto it = cleanup_.rbegin(); it != cleanup_.rend(); ++it) run(*it);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    void exec(const std::string& sql) {
        std::string out;
        if (!run(sql, &out)) FAIL("setup SQL failed on " << env_.name << ": " << sql << "\n" << out);
    }
    void on_cleanup(std::string sql) { cleanup_.push_back(std::move(sql)); }

    // 'user'@'%' identified by password; dropped at the end.
    std::string create_user(const std::string& user, const std::string& password) {
        const std::string account = sql_literal(user) + "@'%'";
        on_cleanup("DROP USER IF EXISTS " + account);
        exec("CREATE USER " + account + " IDENTIFIED BY " + sql_literal(password));
        return account;
    }
    void create_database(const std::string& db) {
        on_cleanup("DROP DATABASE IF EXISTS `" + db + "`");
        exec("CREATE DATABASE `" + db + "`");
    }

private:
    bool run(const std::string& sql, std::string* output = nullptr) {
        const fs::path in = dir_ / "in.sql", out = dir_ / "out.txt";
        {
            std::string text = sql;
            while (!text.empty() && text.back() == ' ') text.pop_back();
            if (text.empty() || text.back() != ';') text += ';';
            std::ofstream f(in);
            f << text << "\n";
        }
        const std::string cmd = "mariadb --defaults-file='" + env_.cnf + "' --batch < '" + in.string() + "' > '" +
                                out.string() + "' 2>&1";
        const int rc = std::system(cmd.c_str());
        if (output) {
            std::ifstream f(out);
            std::stringstream ss;
            ss << f.rdbuf();
            *output = ss.str();
        }
        return rc == 0;
    }

    mariadb_env env_;
    fs::path dir_;
    std::vector<std::string> cleanup_;
};

probe_request request_for(const connection_spec& spec, std::optional<std::string> password,
                          std::vector<std::string> tables = {}) {
    return probe_request{spec, std::move(password), std::move(tables), 10s};
}

}  // namespace

TEST_CASE("root against the CDC-ready MariaDB passes every binlog check", "[mariadb][mariadb_prober]") {
    auto env = load_env("MARIADB");
    mariadb_prober prober;
    std::vector<std::string> progress;
    auto rep = run_probe(prober, request_for(env.spec, env.password), &progress);
    INFO(describe(rep));
    for (const char* id : {"reachable", "version", "log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata",
                           "replication_grants", "select_privilege"})
        CHECK(check(rep, id).status == check_status::pass);
    CHECK(check(rep, "tls").status == check_status::warn);
    CHECK(rep.ok());
    CHECK(rep.server_version.find("MariaDB") != std::string::npos);
    std::vector<std::string> ids;
    for (const auto& c : rep.checks) ids.push_back(c.id);
    CHECK(progress == ids);
}

TEST_CASE("MariaDB without a CDC binlog fails log_bin, binlog_format, binlog_row_image and binlog_row_metadata, each fix naming its setting",
          "[mariadb][mariadb_prober][acceptance]") {
    auto env = load_env("MARIADB_PLAIN");
    mariadb_prober prober;
    auto rep = run_probe(prober, request_for(env.spec, env.password));
    INFO(describe(rep));
    CHECK(failed_ids(rep) ==
          std::vector<std::string>{"log_bin", "binlog_format", "binlog_row_image", "binlog_row_metadata"});
    CHECK(check(rep, "log_bin").fix.find("log_bin") != std::string::npos);
    CHECK(check(rep, "binlog_format").fix.find("SET GLOBAL binlog_format = 'ROW';") != std::string::npos);
    CHECK(check(rep, "binlog_format").fix.find("binlog_format = ROW") != std::string::npos);
    CHECK(check(rep, "binlog_row_image").fix.find("SET GLOBAL binlog_row_image = 'FULL';") != std::string::npos);
    CHECK(check(rep, "binlog_row_metadata").fix.find("SET GLOBAL binlog_row_metadata = 'FULL';") != std::string::npos);
    CHECK(check(rep, "binlog_row_image").detail.find("MINIMAL") != std::string::npos);
    CHECK(check(rep, "reachable").status == check_status::pass);
    CHECK(check(rep, "replication_grants").status == check_status::pass);
}

TEST_CASE("a user with only SELECT fails replication_grants with the exact GRANT, and passes once it is applied",
          "[mariadb][mariadb_prober][acceptance]") {
    auto env = load_env("MARIADB");
    mariadb_admin admin(env);
    const std::string user = "dv_sel_" + run_suffix(), pw = "pw-" + run_suffix(), db = "dv_db_" + run_suffix();
    admin.create_database(db);
    admin.exec("CREATE TABLE `" + db + "`.orders (id INT PRIMARY KEY, note TEXT)");
    const std::string account = admin.create_user(user, pw);
    admin.exec("GRANT SELECT ON `" + db + "`.* TO " + account);

    auto spec = env.spec;
    spec.user = user;
    spec.database = db;
    mariadb_prober prober;
    auto rep = run_probe(prober, request_for(spec, pw, {"orders"}));
    INFO(describe(rep));
    CHECK(failed_ids(rep) == std::vector<std::string>{"replication_grants"});
    const auto& grants = check(rep, "replication_grants");
    CHECK(grants.detail == "missing: RELOAD, REPLICATION SLAVE, BINLOG MONITOR");
    CHECK(grants.fix == "GRANT RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '" + user + "'@'%';");
    CHECK(check(rep, "select_privilege").status == check_status::pass);
    CHECK(check(rep, "tables_exist").status == check_status::pass);

    // With RELOAD given, only the rest is asked for.
    admin.exec("GRANT RELOAD ON *.* TO " + account);
    auto partial = run_probe(prober, request_for(spec, pw, {"orders"}));
    INFO("after GRANT RELOAD:\n" << describe(partial));
    CHECK(check(partial, "replication_grants").detail == "missing: REPLICATION SLAVE, BINLOG MONITOR");
    CHECK(check(partial, "replication_grants").fix ==
          "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '" + user + "'@'%';");

    // The suggested statement, run as given, is enough.
    admin.exec(check(partial, "replication_grants").fix);
    auto after = run_probe(prober, request_for(spec, pw, {"orders"}));
    INFO("after the fix:\n" << describe(after));
    CHECK(check(after, "replication_grants").status == check_status::pass);
    CHECK(after.ok());
}

TEST_CASE("a user with no privilege on a table gets a GRANT SELECT fix that works", "[mariadb][mariadb_prober]") {
    auto env = load_env("MARIADB");
    mariadb_admin admin(env);
    const std::string user = "dv_nosel_" + run_suffix(), pw = "pw-" + run_suffix(), db = "dv_db2_" + run_suffix();
    admin.create_database(db);
    admin.exec("CREATE TABLE `" + db + "`.items (id INT PRIMARY KEY)");
    const std::string account = admin.create_user(user, pw);
    admin.exec("GRANT RELOAD, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO " + account);

    auto spec = env.spec;
    spec.user = user;
    spec.database = "";
    mariadb_prober prober;
    auto rep = run_probe(prober, request_for(spec, pw, {db + ".items"}));
    INFO(describe(rep));
    // information_schema hides the table from this account, so it cannot tell
    // "missing" from "not readable": both checks fail and the GRANT is offered.
    const auto& sel = check(rep, "select_privilege");
    CHECK(sel.status == check_status::fail);
    CHECK(sel.fix == "GRANT SELECT ON `" + db + "`.`items` TO '" + user + "'@'%'; ");
    CHECK(check(rep, "tables_exist").status == check_status::fail);
    CHECK(check(rep, "tables_exist").fix.find("select_privilege") != std::string::npos);

    admin.exec(sel.fix);
    auto after = run_probe(prober, request_for(spec, pw, {db + ".items"}));
    INFO("after the fix:\n" << describe(after));
    CHECK(check(after, "select_privilege").status == check_status::pass);
    CHECK(check(after, "tables_exist").status == check_status::pass);
    CHECK(after.ok());
}

TEST_CASE("a missing MariaDB table fails tables_exist and names it", "[mariadb][mariadb_prober]") {
    auto env = load_env("MARIADB");
    mariadb_prober prober;
    auto rep = run_probe(prober, request_for(env.spec, env.password, {"mysql.db", "mysql.dv_no_such_table"}));
    INFO(describe(rep));
    CHECK(failed_ids(rep) == std::vector<std::string>{"tables_exist"});
    CHECK(check(rep, "tables_exist").detail == "not found: mysql.dv_no_such_table");
    CHECK(check(rep, "select_privilege").status == check_status::pass);
}

TEST_CASE("a user whose name holds a quote and an @ gets GRANTs that run as given", "[mariadb][mariadb_prober]") {
    auto env = load_env("MARIADB");
    mariadb_admin admin(env);
    const std::string user = "dv'q@x_" + run_suffix(), pw = "pw-" + run_suffix(), db = "dv_db3_" + run_suffix();
    admin.create_database(db);
    admin.exec("CREATE TABLE `" + db + "`.t (id INT PRIMARY KEY)");
    admin.create_user(user, pw);
    auto spec = env.spec;
    spec.user = user;
    spec.database = "";  // without any privilege on db, naming it in the URL would refuse the login
    mariadb_prober prober;
    auto rep = run_probe(prober, request_for(spec, pw, {db + ".t"}));
    INFO(describe(rep));
    const auto& grants = check(rep, "replication_grants");
    REQUIRE(grants.status == check_status::fail);
    CHECK(grants.detail == "missing: RELOAD, REPLICATION SLAVE, BINLOG MONITOR");
    REQUIRE(check(rep, "select_privilege").status == check_status::fail);
    admin.exec(grants.fix);
    admin.exec(check(rep, "select_privilege").fix);
    auto after = run_probe(prober, request_for(spec, pw, {db + ".t"}));
    INFO("after the fixes:\n" << describe(after));
    CHECK(check(after, "replication_grants").status == check_status::pass);
    CHECK(check(after, "select_privilege").status == check_status::pass);
    CHECK(after.ok());
}

TEST_CASE("a wrong MariaDB password fails reachable and no other check runs", "[mariadb][mariadb_prober]") {
    auto env = load_env("MARIADB");
    mariadb_prober prober;
    auto rep = run_probe(prober, request_for(env.spec, std::string("not-the-password")));
    INFO(describe(rep));
    REQUIRE(rep.checks.size() == 1);
    CHECK(rep.checks[0].id == "reachable");
    CHECK(rep.checks[0].status == check_status::fail);
    CHECK(rep.checks[0].detail.find("Access denied") != std::string::npos);
    CHECK(rep.server_version.empty());
}

TEST_CASE("a listening but silent MariaDB address fails reachable once the 1 s timeout passes", "[mariadb_prober]") {
    boost::asio::io_context listener_io;
    boost::asio::ip::tcp::acceptor silent(
        listener_io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    silent.listen();  // handshakes complete in the kernel; no greeting ever comes
    connection_spec spec;
    spec.kind = db_kind::mariadb;
    spec.host = "127.0.0.1";
    spec.port = silent.local_endpoint().port();
    spec.user = "nobody";
    mariadb_prober prober;
    const auto t0 = std::chrono::steady_clock::now();
    auto rep = run_probe(prober, probe_request{spec, std::string("x"), {}, 1s});
    const double took = seconds_since(t0);
    INFO(describe(rep) << "took " << took << " s");
    REQUIRE(rep.checks.size() == 1);
    CHECK(rep.checks[0].id == "reachable");
    CHECK(rep.checks[0].status == check_status::fail);
    CHECK(took < 4.0);
}

TEST_CASE("cancelling a MariaDB probe of a silent address ends it promptly with operation_aborted", "[mariadb_prober]") {
    namespace asio = boost::asio;
    asio::io_context listener_io;
    asio::ip::tcp::acceptor silent(listener_io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    silent.listen();
    connection_spec spec;
    spec.kind = db_kind::mariadb;
    spec.host = "127.0.0.1";
    spec.port = silent.local_endpoint().port();
    spec.user = "nobody";

    asio::io_context io;
    asio::cancellation_signal cancel;
    bool done = false;
    std::exception_ptr error;
    mariadb_prober prober;
    asio::co_spawn(io, prober.run_checks(probe_request{spec, std::string("x"), {}, 30s}, {}),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, probe_report) {
                       done = true;
                       error = e;
                   }));
    asio::steady_timer later(io, 200ms);
    later.async_wait([&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    const auto t0 = std::chrono::steady_clock::now();
    io.run_for(10s);
    const double took = seconds_since(t0);
    INFO("took " << took << " s");
    REQUIRE(done);
    CHECK(took < 2.0);
    REQUIRE(error);
    try {
        std::rethrow_exception(error);
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == asio::error::operation_aborted);
    } catch (const std::exception& e) {
        FAIL("expected operation_aborted, got: " << e.what());
    }
}
