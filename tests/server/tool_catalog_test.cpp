#include "mcp-schema/embedded.hpp"
#include "server/tool_catalog.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>
#include <string>

using namespace datavor::server;

namespace {

json_doc parse_json(std::string_view text) {
    json_doc d;
    d.Parse(text.data(), text.size());
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

const tool_catalog& product_catalog() {
    static const tool_catalog c = [] {
        tool_catalog cat;
        for (const auto& f : datavor::mcp_schema::tool_files()) cat.add(f.content);
        return cat;
    }();
    return c;
}

// The validation message for `args` against product tool `tool`; fails when the args are valid.
std::string violation(std::string_view tool, std::string_view args) {
    const auto* def = product_catalog().find(tool);
    REQUIRE(def != nullptr);
    auto doc = parse_json(args);
    auto msg = product_catalog().validate(*def, doc);
    INFO("arguments: " << args);
    REQUIRE(msg.has_value());
    return *msg;
}

bool valid(std::string_view tool, std::string_view args) {
    const auto* def = product_catalog().find(tool);
    REQUIRE(def != nullptr);
    auto doc = parse_json(args);
    auto msg = product_catalog().validate(*def, doc);
    if (msg) UNSCOPED_INFO("unexpected violation: " << *msg);
    return !msg.has_value();
}

bool contains(const std::string& haystack, std::string_view needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("every embedded mcp-schema file is a complete tool definition", "[tool_catalog][mcp_schema]") {
    const auto files = datavor::mcp_schema::tool_files();
    REQUIRE_FALSE(files.empty());
    std::set<std::string> names;
    for (const auto& f : files) {
        INFO("file: " << f.name);
        auto d = parse_json(f.content);
        REQUIRE(d.IsObject());
        auto name = string_member(d, "name");
        REQUIRE(name);
        CHECK(std::string(*name) + ".json" == f.name);
        CHECK(names.insert(std::string(*name)).second);
        for (const char* key : {"title", "description"}) {
            auto v = string_member(d, key);
            INFO("key: " << key);
            REQUIRE(v);
            CHECK_FALSE(v->empty());
        }
        const json_value* input = member(d, "inputSchema");
        REQUIRE(input);
        REQUIRE(input->IsObject());
        CHECK(string_member(*input, "type") == std::optional<std::string_view>("object"));
        const json_value* output = member(d, "outputSchema");
        REQUIRE(output);
        REQUIRE(output->IsObject());
        CHECK(string_member(*output, "type") == std::optional<std::string_view>("object"));
        const json_value* ann = member(d, "annotations");
        REQUIRE(ann);
        REQUIRE(ann->IsObject());
        for (const char* hint : {"readOnlyHint", "destructiveHint", "idempotentHint"}) {
            INFO("hint: " << hint);
            const json_value* h = member(*ann, hint);
            REQUIRE(h);
            CHECK(h->IsBool());
        }
        // A read-only tool cannot be destructive.
        if ((*ann)["readOnlyHint"].GetBool()) CHECK_FALSE((*ann)["destructiveHint"].GetBool());
    }
    for (const char* expected : {"add_connection", "list_connections", "test_connection", "remove_connection"})
        CHECK(names.count(expected) == 1);
}

TEST_CASE("every embedded tool loads into a catalog in file order", "[tool_catalog][mcp_schema]") {
    const auto& cat = product_catalog();
    const auto files = datavor::mcp_schema::tool_files();
    REQUIRE(cat.ordered().size() == files.size());
    for (std::size_t i = 0; i < files.size(); ++i) {
        CHECK(cat.ordered()[i]->name + ".json" == files[i].name);
        CHECK(cat.find(cat.ordered()[i]->name) == cat.ordered()[i]);
        CHECK(cat.ordered()[i]->input_schema != nullptr);
    }
    CHECK(cat.find("no_such_tool") == nullptr);
}

TEST_CASE("valid arguments pass validation", "[tool_catalog]") {
    CHECK(valid("add_connection", R"({"name":"shop_db","url":"postgresql://u@h/db"})"));
    CHECK(valid("add_connection",
                R"({"name":"a.b-c","url":"sqlite:/x.db","password":"p","sslmode":"verify-full","replace":true})"));
    CHECK(valid("list_connections", "{}"));
    CHECK(valid("list_connections", R"({"kind":"mariadb"})"));
    CHECK(valid("test_connection", R"({"name":"src","tables":["public.t"],"timeout_seconds":5})"));
    CHECK(valid("remove_connection", R"({"name":"src"})"));
}

TEST_CASE("a missing required field is named in the validation message", "[tool_catalog]") {
    auto msg = violation("add_connection", R"({"name":"x"})");
    CHECK(contains(msg, "add_connection"));
    CHECK(contains(msg, "missing required"));
    CHECK(contains(msg, "\"url\""));
    auto both = violation("add_connection", "{}");
    CHECK(contains(both, "\"name\""));
    CHECK(contains(both, "\"url\""));
}

TEST_CASE("a field of the wrong type is named with the expected type", "[tool_catalog]") {
    auto msg = violation("add_connection", R"({"name":5,"url":"sqlite:/x.db"})");
    CHECK(contains(msg, "/name"));
    CHECK(contains(msg, "expected type \"string\""));
    auto flag = violation("add_connection", R"({"name":"x","url":"sqlite:/x.db","replace":"yes"})");
    CHECK(contains(flag, "/replace"));
    CHECK(contains(flag, "boolean"));
    auto item = violation("test_connection", R"({"name":"x","tables":["ok",7]})");
    CHECK(contains(item, "/tables/1"));
}

TEST_CASE("a value outside an enum is named with the allowed values", "[tool_catalog]") {
    auto msg = violation("add_connection", R"({"name":"x","url":"sqlite:/x.db","sslmode":"sometimes"})");
    CHECK(contains(msg, "/sslmode"));
    CHECK(contains(msg, "\"verify-full\""));
    CHECK(contains(msg, "\"sometimes\""));
    auto kind = violation("list_connections", R"({"kind":"oracle"})");
    CHECK(contains(kind, "/kind"));
    CHECK(contains(kind, "\"postgresql\""));
}

TEST_CASE("a value that breaks a pattern is named with the pattern", "[tool_catalog]") {
    auto msg = violation("add_connection", R"({"name":"bad name!","url":"sqlite:/x.db"})");
    CHECK(contains(msg, "/name"));
    CHECK(contains(msg, "pattern"));
    CHECK(contains(msg, "\"bad name!\""));
    auto env = violation("add_connection", R"({"name":"x","url":"sqlite:/x.db","password_env":"1BAD"})");
    CHECK(contains(env, "/password_env"));
}

TEST_CASE("an unknown extra field is named with the allowed fields", "[tool_catalog]") {
    auto msg = violation("add_connection", R"({"name":"x","url":"sqlite:/x.db","colour":"blue"})");
    CHECK(contains(msg, "unknown field"));
    CHECK(contains(msg, "\"colour\""));
    CHECK(contains(msg, "\"password_env\""));
}

TEST_CASE("an unknown field inside a nested object is named with its path", "[tool_catalog]") {
    tool_catalog cat;
    cat.add(R"({"name":"nested","inputSchema":{"type":"object","properties":{"opts":{"type":"object",
        "properties":{"depth":{"type":"integer"}},"additionalProperties":false}},"additionalProperties":false}})");
    json_doc args = parse_json(R"({"opts":{"depth":1,"width":{"x":1}}})");
    auto msg = cat.validate(*cat.find("nested"), args);
    REQUIRE(msg);
    CHECK(contains(*msg, "at /opts:"));
    CHECK(contains(*msg, "unknown field(s) \"width\""));
    CHECK(contains(*msg, "allowed fields are \"depth\""));
}

TEST_CASE("length and range limits are named with the limit", "[tool_catalog]") {
    auto longname = violation("add_connection", R"({"name":")" + std::string(64, 'a') + R"(","url":"sqlite:/x.db"})");
    CHECK(contains(longname, "/name"));
    CHECK(contains(longname, "maxLength"));
    auto timeout = violation("test_connection", R"({"name":"x","timeout_seconds":0})");
    CHECK(contains(timeout, "/timeout_seconds"));
    CHECK(contains(timeout, "minimum"));
}

TEST_CASE("arguments that are not an object are reported at the top level", "[tool_catalog]") {
    auto msg = violation("list_connections", R"(["kind"])");
    CHECK(contains(msg, "(arguments)"));
    CHECK(contains(msg, "object"));
}

TEST_CASE("the catalog refuses malformed and duplicate definitions", "[tool_catalog]") {
    tool_catalog cat;
    CHECK_THROWS_AS(cat.add("not json"), std::invalid_argument);
    CHECK_THROWS_AS(cat.add("[]"), std::invalid_argument);
    CHECK_THROWS_AS(cat.add(R"({"name":"x"})"), std::invalid_argument);
    CHECK_THROWS_AS(cat.add(R"({"inputSchema":{"type":"object"}})"), std::invalid_argument);
    CHECK_THROWS_AS(cat.add(R"({"name":"x","inputSchema":true})"), std::invalid_argument);
    cat.add(R"({"name":"x","inputSchema":{"type":"object"}})");
    CHECK_THROWS_AS(cat.add(R"({"name":"x","inputSchema":{"type":"object"}})"), std::invalid_argument);
    CHECK(cat.ordered().size() == 1);
}
