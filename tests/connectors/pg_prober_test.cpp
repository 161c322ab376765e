// PostgreSQL prerequisite checks against the server that scripts/test starts
// (DATAVOR_TEST_PG_*). Every role, schema and table made here has a name
// unique to the run and is dropped at the end of its test, also on failure.
// Tests tagged [pg] FAIL when the server's variables are missing; the others
// only need loopback sockets.
#include "connectors/pg/pg_prober.hpp"

#include "server/composition.hpp"
#include "tests/connectors/probe_support.hpp"
#include "tests/server/session_harness.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <libpq-fe.h>

#include <filesystem>
#include <optional>
#include <typeinfo>
#include <vector>

namespace asio = boost::asio;
using namespace datavor::connectors;
using namespace datavor::test;
using namespace std::chrono_literals;
using datavor::connectors::pg::pg_prober;

namespace {

struct pg_env {
    std::string password;
    connection_spec spec;  // from DATAVOR_TEST_PG_URL (user postgres, database postgres)
};

pg_env load_pg_env() {
    pg_env e;
    const std::string url = required_env("DATAVOR_TEST_PG_URL");
    e.password = required_env("DATAVOR_TEST_PG_PASSWORD");
    required_env("DATAVOR_TEST_PG_HOST");
    required_env("DATAVOR_TEST_PG_PORT");
    required_env("DATAVOR_TEST_PG_USER");
    auto parsed = parse_connection_url(url);
    INFO("DATAVOR_TEST_PG_URL=" << url);
    REQUIRE(parsed.has_value());
    e.spec = parsed->spec;
    CHECK(e.spec.host == required_env("DATAVOR_TEST_PG_HOST"));
    CHECK(std::to_string(e.spec.port) == required_env("DATAVOR_TEST_PG_PORT"));
    return e;
}

std::string ident(const std::string& name) {  // written here, not with quote_pg_ident, to test that one
    std::string out = "\"";
    for (char c : name) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

// A superuser libpq connection for setup SQL. Remembers cleanup statements and
// runs them (newest first, errors ignored) when the test ends.
class pg_admin {
public:
    explicit pg_admin(const pg_env& e) {
        const std::string port = std::to_string(e.spec.port);
        const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout", nullptr};
        const char* values[] = {e.spec.host.c_str(), port.c_str(), e.spec.user.c_str(), e.password.c_str(),
                                e.spec.database.c_str(), "10", nullptr};
        conn_ = PQconnectdbParams(keys, values, 0);
        if (PQstatus(conn_) != CONNECTION_OK) {
            const std::string err = PQerrorMessage(conn_);
            PQfinish(conn_);
            conn_ = nullptr;
            FAIL("admin connection to PostgreSQL failed: " << err);
        }
    }
    pg_admin(const pg_admin&) = delete;
    pg_admin& operator=(const pg_admin&) = delete;
    ~pg_admin() {
        if (!conn_) return;
        for (auto it = cleanup_.rbegin(); it != cleanup_.rend(); ++it) PQclear(PQexec(conn_, it->c_str()));
        PQfinish(conn_);
    }

    void exec(const std::string& sql) {
        PGresult* r = PQexec(conn_, sql.c_str());
        const auto st = PQresultStatus(r);
        std::string err = PQresultErrorMessage(r);
        PQclear(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) FAIL("setup SQL failed: " << sql << "\n" << err);
    }
    void on_cleanup(std::string sql) { cleanup_.push_back(std::move(sql)); }

    // A LOGIN role with a password; dropped (with everything it owns) at the end.
    void create_role(const std::string& name, const std::string& password) {
        on_cleanup("DROP ROLE IF EXISTS " + ident(name));
        on_cleanup("DROP OWNED BY " + ident(name) + " CASCADE");
        exec("CREATE ROLE " + ident(name) + " LOGIN PASSWORD '" + password + "'");
    }
    // A table in public (or `schema`), dropped at the end.
    void create_table(const std::string& schema, const std::string& name, const std::string& columns) {
        on_cleanup("DROP TABLE IF EXISTS " + ident(schema) + "." + ident(name));
        exec("CREATE TABLE " + ident(schema) + "." + ident(name) + " (" + columns + ")");
    }

private:
    PGconn* conn_ = nullptr;
    std::vector<std::string> cleanup_;
};

probe_request request_for(const pg_env& e, std::optional<std::string> password, std::vector<std::string> tables = {},
                          std::chrono::seconds timeout = 10s) {
    return probe_request{e.spec, std::move(password), std::move(tables), timeout};
}

// A loopback port on which nothing listens.
std::uint16_t closed_port() {
    asio::io_context io;
    asio::ip::tcp::acceptor a(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto port = a.local_endpoint().port();
    a.close();
    return port;
}

connection_spec loopback_spec(std::uint16_t port) {
    connection_spec s;
    s.kind = db_kind::postgresql;
    s.host = "127.0.0.1";
    s.port = port;
    s.user = "nobody";
    s.database = "postgres";
    return s;
}

}  // namespace

TEST_CASE("a superuser with the password from the environment passes the server checks and gets a TLS warning on loopback",
          "[pg][pg_prober]") {
    auto env = load_pg_env();
    pg_prober prober;
    std::vector<std::string> progress;
    auto rep = run_probe(prober, request_for(env, env.password), &progress);
    INFO(describe(rep));
    for (const char* id : {"reachable", "wal_level", "replication_role", "version", "replication_slots", "wal_senders"})
        CHECK(check(rep, id).status == check_status::pass);
    CHECK(check(rep, "tls").status == check_status::warn);
    CHECK_FALSE(check(rep, "tls").fix.empty());
    CHECK(check(rep, "tables_exist").status == check_status::skip);
    CHECK(rep.ok());
    CHECK_FALSE(rep.server_version.empty());
    for (const auto& c : rep.checks)
        if (c.status == check_status::pass) CHECK(c.fix.empty());
    // Progress reports every check, in report order.
    std::vector<std::string> ids;
    for (const auto& c : rep.checks) ids.push_back(c.id);
    CHECK(progress == ids);
}

TEST_CASE("a LOGIN role without REPLICATION that owns its tables fails only replication_role, and its fix works",
          "[pg][pg_prober][acceptance]") {
    auto env = load_pg_env();
    pg_admin admin(env);
    const std::string role = "dv_norepl_" + run_suffix(), pw = "pw-" + run_suffix();
    const std::string t1 = "dv_orders_" + run_suffix(), t2 = "dv_items_" + run_suffix();
    admin.create_role(role, pw);
    admin.exec("GRANT CREATE ON DATABASE " + ident(env.spec.database) + " TO " + ident(role));
    admin.on_cleanup("REVOKE CREATE ON DATABASE " + ident(env.spec.database) + " FROM " + ident(role));
    admin.create_table("public", t1, "id bigint PRIMARY KEY, note text");
    admin.create_table("public", t2, "id bigint PRIMARY KEY, order_id bigint");
    admin.exec("ALTER TABLE public." + ident(t1) + " OWNER TO " + ident(role));
    admin.exec("ALTER TABLE public." + ident(t2) + " OWNER TO " + ident(role));

    auto spec_env = env;
    spec_env.spec.user = role;
    pg_prober prober;
    auto rep = run_probe(prober, request_for(spec_env, pw, {t1, "public." + t2}));
    INFO(describe(rep));
    CHECK(failed_ids(rep) == std::vector<std::string>{"replication_role"});
    const auto& c = check(rep, "replication_role");
    CHECK(c.fix == "ALTER ROLE \"" + role + "\" REPLICATION;");
    CHECK(check(rep, "tables_exist").status == check_status::pass);
    CHECK(check(rep, "select_privilege").status == check_status::pass);
    CHECK(check(rep, "publication").status == check_status::pass);
    CHECK(check(rep, "replica_identity").status == check_status::pass);

    // Applying the suggested fix, exactly as given, makes the source ready.
    admin.exec(c.fix);
    auto after = run_probe(prober, request_for(spec_env, pw, {t1, "public." + t2}));
    INFO("after the fix:\n" << describe(after));
    CHECK(after.ok());
    CHECK(check(after, "replication_role").status == check_status::pass);
}

TEST_CASE("a role with a hostile name gets correctly quoted fixes that run as given", "[pg][pg_prober]") {
    auto env = load_pg_env();
    pg_admin admin(env);
    const std::string role = "dv\"evil; drop_" + run_suffix(), pw = "pw-" + run_suffix();
    const std::string table = "dv_plain_" + run_suffix();
    admin.create_role(role, pw);
    admin.create_table("public", table, "id int PRIMARY KEY");  // owned by postgres: the role may not read it

    auto role_env = env;
    role_env.spec.user = role;
    pg_prober prober;
    auto rep = run_probe(prober, request_for(role_env, pw, {table}));
    INFO(describe(rep));
    const std::string qrole = "\"dv\"\"evil; drop_" + run_suffix() + "\"";
    CHECK(check(rep, "replication_role").status == check_status::fail);
    CHECK(check(rep, "replication_role").fix == "ALTER ROLE " + qrole + " REPLICATION;");
    CHECK(check(rep, "select_privilege").status == check_status::fail);
    CHECK(check(rep, "select_privilege").fix == "GRANT SELECT ON TABLE \"public\".\"" + table + "\" TO " + qrole + "; ");
    CHECK(check(rep, "publication").status == check_status::fail);

    admin.exec(check(rep, "replication_role").fix);
    admin.exec(check(rep, "select_privilege").fix);
    auto after = run_probe(prober, request_for(role_env, pw, {table}));
    INFO("after the fixes:\n" << describe(after));
    CHECK(check(after, "replication_role").status == check_status::pass);
    CHECK(check(after, "select_privilege").status == check_status::pass);
}

TEST_CASE("a table without primary key fails replica_identity with a REPLICA IDENTITY FULL fix", "[pg][pg_prober]") {
    auto env = load_pg_env();
    pg_admin admin(env);
    const std::string keyed = "dv_keyed_" + run_suffix(), bare = "dv_bare_" + run_suffix(),
                      nothing = "dv_nothing_" + run_suffix();
    admin.create_table("public", keyed, "id int PRIMARY KEY");
    admin.create_table("public", bare, "id int, v text");
    admin.create_table("public", nothing, "id int PRIMARY KEY");
    admin.exec("ALTER TABLE public." + ident(nothing) + " REPLICA IDENTITY NOTHING");

    pg_prober prober;
    auto rep = run_probe(prober, request_for(env, env.password, {keyed, "public." + bare, nothing}));
    INFO(describe(rep));
    CHECK(failed_ids(rep) == std::vector<std::string>{"replica_identity"});
    const auto& c = check(rep, "replica_identity");
    CHECK(c.fix.find("ALTER TABLE \"public\".\"" + bare + "\" REPLICA IDENTITY FULL;") != std::string::npos);
    CHECK(c.fix.find("ALTER TABLE \"public\".\"" + nothing + "\" REPLICA IDENTITY FULL;") != std::string::npos);
    CHECK(c.fix.find(keyed) == std::string::npos);
    CHECK(c.detail.find(bare) != std::string::npos);

    admin.exec(c.fix);
    auto after = run_probe(prober, request_for(env, env.password, {keyed, "public." + bare, nothing}));
    INFO("after the fix:\n" << describe(after));
    CHECK(check(after, "replica_identity").status == check_status::pass);
    CHECK(after.ok());
}

TEST_CASE("tables in a mixed-case schema are found by their exact names", "[pg][pg_prober]") {
    auto env = load_pg_env();
    pg_admin admin(env);
    const std::string schema = "Dv_Schema_" + run_suffix();
    admin.on_cleanup("DROP SCHEMA IF EXISTS " + ident(schema) + " CASCADE");
    admin.exec("CREATE SCHEMA " + ident(schema));
    admin.create_table(schema, "MixedCase", "id int PRIMARY KEY");
    pg_prober prober;
    auto rep = run_probe(prober, request_for(env, env.password, {schema + ".MixedCase"}));
    INFO(describe(rep));
    CHECK(check(rep, "tables_exist").status == check_status::pass);
    CHECK(rep.ok());
}

TEST_CASE("a missing table fails tables_exist and names it", "[pg][pg_prober]") {
    auto env = load_pg_env();
    pg_admin admin(env);
    const std::string present = "dv_present_" + run_suffix(), absent = "public.dv_absent_" + run_suffix();
    admin.create_table("public", present, "id int PRIMARY KEY");
    pg_prober prober;
    auto rep = run_probe(prober, request_for(env, env.password, {present, absent}));
    INFO(describe(rep));
    CHECK(failed_ids(rep) == std::vector<std::string>{"tables_exist"});
    CHECK(check(rep, "tables_exist").detail.find(absent) != std::string::npos);
    CHECK(check(rep, "tables_exist").detail.find(present) == std::string::npos);
    CHECK_FALSE(check(rep, "tables_exist").fix.empty());
}

TEST_CASE("a wrong password fails reachable and no other check runs", "[pg][pg_prober]") {
    auto env = load_pg_env();
    pg_prober prober;
    auto rep = run_probe(prober, request_for(env, std::string("not-the-password")));
    INFO(describe(rep));
    REQUIRE(rep.checks.size() == 1);
    CHECK(rep.checks[0].id == "reachable");
    CHECK(rep.checks[0].status == check_status::fail);
    CHECK(rep.checks[0].detail.find("password authentication failed") != std::string::npos);
    CHECK_FALSE(rep.checks[0].fix.empty());
    CHECK(rep.server_version.empty());
    CHECK_FALSE(rep.ok());
}

TEST_CASE("sslmode=require against a server without TLS fails reachable", "[pg][pg_prober]") {
    auto env = load_pg_env();
    env.spec.params["sslmode"] = "require";
    pg_prober prober;
    auto rep = run_probe(prober, request_for(env, env.password));
    INFO(describe(rep));
    REQUIRE(rep.checks.size() == 1);
    CHECK(rep.checks[0].id == "reachable");
    CHECK(rep.checks[0].status == check_status::fail);
}

TEST_CASE("a multi-host URL whose first host refuses connects to the next one", "[pg][pg_prober]") {
    // libpq closes the refused socket and opens the next one, which usually gets
    // the same descriptor number: the readiness adaptor must notice the new socket.
    auto env = load_pg_env();
    const std::string url = "postgresql://" + env.spec.user + "@127.0.0.1,127.0.0.1/" + env.spec.database +
                            "?port=" + std::to_string(closed_port()) + "," + std::to_string(env.spec.port);
    auto parsed = parse_connection_url(url);
    INFO(url);
    REQUIRE(parsed.has_value());
    pg_prober prober;
    const auto t0 = std::chrono::steady_clock::now();
    auto rep = run_probe(prober, probe_request{parsed->spec, env.password, {}, 5s});
    INFO(describe(rep) << "took " << seconds_since(t0) << " s");
    CHECK(check(rep, "reachable").status == check_status::pass);
    CHECK(seconds_since(t0) < 2.0);
}

TEST_CASE("a closed port fails reachable and no other check runs", "[pg_prober]") {
    pg_prober prober;
    const auto t0 = std::chrono::steady_clock::now();
    auto rep = run_probe(prober, probe_request{loopback_spec(closed_port()), std::string("x"), {}, 5s});
    INFO(describe(rep));
    REQUIRE(rep.checks.size() == 1);
    CHECK(rep.checks[0].id == "reachable");
    CHECK(rep.checks[0].status == check_status::fail);
    CHECK(rep.checks[0].detail.find("refused") != std::string::npos);
    CHECK(seconds_since(t0) < 2.0);
}

TEST_CASE("a listening but silent server fails reachable once the 1 s timeout passes", "[pg_prober]") {
    asio::io_context listener_io;
    asio::ip::tcp::acceptor silent(listener_io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    silent.listen();  // the kernel completes handshakes; nobody ever reads or answers
    pg_prober prober;
    const auto t0 = std::chrono::steady_clock::now();
    auto rep = run_probe(prober, probe_request{loopback_spec(silent.local_endpoint().port()), std::string("x"), {}, 1s});
    const double took = seconds_since(t0);
    INFO(describe(rep) << "took " << took << " s");
    REQUIRE(rep.checks.size() == 1);
    CHECK(rep.checks[0].id == "reachable");
    CHECK(rep.checks[0].status == check_status::fail);
    CHECK(rep.checks[0].detail.find("timed out") != std::string::npos);
    CHECK(took >= 0.9);
    CHECK(took < 3.0);
}

TEST_CASE("cancelling a probe of a silent server ends it promptly", "[pg_prober]") {
    asio::io_context listener_io;
    asio::ip::tcp::acceptor silent(listener_io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    silent.listen();

    asio::io_context io;
    asio::cancellation_signal cancel;
    bool done = false;
    std::exception_ptr error;
    std::optional<probe_report> report;
    pg_prober prober;
    asio::co_spawn(io, prober.run_checks(probe_request{loopback_spec(silent.local_endpoint().port()), std::string("x"), {}, 30s}, {}),
                   asio::bind_cancellation_slot(cancel.slot(), [&](std::exception_ptr e, probe_report r) {
                       done = true;
                       error = e;
                       if (!e) report = std::move(r);
                   }));
    asio::steady_timer later(io, 200ms);
    later.async_wait([&](boost::system::error_code) { cancel.emit(asio::cancellation_type::terminal); });
    const auto t0 = std::chrono::steady_clock::now();
    io.run_for(10s);
    const double took = seconds_since(t0);
    INFO("took " << took << " s");
    REQUIRE(done);
    CHECK(took < 2.0);
    // Cancellation surfaces as Asio's operation_aborted (prerequisites.hpp, fd_readiness.hpp).
    REQUIRE(error);
    try {
        std::rethrow_exception(error);
    } catch (const boost::system::system_error& e) {
        CHECK(e.code() == asio::error::operation_aborted);
    } catch (const std::exception& e) {
        FAIL("expected operation_aborted, got " << typeid(e).name() << ": " << e.what());
    }
}

TEST_CASE("test_connection through MCP reads the stored password and reports each check as progress",
          "[pg][pg_prober][mcp]") {
    auto env = load_pg_env();
    std::string tmpl = (std::filesystem::temp_directory_path() / "datavor-pg-mcp.XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    struct remove_dir {
        std::string path;
        ~remove_dir() {
            std::error_code ec;
            std::filesystem::remove_all(path, ec);
        }
    } cleanup{tmpl};

    datavor::server::application app(std::filesystem::path(tmpl) / "home");
    session_harness h{[&app](datavor::server::mcp_server& s) { app.register_product(s); }};
    h.initialize();
    const std::string url = required_env("DATAVOR_TEST_PG_URL");
    const auto& added = h.call("1", "tools/call",
                               R"({"name":"add_connection","arguments":{"name":"pg","url":")" + url +
                                   R"(","password":")" + env.password + R"("}})");
    REQUIRE_FALSE(is_error_result(added));
    const auto& tested = h.call("2", "tools/call",
                                R"({"name":"test_connection","arguments":{"name":"pg","timeout_seconds":5},)"
                                R"("_meta":{"progressToken":99}})");
    REQUIRE_FALSE(is_error_result(tested));
    const auto& sc = result_of(tested)["structuredContent"];
    INFO(tested.text);
    CHECK(sc["ok"].GetBool());
    CHECK(std::string(sc["kind"].GetString()) == "postgresql");
    CHECK(std::string(sc["checks"][0]["id"].GetString()) == "reachable");
    CHECK(std::string(sc["checks"][0]["status"].GetString()) == "pass");
    CHECK(h.notifications("notifications/progress").size() == sc["checks"].Size());
    for (const auto& m : h.messages()) CHECK(m.text.find(env.password) == std::string::npos);
}
