#include "server/jsonrpc.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace datavor::server;
namespace rpc = datavor::server::jsonrpc;

namespace {

rpc::failure parse_failure(std::string_view text) {
    auto r = rpc::parse(text);
    INFO("message: " << text);
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

rpc::message parse_ok(std::string_view text) {
    auto r = rpc::parse(text);
    if (!r) FAIL("message: " << text << " failed to parse: " << r.error().message);
    return std::move(*r);
}

json_doc parse_json(const std::string& text) {
    json_doc d;
    d.Parse(text.c_str());
    INFO(text);
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

// Collects what a line_framer delivers.
struct framed {
    std::vector<std::string> lines;
    int oversize = 0;
    void feed(rpc::line_framer& f, std::string_view bytes) {
        f.feed(bytes, [this](std::string l) { lines.push_back(std::move(l)); }, [this] { ++oversize; });
    }
};

}  // namespace

// ---- parse: the accepted shapes

TEST_CASE("jsonrpc parses a request with an integer id, a method and object params", "[jsonrpc]") {
    auto m = parse_ok(R"({"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"o2"}})");
    CHECK(m.k == rpc::kind::request);
    CHECK(m.id == "1");
    CHECK(m.method == "tools/list");
    REQUIRE(m.params() != nullptr);
    CHECK(string_member(*m.params(), "cursor") == std::optional<std::string_view>("o2"));
}

TEST_CASE("jsonrpc keeps a string id as JSON text so it can be echoed with its type", "[jsonrpc]") {
    auto m = parse_ok(R"({"jsonrpc":"2.0","id":"abc-1","method":"ping"})");
    CHECK(m.k == rpc::kind::request);
    CHECK(m.id == R"("abc-1")");
    CHECK(m.params() == nullptr);
    auto big = parse_ok(R"({"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"})");
    CHECK(big.id == "18446744073709551615");
    auto neg = parse_ok(R"({"jsonrpc":"2.0","id":-5,"method":"ping"})");
    CHECK(neg.id == "-5");
}

