#include "engines/context/connections.hpp"
#include "engines/context/context_store.hpp"
#include "engines/context/secret_store.hpp"

#include "tests/connectors/result_string_maker.hpp"

#include "tests/engines/temp_home.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace datavor::engines::context;
using datavor::connectors::db_kind;
using datavor::connectors::url_error;
namespace fs = std::filesystem;

namespace {

using datavor::testing::temp_home;

unsigned mode_of(const fs::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

add_connection_request request(std::string name, std::string url) {
    add_connection_request r;
    r.name = std::move(name);
    r.url = std::move(url);
    return r;
}

// Every file SQLite may have written for context.db.
std::vector<fs::path> database_files(const fs::path& home) {
    std::vector<fs::path> out;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        fs::path p = home / ("context.db" + std::string(suffix));
        if (fs::exists(p)) out.push_back(p);
    }
    return out;
}

}  // namespace

TEST_CASE("a fresh home gets a private folder and context.db at the latest schema version", "[context]") {
    temp_home home;
    context_store store(home.path);
    CHECK(store.schema_version() == context_store::latest_schema_version);
    CHECK(store.path() == home.path / "context.db");
    CHECK(fs::exists(store.path()));
    CHECK(mode_of(home.path) == 0700);
    CHECK(mode_of(store.path()) == 0600);
    CHECK(store.list_connections().empty());
}

TEST_CASE("reopening a home keeps its connections and its schema version", "[context]") {
    temp_home home;
    {
        context_store store(home.path);
        secret_store secrets(home.path);
        REQUIRE(add_connection(store, secrets, request("src", "postgresql://app@db:5432/shop")));
    }
    context_store again(home.path);
    CHECK(again.schema_version() == context_store::latest_schema_version);
    auto all = again.list_connections();
    REQUIRE(all.size() == 1);
    CHECK(all[0].name == "src");
    CHECK(all[0].spec.host == "db");
}

TEST_CASE("connections can be added, listed in name order, found and removed", "[context]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);

    auto b = add_connection(store, secrets, request("b_target", "sqlite:/var/tmp/b.db"));
    REQUIRE(b);
    CHECK(b->created);
    CHECK(b->record.secret_ref == "none");
    auto a = add_connection(store, secrets, request("a_source", "mariadb://root@127.0.0.1:3306/app?ssl-mode=required"));
    REQUIRE(a);
    CHECK(a->created);

    auto all = store.list_connections();
    REQUIRE(all.size() == 2);
    CHECK(all[0].name == "a_source");
    CHECK(all[0].spec.kind == db_kind::mariadb);
    CHECK(all[0].spec.param("ssl-mode") == "required");
    CHECK(all[1].name == "b_target");
    CHECK(all[1].spec.kind == db_kind::sqlite);
    CHECK(all[1].spec.path == "/var/tmp/b.db");
    CHECK(all[0].created_at > 0);
    CHECK(all[0].updated_at >= all[0].created_at);

    auto found = store.find_connection("a_source");
    REQUIRE(found);
    CHECK(found->spec.redacted_url() == "mariadb://root@127.0.0.1:3306/app?ssl-mode=required");
    CHECK_FALSE(store.find_connection("nope"));

    CHECK(remove_connection(store, secrets, "a_source"));
    CHECK_FALSE(remove_connection(store, secrets, "a_source"));
    CHECK_FALSE(store.find_connection("a_source"));
    CHECK(store.list_connections().size() == 1);
}

TEST_CASE("adding the same name and URL twice is harmless", "[context]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);
    auto first = add_connection(store, secrets, request("src", "postgresql://app@db:5432/shop"));
    REQUIRE(first);
    CHECK(first->created);
    auto second = add_connection(store, secrets, request("src", "postgresql://app@db:5432/shop"));
    REQUIRE(second);
    CHECK_FALSE(second->created);
    CHECK(second->record.created_at == first->record.created_at);
    CHECK(store.list_connections().size() == 1);
}

