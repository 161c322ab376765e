// The product's connection tools, resources, prompt and completions, driven
// through an in-process MCP session (composition.hpp wires the real parts;
// only SQLite is reached, so no server is needed).
#include "mcp-schema/embedded.hpp"
#include "server/composition.hpp"
#include "tests/server/session_harness.hpp"

#include "tests/connectors/result_string_maker.hpp"

#include <catch2/catch.hpp>

#include <rapidjson/schema.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace datavor::server;
using namespace datavor::test;
namespace fs = std::filesystem;

namespace {

struct temp_home {
    fs::path path;
    temp_home() {
        std::string tmpl = (fs::temp_directory_path() / "datavor-tools-test.XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_home() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

// A product server over a fresh home, initialized, with logging on so log lines are checked too.
struct product_session {
    temp_home home;
    application app{home.path / "home"};
    session_harness h{[this](mcp_server& s) { app.register_product(s); }};
    int next_id = 1000;

    product_session() {
        h.initialize();
        REQUIRE(result_of(h.call("\"log\"", "logging/setLevel", R"({"level":"debug"})")).IsObject());
    }

    const sent_message& tool(const std::string& name, const std::string& args, const std::string& meta = {}) {
        return h.call(std::to_string(next_id++), "tools/call",
                      R"({"name":")" + name + R"(","arguments":)" + args +
                          (meta.empty() ? "" : R"(,"_meta":)" + meta) + "}");
    }
};

// Checks a tools/call result's structuredContent against the tool's outputSchema.
void check_output_schema(const std::string& tool, const sent_message& m) {
    const auto& res = result_of(m);
    REQUIRE(res.HasMember("structuredContent"));
    std::string_view text;
    for (const auto& f : datavor::mcp_schema::tool_files())
        if (f.name == tool + ".json") text = f.content;
    REQUIRE_FALSE(text.empty());
    json_doc def;
    def.Parse(text.data(), text.size());
    rapidjson::SchemaDocument schema(def["outputSchema"]);
    rapidjson::SchemaValidator v(schema);
    const bool ok = res["structuredContent"].Accept(v);
    rapidjson::StringBuffer where;
    v.GetInvalidDocumentPointer().StringifyUriFragment(where);
    INFO("structuredContent does not match " << tool << " outputSchema at " << where.GetString() << " (keyword "
                                             << v.GetInvalidSchemaKeyword() << "): " << m.text);
    CHECK(ok);
    // The text content is the same JSON, for clients that ignore structuredContent.
    CHECK(content_text(m) == to_json(res["structuredContent"]));
}

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace

TEST_CASE("the product registers its connection tools, resources, prompt and completions", "[connection_tools]") {
    product_session p;
    const auto& tools = result_of(p.h.call("1", "tools/list"));
    std::vector<std::string> names;
    for (const auto& t : tools["tools"].GetArray()) names.emplace_back(t["name"].GetString());
    CHECK(names == std::vector<std::string>{"add_connection", "list_connections", "test_connection", "remove_connection"});

    const auto& res = result_of(p.h.call("2", "resources/list"));
    REQUIRE(res["resources"].Size() >= 1);
    CHECK(std::string(res["resources"][0]["uri"].GetString()) == "datavor://connections");
    const auto& tmpl = result_of(p.h.call("3", "resources/templates/list"));
    CHECK(std::string(tmpl["resourceTemplates"][0]["uriTemplate"].GetString()) == "datavor://connections/{name}");
    const auto& prompts = result_of(p.h.call("4", "prompts/list"));
    CHECK(std::string(prompts["prompts"][0]["name"].GetString()) == "check-source");
}

TEST_CASE("add_connection stores a URL password as a secret and never sends it back", "[connection_tools][secrets]") {
    product_session p;
    const std::string secret = "Mcp-Secret-0c7d2a9b";
    REQUIRE(result_of(p.h.call("\"s\"", "resources/subscribe", R"({"uri":"datavor://connections"})")).IsObject());

    const auto& added = p.tool("add_connection", R"({"name":"shop","url":"postgresql://app:)" + secret +
                                                     R"(@db.internal:5432/shop","sslmode":"verify-full"})");
    CHECK_FALSE(is_error_result(added));
    check_output_schema("add_connection", added);
    const auto& c = result_of(added)["structuredContent"]["connection"];
    CHECK(std::string(c["url"].GetString()) == "postgresql://app@db.internal:5432/shop?sslmode=verify-full");
    CHECK(std::string(c["password_source"].GetString()) == "secrets_file");
    CHECK(std::string(c["sslmode"].GetString()) == "verify-full");
    CHECK(result_of(added)["structuredContent"]["created"].GetBool());

    const auto& again = p.tool("add_connection", R"({"name":"shop","url":"postgresql://app@db.internal:5432/shop","sslmode":"verify-full"})");
    CHECK_FALSE(is_error_result(again));
    CHECK_FALSE(result_of(again)["structuredContent"]["created"].GetBool());

    const auto& list = p.tool("list_connections", "{}");
    check_output_schema("list_connections", list);
    CHECK(result_of(list)["structuredContent"]["connections"].Size() == 1);
    const auto& read = result_of(p.h.call("501", "resources/read", R"({"uri":"datavor://connections"})"));
    CHECK(std::string(read["contents"][0]["text"].GetString()).find("db.internal") != std::string::npos);
    const auto& one = result_of(p.h.call("502", "resources/read", R"({"uri":"datavor://connections/shop"})"));
    CHECK(std::string(one["contents"][0]["uri"].GetString()) == "datavor://connections/shop");
    CHECK(error_code_of(p.h.call("503", "resources/read", R"({"uri":"datavor://connections/none"})")) == -32002);

    // Subscribers hear about it; log lines were sent too (level debug).
    CHECK_FALSE(p.h.notifications("notifications/resources/updated").empty());
    CHECK_FALSE(p.h.notifications("notifications/resources/list_changed").empty());
    CHECK_FALSE(p.h.notifications("notifications/message").empty());

    // Not one outbound message carries the password, nor does context.db.
    for (const auto& m : p.h.messages()) {
        INFO(m.text);
        CHECK(m.text.find(secret) == std::string::npos);
    }
    CHECK(slurp(p.home.path / "home" / "context.db").find(secret) == std::string::npos);
    CHECK(slurp(p.home.path / "home" / "secrets.json").find(secret) != std::string::npos);
}

TEST_CASE("add_connection refuses password together with password_env, and a taken name", "[connection_tools]") {
    product_session p;
    const auto& both = p.tool("add_connection", R"({"name":"x","url":"postgresql://a@h/d","password":"p","password_env":"PW"})");
    CHECK(is_error_result(both));
    CHECK(content_text(both).find("password_env") != std::string::npos);

    CHECK_FALSE(is_error_result(p.tool("add_connection", R"({"name":"x","url":"postgresql://a@h/d"})")));
    const auto& taken = p.tool("add_connection", R"({"name":"x","url":"postgresql://a@other/d"})");
    CHECK(is_error_result(taken));
    CHECK(content_text(taken).find("replace") != std::string::npos);

    const auto& bad_url = p.tool("add_connection", R"({"name":"y","url":"ftp://h/d"})");
    CHECK(is_error_result(bad_url));
}

TEST_CASE("test_connection checks a sqlite target and reports progress per check", "[connection_tools]") {
    product_session p;
    const std::string url = "sqlite:" + (p.home.path / "target.db").string();
    REQUIRE_FALSE(is_error_result(p.tool("add_connection", R"({"name":"lite","url":")" + url + R"("})")));
    const auto& r = p.tool("test_connection", R"({"name":"lite"})", R"({"progressToken":"t1"})");
    CHECK_FALSE(is_error_result(r));
    check_output_schema("test_connection", r);
    const auto& sc = result_of(r)["structuredContent"];
    CHECK(sc["ok"].GetBool());
    CHECK(std::string(sc["kind"].GetString()) == "sqlite");
    REQUIRE(sc["checks"].Size() == 2);
    CHECK(std::string(sc["checks"][0]["id"].GetString()) == "directory");
    CHECK(std::string(sc["checks"][1]["id"].GetString()) == "writable");
    auto progress = p.h.notifications("notifications/progress");
    REQUIRE(progress.size() == 2);
    CHECK(std::string(progress[0]->doc["params"]["progressToken"].GetString()) == "t1");
    CHECK(progress[1]->doc["params"]["progress"].GetDouble() == 2.0);
}

TEST_CASE("test_connection reports a failing check with its fix and ok false", "[connection_tools]") {
    product_session p;
    const std::string url = "sqlite:" + (p.home.path / "missing" / "target.db").string();
    REQUIRE_FALSE(is_error_result(p.tool("add_connection", R"({"name":"lite","url":")" + url + R"("})")));
    const auto& r = p.tool("test_connection", R"({"name":"lite"})");
    check_output_schema("test_connection", r);
    const auto& sc = result_of(r)["structuredContent"];
    CHECK_FALSE(sc["ok"].GetBool());
    CHECK(std::string(sc["checks"][0]["status"].GetString()) == "fail");
    CHECK(std::string(sc["checks"][0]["fix"].GetString()).rfind("mkdir -p ", 0) == 0);
    CHECK(std::string(sc["summary"].GetString()).find("1 check(s) failed") != std::string::npos);
}

TEST_CASE("test_connection explains an unknown connection and an unset password variable", "[connection_tools]") {
    product_session p;
    const auto& unknown = p.tool("test_connection", R"({"name":"nope"})");
    CHECK(is_error_result(unknown));
    CHECK(content_text(unknown).find("nope") != std::string::npos);

    const std::string var = "DATAVOR_TEST_TOOLS_PW_" + std::to_string(::getpid());
    ::unsetenv(var.c_str());
    REQUIRE_FALSE(is_error_result(
        p.tool("add_connection", R"({"name":"envsrc","url":"postgresql://a@127.0.0.1:1/d","password_env":")" + var + "\"}")));
    const auto& r = p.tool("test_connection", R"({"name":"envsrc"})");
    CHECK(is_error_result(r));
    CHECK(content_text(r).find(var) != std::string::npos);
}

TEST_CASE("remove_connection removes once and then reports removed false", "[connection_tools]") {
    product_session p;
    REQUIRE_FALSE(is_error_result(p.tool("add_connection", R"({"name":"gone","url":"mariadb://u@h/d","password":"pw-x"})")));
    const auto& first = p.tool("remove_connection", R"({"name":"gone"})");
    check_output_schema("remove_connection", first);
    CHECK(result_of(first)["structuredContent"]["removed"].GetBool());
    const auto& second = p.tool("remove_connection", R"({"name":"gone"})");
    CHECK_FALSE(result_of(second)["structuredContent"]["removed"].GetBool());
    CHECK(slurp(p.home.path / "home" / "secrets.json").find("pw-x") == std::string::npos);
}

TEST_CASE("list_connections filters by kind", "[connection_tools]") {
    product_session p;
    REQUIRE_FALSE(is_error_result(p.tool("add_connection", R"({"name":"a","url":"mariadb://u@h/d"})")));
    REQUIRE_FALSE(is_error_result(p.tool("add_connection", R"({"name":"b","url":"postgresql://u@h/d"})")));
    const auto& r = p.tool("list_connections", R"({"kind":"postgresql"})");
    const auto& conns = result_of(r)["structuredContent"]["connections"];
    REQUIRE(conns.Size() == 1);
    CHECK(std::string(conns[0]["name"].GetString()) == "b");
    CHECK(std::string(conns[0]["password_source"].GetString()) == "pgpass");
}

TEST_CASE("the check-source prompt and the name completions use the saved connections", "[connection_tools]") {
    product_session p;
    REQUIRE_FALSE(is_error_result(p.tool("add_connection", R"({"name":"shop_main","url":"postgresql://u@h/d"})")));
    REQUIRE_FALSE(is_error_result(p.tool("add_connection", R"({"name":"shop_replica","url":"postgresql://u@h2/d"})")));
    REQUIRE_FALSE(is_error_result(p.tool("add_connection", R"({"name":"other","url":"postgresql://u@h3/d"})")));

    const auto& prompt = result_of(p.h.call("504", "prompts/get", R"({"name":"check-source","arguments":{"connection":"shop_main"}})"));
    CHECK(std::string(prompt["messages"][0]["content"]["text"].GetString()).find("shop_main") != std::string::npos);
    CHECK(error_code_of(p.h.call("505", "prompts/get", R"({"name":"check-source","arguments":{}})")) == -32602);
    CHECK(error_code_of(p.h.call("506", "prompts/get", R"({"name":"nope"})")) == -32602);

    const auto& done = result_of(p.h.call(
        "507", "completion/complete",
        R"({"ref":{"type":"ref/prompt","name":"check-source"},"argument":{"name":"connection","value":"shop"}})"));
    const auto& values = done["completion"]["values"];
    REQUIRE(values.Size() == 2);
    CHECK(std::string(values[0].GetString()) == "shop_main");
    CHECK(std::string(values[1].GetString()) == "shop_replica");
    CHECK_FALSE(done["completion"]["hasMore"].GetBool());
    CHECK(error_code_of(p.h.call("508", "completion/complete", R"({"ref":{}})")) == -32602);
}