TEST_CASE("jsonrpc parses a message without id as a notification", "[jsonrpc]") {
    auto m = parse_ok(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    CHECK(m.k == rpc::kind::notification);
    CHECK(m.id.empty());
    CHECK(m.method == "notifications/initialized");
}

TEST_CASE("jsonrpc parses results and errors as responses, also with a null id", "[jsonrpc]") {
    auto r = parse_ok(R"({"jsonrpc":"2.0","id":"datavor-1","result":{"roots":[]}})");
    CHECK(r.k == rpc::kind::response);
    CHECK(r.id == R"("datavor-1")");
    auto e = parse_ok(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x"}})");
    CHECK(e.k == rpc::kind::response);
    CHECK(e.id == "null");
}

// ---- parse: every error class

TEST_CASE("jsonrpc answers text that is not JSON with -32700 and a null id", "[jsonrpc]") {
    for (const char* text : {"{", "not json", R"({"jsonrpc":"2.0","id":1,"method":"ping")", "", "{\"a\":1}x"}) {
        auto f = parse_failure(text);
        CHECK(f.code == rpc::parse_error);
        CHECK(f.id == "null");
        CHECK_FALSE(f.message.empty());
    }
}

TEST_CASE("jsonrpc rejects a batch with -32600", "[jsonrpc]") {
    auto f = parse_failure(R"([{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}])");
    CHECK(f.code == rpc::invalid_request);
    CHECK(f.id == "null");
    CHECK(f.message.find("batch") != std::string::npos);
    CHECK(parse_failure("[]").code == rpc::invalid_request);
}

TEST_CASE("jsonrpc rejects a JSON value that is not an object with -32600", "[jsonrpc]") {
    for (const char* text : {"42", R"("ping")", "null", "true"}) {
        auto f = parse_failure(text);
        CHECK(f.code == rpc::invalid_request);
        CHECK(f.id == "null");
    }
}

TEST_CASE("jsonrpc rejects a version other than 2.0 with -32600 and echoes the id", "[jsonrpc]") {
    auto f = parse_failure(R"({"jsonrpc":"1.0","id":7,"method":"ping"})");
    CHECK(f.code == rpc::invalid_request);
    CHECK(f.id == "7");
    auto g = parse_failure(R"({"id":"x","method":"ping"})");
    CHECK(g.code == rpc::invalid_request);
    CHECK(g.id == R"("x")");
    auto h = parse_failure(R"({"jsonrpc":2.0,"id":3,"method":"ping"})");
    CHECK(h.code == rpc::invalid_request);
    CHECK(h.id == "3");
}

TEST_CASE("jsonrpc rejects a message without method, result or error with -32600 and echoes the id", "[jsonrpc]") {
    auto f = parse_failure(R"({"jsonrpc":"2.0","id":"q1"})");
    CHECK(f.code == rpc::invalid_request);
    CHECK(f.id == R"("q1")");
    auto g = parse_failure(R"({"jsonrpc":"2.0","id":9,"params":{}})");
    CHECK(g.code == rpc::invalid_request);
    CHECK(g.id == "9");
}

TEST_CASE("jsonrpc rejects a method that is not a string with -32600", "[jsonrpc]") {
    auto f = parse_failure(R"({"jsonrpc":"2.0","id":4,"method":12})");
    CHECK(f.code == rpc::invalid_request);
    CHECK(f.id == "4");
}

TEST_CASE("jsonrpc rejects an id that is not a string or an integer with -32600 and a null id", "[jsonrpc]") {
    for (const char* text : {R"({"jsonrpc":"2.0","id":1.5,"method":"ping"})",
                             R"({"jsonrpc":"2.0","id":true,"method":"ping"})",
                             R"({"jsonrpc":"2.0","id":{"a":1},"method":"ping"})",
                             R"({"jsonrpc":"2.0","id":[1],"method":"ping"})",
                             R"({"jsonrpc":"2.0","id":null,"method":"ping"})"}) {
        auto f = parse_failure(text);
        CHECK(f.code == rpc::invalid_request);
        CHECK(f.id == "null");
        CHECK(f.message.find("id") != std::string::npos);
    }
}

TEST_CASE("jsonrpc answers array params with -32602 and other non-object params with -32600", "[jsonrpc]") {
    auto f = parse_failure(R"({"jsonrpc":"2.0","id":5,"method":"tools/call","params":["a"]})");
    CHECK(f.code == rpc::invalid_params);
    CHECK(f.id == "5");
    auto g = parse_failure(R"({"jsonrpc":"2.0","id":"s","method":"tools/call","params":"text"})");
    CHECK(g.code == rpc::invalid_request);
    CHECK(g.id == R"("s")");
}

TEST_CASE("jsonrpc rejects a response whose id has the wrong type", "[jsonrpc]") {
    auto f = parse_failure(R"({"jsonrpc":"2.0","id":2.5,"result":{}})");
    CHECK(f.code == rpc::invalid_request);
}

// ---- serialisation

TEST_CASE("jsonrpc builds results, errors, notifications and requests that parse back", "[jsonrpc]") {
    json_doc payload(rapidjson::kObjectType);
    payload.AddMember("n", 1, payload.GetAllocator());

    auto result = parse_json(rpc::make_result(R"("a")", payload));
    CHECK(string_member(result, "jsonrpc") == std::optional<std::string_view>("2.0"));
    CHECK(std::string(result["id"].GetString()) == "a");
    CHECK(result["result"]["n"].GetInt() == 1);

    auto error = parse_json(rpc::make_error("7", rpc::method_not_found, "Method not found: x", &payload));
    CHECK(error["id"].GetInt() == 7);
    CHECK(error["error"]["code"].GetInt() == -32601);
    CHECK(std::string(error["error"]["message"].GetString()) == "Method not found: x");
    CHECK(error["error"]["data"]["n"].GetInt() == 1);

    auto null_id = parse_json(rpc::make_error("", rpc::parse_error, "bad"));
    CHECK(null_id["id"].IsNull());
    CHECK_FALSE(null_id["error"].HasMember("data"));

    auto note = parse_json(rpc::make_notification("notifications/progress", payload));
    CHECK(std::string(note["method"].GetString()) == "notifications/progress");
    CHECK_FALSE(note.HasMember("id"));
    CHECK(note["params"]["n"].GetInt() == 1);

    auto req = parse_json(rpc::make_request(R"("datavor-1")", "roots/list", payload));
    CHECK(std::string(req["id"].GetString()) == "datavor-1");
    CHECK(std::string(req["method"].GetString()) == "roots/list");

    auto back = parse_ok(rpc::make_request("12", "ping", payload));
    CHECK(back.k == rpc::kind::request);
    CHECK(back.id == "12");
}

TEST_CASE("jsonrpc escapes error messages so they stay valid JSON", "[jsonrpc]") {
    auto e = parse_json(rpc::make_error("1", rpc::invalid_params, "bad \"quote\"\nand \\ backslash"));
    CHECK(std::string(e["error"]["message"].GetString()) == "bad \"quote\"\nand \\ backslash");
}

// ---- line framing

TEST_CASE("line framer delivers each complete line and holds a partial one", "[jsonrpc][framer]") {
    rpc::line_framer f(1024);
    framed out;
    out.feed(f, "{\"a\":1}\n{\"b\":2}\n{\"c\"");
    CHECK(out.lines == std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"});
    out.feed(f, ":3}\n");
    CHECK(out.lines.back() == "{\"c\":3}");
    CHECK(out.oversize == 0);
}

TEST_CASE("line framer joins a line split across many feeds", "[jsonrpc][framer]") {
    rpc::line_framer f(1024);
    framed out;
    const std::string line = R"({"jsonrpc":"2.0","id":1,"method":"ping"})";
    for (char c : line) out.feed(f, std::string_view(&c, 1));
    CHECK(out.lines.empty());
    out.feed(f, "\n");
    CHECK(out.lines == std::vector<std::string>{line});
}

TEST_CASE("line framer strips CRLF endings and skips empty lines", "[jsonrpc][framer]") {
    rpc::line_framer f(1024);
    framed out;
    out.feed(f, "one\r\n\r\n\ntwo\r");
    out.feed(f, "\nthree\n");
    CHECK(out.lines == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("line framer accepts a line of exactly the maximum length", "[jsonrpc][framer]") {
    rpc::line_framer f(8);
    framed out;
    out.feed(f, "12345678\n");
    CHECK(out.lines == std::vector<std::string>{"12345678"});
    CHECK(out.oversize == 0);
}

TEST_CASE("line framer reports an oversize line once and still delivers the next line", "[jsonrpc][framer]") {
    rpc::line_framer f(8);
    framed out;
    SECTION("within one feed") {
        out.feed(f, "0123456789abcdef\nok\n");
    }
    SECTION("spread over several feeds") {
        out.feed(f, "01234");
        out.feed(f, "56789");  // crosses the limit here
        out.feed(f, "abcdefghijklmnop");
        out.feed(f, "qrstuvwxyz");
        out.feed(f, "\nok");
        out.feed(f, "\n");
    }
    SECTION("when the newline comes in its own feed") {
        out.feed(f, "0123456789abcdef");
        out.feed(f, "\n");
        out.feed(f, "ok\n");
    }
    CHECK(out.oversize == 1);
    CHECK(out.lines == std::vector<std::string>{"ok"});

    // A second oversize line is reported again: once per line.
    out.feed(f, "0123456789\nyes\n");
    CHECK(out.oversize == 2);
    CHECK(out.lines == std::vector<std::string>{"ok", "yes"});
}