TEST_CASE("a different URL under an existing name needs replace", "[context]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);
    REQUIRE(add_connection(store, secrets, request("src", "postgresql://app@db:5432/shop")));

    auto clash = add_connection(store, secrets, request("src", "postgresql://app@other:5432/shop"));
    REQUIRE_FALSE(clash);
    CHECK(clash.error() == context_error::connection_exists);
    CHECK(store.find_connection("src")->spec.host == "db");

    auto req = request("src", "postgresql://app@other:5432/shop");
    req.replace = true;
    auto replaced = add_connection(store, secrets, req);
    REQUIRE(replaced);
    CHECK_FALSE(replaced->created);
    CHECK(store.find_connection("src")->spec.host == "other");

    // put_connection itself refuses an existing name without replace.
    auto direct = store.put_connection("src", store.find_connection("src")->spec, "none", false);
    REQUIRE_FALSE(direct);
    CHECK(direct.error() == context_error::connection_exists);
}

TEST_CASE("a bad URL is refused with its url_error and nothing is stored", "[context]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);
    auto r = add_connection(store, secrets, request("x", "ftp://h/db"));
    REQUIRE_FALSE(r);
    CHECK(r.error() == url_error::unknown_scheme);
    CHECK(store.list_connections().empty());
}

TEST_CASE("passwords go to secrets.json (0600) and never reach context.db or its WAL", "[context][secrets]") {
    temp_home home;
    const std::string arg_pw = "Arg-Pw-7f3c91e2d5", url_pw = "Url-Pw-b84a0c6e1f", query_pw = "Query-Pw-52d1e07c";
    {
        context_store store(home.path);
        secret_store secrets(home.path);

        auto by_arg = request("by_arg", "postgresql://app@db:5432/shop");
        by_arg.password = arg_pw;
        auto a = add_connection(store, secrets, by_arg);
        REQUIRE(a);
        CHECK(a->record.secret_ref == "secrets_file");

        auto b = add_connection(store, secrets, request("in_url", "mariadb://app:" + url_pw + "@db:3306/app"));
        REQUIRE(b);
        CHECK(b->record.secret_ref == "secrets_file");
        CHECK(b->record.spec.redacted_url() == "mariadb://app@db:3306/app");

        auto c = add_connection(store, secrets, request("in_query", "postgresql://app@db/x?password=" + query_pw));
        REQUIRE(c);
        CHECK(c->record.secret_ref == "secrets_file");

        CHECK(mode_of(secrets.path()) == 0600);
        CHECK(secrets.path() == home.path / "secrets.json");
        CHECK_FALSE(fs::exists(home.path / "secrets.json.tmp"));

        for (const char* name : {"by_arg", "in_url", "in_query"}) {
            auto rec = store.find_connection(name);
            REQUIRE(rec);
            auto pw = resolve_password(*rec, secrets);
            REQUIRE(pw);
            REQUIRE(pw->has_value());
        }
        CHECK(**resolve_password(*store.find_connection("by_arg"), secrets) == arg_pw);
        CHECK(**resolve_password(*store.find_connection("in_url"), secrets) == url_pw);
        CHECK(**resolve_password(*store.find_connection("in_query"), secrets) == query_pw);

        // Check while the store is open (WAL and shm present) and again after it closes.
        auto files = database_files(home.path);
        CHECK(files.size() >= 1);
        for (const auto& f : files) {
            const std::string bytes = slurp(f);
            INFO(f.string());
            for (const auto& pw : {arg_pw, url_pw, query_pw}) CHECK(bytes.find(pw) == std::string::npos);
        }
    }
    for (const auto& f : database_files(home.path)) {
        const std::string bytes = slurp(f);
        INFO(f.string());
        for (const auto& pw : {arg_pw, url_pw, query_pw}) CHECK(bytes.find(pw) == std::string::npos);
    }
    const std::string secrets_text = slurp(home.path / "secrets.json");
    CHECK(secrets_text.find(arg_pw) != std::string::npos);
    CHECK(secrets_text.find(url_pw) != std::string::npos);
}

TEST_CASE("a password argument wins over one embedded in the URL", "[context][secrets]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);
    auto req = request("src", "postgresql://app:from-url@db/x");
    req.password = "from-arg";
    REQUIRE(add_connection(store, secrets, req));
    CHECK(**resolve_password(*store.find_connection("src"), secrets) == "from-arg");
}

TEST_CASE("removing or replacing a connection removes its stored password", "[context][secrets]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);
    auto req = request("src", "postgresql://app@db/x");
    req.password = "to-be-forgotten-1";
    REQUIRE(add_connection(store, secrets, req));
    CHECK(secrets.get("connection:src") == std::optional<std::string>("to-be-forgotten-1"));
    CHECK(remove_connection(store, secrets, "src"));
    CHECK_FALSE(secrets.get("connection:src"));
    CHECK(slurp(secrets.path()).find("to-be-forgotten-1") == std::string::npos);

    req.password = "to-be-forgotten-2";
    REQUIRE(add_connection(store, secrets, req));
    auto without = request("src", "postgresql://app@db/x");
    without.replace = true;
    auto r = add_connection(store, secrets, without);
    REQUIRE(r);
    CHECK(r->record.secret_ref == "pgpass");
    CHECK_FALSE(secrets.get("connection:src"));
    CHECK(slurp(secrets.path()).find("to-be-forgotten-2") == std::string::npos);
}

TEST_CASE("an env: secret_ref resolves from the environment and errors when the variable is unset", "[context][secrets]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);
    const std::string var = "DATAVOR_TEST_CTX_PW_" + std::to_string(::getpid());
    auto req = request("envsrc", "postgresql://app@db/x");
    req.password_env = var;
    auto r = add_connection(store, secrets, req);
    REQUIRE(r);
    CHECK(r->record.secret_ref == "env:" + var);
    const bool secret_written = fs::exists(secrets.path()) && slurp(secrets.path()).find("envsrc") != std::string::npos;
    CHECK_FALSE(secret_written);

    ::unsetenv(var.c_str());
    auto unset = resolve_password(*store.find_connection("envsrc"), secrets);
    REQUIRE_FALSE(unset);
    CHECK(unset.error() == secret_error::env_var_unset);

    ::setenv(var.c_str(), "from-the-environment", 1);
    auto set = resolve_password(*store.find_connection("envsrc"), secrets);
    ::unsetenv(var.c_str());
    REQUIRE(set);
    REQUIRE(set->has_value());
    CHECK(**set == "from-the-environment");
}

TEST_CASE("without a password postgresql uses pgpass and other kinds use none", "[context][secrets]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);
    auto pg = add_connection(store, secrets, request("pg", "postgresql://app@db/x"));
    auto my = add_connection(store, secrets, request("my", "mariadb://app@db/x"));
    auto lite = add_connection(store, secrets, request("lite", "sqlite:/tmp/x.db"));
    REQUIRE(pg);
    REQUIRE(my);
    REQUIRE(lite);
    CHECK(pg->record.secret_ref == "pgpass");
    CHECK(my->record.secret_ref == "none");
    CHECK(lite->record.secret_ref == "none");
    for (const char* name : {"pg", "my", "lite"}) {
        auto pw = resolve_password(*store.find_connection(name), secrets);
        REQUIRE(pw);
        CHECK_FALSE(pw->has_value());
    }
}

TEST_CASE("a secrets_file connection whose secret vanished reports secret_missing", "[context][secrets]") {
    temp_home home;
    context_store store(home.path);
    secret_store secrets(home.path);
    auto req = request("src", "postgresql://app@db/x");
    req.password = "pw";
    REQUIRE(add_connection(store, secrets, req));
    secrets.erase("connection:src");
    auto pw = resolve_password(*store.find_connection("src"), secrets);
    REQUIRE_FALSE(pw);
    CHECK(pw.error() == secret_error::secret_missing);
}

TEST_CASE("the secret store keeps several keys and survives a corrupt file", "[secrets]") {
    temp_home home;
    fs::create_directories(home.path);
    secret_store secrets(home.path);
    CHECK_FALSE(secrets.get("a"));
    secrets.erase("a");  // no file yet: nothing to do
    CHECK_FALSE(fs::exists(secrets.path()));
    secrets.put("a", "1");
    secrets.put("b", "quote\" back\\slash");
    secrets.put("a", "2");
    CHECK(secrets.get("a") == std::optional<std::string>("2"));
    CHECK(secrets.get("b") == std::optional<std::string>("quote\" back\\slash"));
    {
        std::ofstream out(secrets.path(), std::ios::trunc);
        out << "{not json";
    }
    CHECK_FALSE(secrets.get("a"));
    secrets.put("c", "3");
    CHECK(secrets.get("c") == std::optional<std::string>("3"));
    CHECK(mode_of(secrets.path()) == 0600);
}

TEST_CASE("iso_time formats unix seconds as UTC ISO 8601", "[context]") {
    CHECK(iso_time(0) == "1970-01-01T00:00:00Z");
    CHECK(iso_time(1795593600) == "2026-11-25T08:00:00Z");
}
