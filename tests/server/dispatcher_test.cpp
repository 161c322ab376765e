// The MCP dispatcher (mcp_session) in process: JSON text in, recorded replies out.
#include "tests/server/session_harness.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>

namespace asio = boost::asio;
using namespace datavor::server;
using namespace datavor::test;
using namespace std::chrono_literals;

namespace {

// What the slow tool saw: started, cancelled (its wait was aborted) or finished.
struct slow_state {
    int started = 0;
    int cancelled = 0;
    int finished = 0;
};

// Coroutine handlers are free functions; the registered lambdas only forward.
asio::awaitable<json_doc> slow_handler(std::shared_ptr<slow_state> st, json_doc args, std::shared_ptr<call_context>) {
    ++st->started;
    const int ms = args.HasMember("ms") ? args["ms"].GetInt() : 5000;
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        ++st->cancelled;
        co_return text_result("cancelled", true);
    }
    ++st->finished;
    co_return text_result("slept " + std::to_string(ms) + " ms");
}

asio::awaitable<json_doc> progress_handler(json_doc, std::shared_ptr<call_context> ctx) {
    json_doc out(rapidjson::kObjectType);
    out.AddMember("wants_progress", ctx->wants_progress(), out.GetAllocator());
    ctx->progress(1, 2, "half way");
    ctx->progress(2, 2, "");
    co_return structured_result(std::move(out));
}

asio::awaitable<json_doc> count_handler(json_doc args, std::shared_ptr<call_context>) {
    co_return text_result("count is " + std::to_string(args["count"].GetInt()));
}

asio::awaitable<json_doc> throwing_handler(json_doc, std::shared_ptr<call_context>) {
    throw std::runtime_error("boom from the handler");
    co_return json_doc{};
}

asio::awaitable<json_doc> ask_handler(json_doc, std::shared_ptr<call_context> ctx) {
    json_doc params(rapidjson::kObjectType);
    json_doc roots = co_await ctx->ask_client("roots/list", std::move(params));
    co_return text_result("roots: " + to_json(roots["roots"]));
}

std::string tool_json(const std::string& name, const std::string& input_schema = R"({"type":"object"})") {
    return R"({"name":")" + name + R"(","title":")" + name + R"(","description":"test tool )" + name +
           R"(","inputSchema":)" + input_schema +
           R"(,"annotations":{"readOnlyHint":true,"destructiveHint":false,"idempotentHint":true}})";
}

struct test_tools {
    std::shared_ptr<slow_state> slow = std::make_shared<slow_state>();

    void operator()(mcp_server& s) const {
        auto st = slow;
        s.add_tool(tool_json("slow", R"({"type":"object","properties":{"ms":{"type":"integer"}},"additionalProperties":false})"),
                   [st](json_doc a, std::shared_ptr<call_context> c) { return slow_handler(st, std::move(a), std::move(c)); });
        s.add_tool(tool_json("progress"), [](json_doc a, std::shared_ptr<call_context> c) {
            return progress_handler(std::move(a), std::move(c));
        });
        s.add_tool(tool_json("count",
                             R"({"type":"object","properties":{"count":{"type":"integer"}},"required":["count"],"additionalProperties":false})"),
                   [](json_doc a, std::shared_ptr<call_context> c) { return count_handler(std::move(a), std::move(c)); });
        s.add_tool(tool_json("throws"), [](json_doc a, std::shared_ptr<call_context> c) {
            return throwing_handler(std::move(a), std::move(c));
        });
        s.add_tool(tool_json("ask"), [](json_doc a, std::shared_ptr<call_context> c) {
            return ask_handler(std::move(a), std::move(c));
        });
    }
};

std::string call_params(const std::string& tool, const std::string& args = "{}", const std::string& meta = {}) {
    return R"({"name":")" + tool + R"(","arguments":)" + args + (meta.empty() ? "" : R"(,"_meta":)" + meta) + "}";
}

}  // namespace

// ---- lifecycle

TEST_CASE("initialize answers each supported protocol version with that version", "[dispatcher]") {
    const std::string version = GENERATE("2025-11-25", "2025-06-18", "2025-03-26");
    session_harness h;
    CHECK(h.session().protocol_version().empty());
    const auto& r = h.call("1", "initialize", R"({"protocolVersion":")" + version + R"(","capabilities":{}})");
    const auto& res = result_of(r);
    CHECK(std::string(res["protocolVersion"].GetString()) == version);
    CHECK(h.session().protocol_version() == version);
    CHECK(res["capabilities"].HasMember("tools"));
    CHECK(res["capabilities"]["resources"]["subscribe"].GetBool());
    CHECK(res["capabilities"].HasMember("logging"));
    CHECK(std::string(res["serverInfo"]["name"].GetString()) == "datavor-test");
    CHECK(r.final);
    CHECK(r.related == "1");
}

TEST_CASE("initialize answers an unknown protocol version with the latest one", "[dispatcher]") {
    session_harness h;
    const auto& r = h.call("1", "initialize", R"({"protocolVersion":"1999-01-01","capabilities":{}})");
    CHECK(std::string(result_of(r)["protocolVersion"].GetString()) == "2025-11-25");
    CHECK(std::string(latest_protocol_version) == "2025-11-25");
}

TEST_CASE("initialize without protocolVersion is -32602 and a second initialize is -32600", "[dispatcher]") {
    session_harness h;
    CHECK(error_code_of(h.call("1", "initialize", R"({"capabilities":{}})")) == -32602);
    CHECK(error_code_of(h.call("2", "initialize")) == -32602);
    h.initialize();
    CHECK(error_code_of(h.call("3", "initialize", R"({"protocolVersion":"2025-11-25"})")) == -32600);
}

TEST_CASE("tools/call before initialize is refused with -32600 but ping is answered", "[dispatcher]") {
    session_harness h{test_tools{}};
    const auto& r = h.call("1", "tools/call", call_params("count", R"({"count":1})"));
    CHECK(error_code_of(r) == -32600);
    CHECK(error_code_of(h.call("2", "tools/list")) == -32600);
    CHECK(result_of(h.call("3", "ping")).IsObject());
}

TEST_CASE("an unknown method is -32601", "[dispatcher]") {
    session_harness h;
    h.initialize();
    const auto& r = h.call(R"("m")", "no/such/method");
    CHECK(error_code_of(r) == -32601);
    CHECK(r.id() == R"("m")");
}

TEST_CASE("text that is not JSON-RPC is answered with the parser's error", "[dispatcher]") {
    session_harness h;
    h.send("{this is not json");
    h.send(R"({"jsonrpc":"2.0","id":8,"method":"ping","params":[1]})");
    REQUIRE(h.pump_until([&] { return h.messages().size() >= 2; }));
    CHECK(h.messages()[0].id() == "null");
    CHECK(error_code_of(h.messages()[0]) == -32700);
    CHECK(h.messages()[0].related.empty());
    CHECK(h.messages()[1].id() == "8");
    CHECK(error_code_of(h.messages()[1]) == -32602);
}

// ---- logging

TEST_CASE("logging/setLevel refuses an unknown level with -32602 and filters by the level it accepts", "[dispatcher]") {
    session_harness h;
    h.initialize();
    CHECK(error_code_of(h.call("1", "logging/setLevel", R"({"level":"verbose"})")) == -32602);
    CHECK(error_code_of(h.call("2", "logging/setLevel", R"({})")) == -32602);
    CHECK(error_code_of(h.call("3", "logging/setLevel")) == -32602);
    CHECK(result_of(h.call("4", "logging/setLevel", R"({"level":"warning"})")).IsObject());

    h.server().log(log_level::info, "test", "below the level");
    h.server().log(log_level::error, "test", "at or above the level");
    h.pump_until([&] { return !h.notifications("notifications/message").empty(); }, 1s);
    h.pump_for(20ms);
    auto logs = h.notifications("notifications/message");
    REQUIRE(logs.size() == 1);
    const auto& p = logs[0]->doc["params"];
    CHECK(std::string(p["level"].GetString()) == "error");
    CHECK(std::string(p["logger"].GetString()) == "test");
    CHECK(std::string(p["data"].GetString()) == "at or above the level");
}

// ---- tools/list

TEST_CASE("tools/list pages with set_page_size and its cursors, and refuses a bad cursor with -32602", "[dispatcher]") {
    session_harness h{[](mcp_server& s) {
        test_tools{}(s);  // 5 tools
        s.set_page_size(2);
    }};
    h.initialize();
    std::vector<std::string> names;
    std::string cursor;
    int pages = 0;
    for (;;) {
        const std::string id = std::to_string(100 + pages);
        const auto& r = h.call(id, "tools/list", cursor.empty() ? "" : R"({"cursor":")" + cursor + "\"}");
        const auto& res = result_of(r);
        REQUIRE(res["tools"].IsArray());
        CHECK(res["tools"].Size() <= 2);
        for (const auto& t : res["tools"].GetArray()) {
            names.emplace_back(t["name"].GetString());
            CHECK(t.HasMember("inputSchema"));
            CHECK(t.HasMember("annotations"));
        }
        ++pages;
        if (!res.HasMember("nextCursor")) break;
        cursor = res["nextCursor"].GetString();
        REQUIRE(pages < 10);
    }
    CHECK(pages == 3);
    CHECK(names == std::vector<std::string>{"slow", "progress", "count", "throws", "ask"});

    CHECK(error_code_of(h.call("200", "tools/list", R"({"cursor":"not-a-cursor"})")) == -32602);
    CHECK(error_code_of(h.call("201", "tools/list", R"({"cursor":"o99"})")) == -32602);
    CHECK(error_code_of(h.call("202", "tools/list", R"({"cursor":7})")) == -32602);
}

// ---- tools/call

TEST_CASE("tools/call of an unknown tool is -32602", "[dispatcher]") {
    session_harness h{test_tools{}};
    h.initialize();
    CHECK(error_code_of(h.call("1", "tools/call", call_params("nope"))) == -32602);
    CHECK(error_code_of(h.call("2", "tools/call", R"({"arguments":{}})")) == -32602);
}

TEST_CASE("tools/call with invalid arguments is an isError result that names the field", "[dispatcher]") {
    session_harness h{test_tools{}};
    h.initialize();
    const auto& missing = h.call("1", "tools/call", call_params("count", "{}"));
    CHECK(is_error_result(missing));
    CHECK(content_text(missing).find("\"count\"") != std::string::npos);

    const auto& wrong = h.call("2", "tools/call", call_params("count", R"({"count":"three"})"));
    CHECK(is_error_result(wrong));
    CHECK(content_text(wrong).find("/count") != std::string::npos);

    const auto& extra = h.call("3", "tools/call", call_params("count", R"({"count":3,"extra":true})"));
    CHECK(is_error_result(extra));
    CHECK(content_text(extra).find("\"extra\"") != std::string::npos);

    const auto& ok = h.call("4", "tools/call", call_params("count", R"({"count":3})"));
    CHECK_FALSE(is_error_result(ok));
    CHECK(content_text(ok) == "count is 3");
}

TEST_CASE("a handler that throws gives an isError result with its message", "[dispatcher]") {
    session_harness h{test_tools{}};
    h.initialize();
    const auto& r = h.call("1", "tools/call", call_params("throws"));
    CHECK(is_error_result(r));
    CHECK(content_text(r).find("boom from the handler") != std::string::npos);
    CHECK(result_of(h.call("2", "ping")).IsObject());
}

TEST_CASE("progress notifications carry the request's progressToken with its JSON type", "[dispatcher]") {
    session_harness h{test_tools{}};
    h.initialize();
    struct token_case {
        std::string json;
        bool is_string;
    };
    const auto tc = GENERATE(token_case{R"("tok-1")", true}, token_case{"42", false});
    const auto& r = h.call("7", "tools/call", call_params("progress", "{}", R"({"progressToken":)" + tc.json + "}"));
    CHECK(result_of(r)["structuredContent"]["wants_progress"].GetBool());
    auto progress = h.notifications("notifications/progress");
    REQUIRE(progress.size() == 2);
    for (const auto* p : progress) {
        const auto& token = p->doc["params"]["progressToken"];
        CHECK(token.IsString() == tc.is_string);
        CHECK(token.IsNumber() == !tc.is_string);
        CHECK(to_json(token) == tc.json);
        CHECK(p->related == "7");
        CHECK_FALSE(p->final);
    }
    CHECK(progress[0]->doc["params"]["progress"].GetDouble() == 1.0);
    CHECK(progress[0]->doc["params"]["total"].GetDouble() == 2.0);
    CHECK(std::string(progress[0]->doc["params"]["message"].GetString()) == "half way");
    CHECK_FALSE(progress[1]->doc["params"].HasMember("message"));
}

TEST_CASE("a call without progressToken gets no progress notifications", "[dispatcher]") {
    session_harness h{test_tools{}};
    h.initialize();
    const auto& r = h.call("7", "tools/call", call_params("progress"));
    CHECK_FALSE(result_of(r)["structuredContent"]["wants_progress"].GetBool());
    CHECK(h.notifications("notifications/progress").empty());
}

TEST_CASE("notifications/cancelled cancels a running call and no response is sent for it", "[dispatcher]") {
    test_tools tools;
    session_harness h{tools};
    h.initialize();
    h.send(rpc_request("10", "tools/call", call_params("slow", R"({"ms":5000})")));
    REQUIRE(h.pump_until([&] { return tools.slow->started == 1; }));
    const auto t0 = std::chrono::steady_clock::now();
    h.send(rpc_notification("notifications/cancelled", R"({"requestId":10,"reason":"user pressed stop"})"));
    REQUIRE(h.pump_until([&] { return tools.slow->cancelled == 1; }, 2s));
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(tools.slow->finished == 0);
    // Later traffic still flows, and nothing ever answers id 10.
    CHECK(result_of(h.call("11", "ping")).IsObject());
    h.pump_for(50ms);
    CHECK(h.responses("10").empty());
}

TEST_CASE("a cancel for an unknown request id is ignored and the session still answers", "[dispatcher]") {
    session_harness h{test_tools{}};
    h.initialize();
    h.send(rpc_notification("notifications/cancelled", R"({"requestId":"never-sent"})"));
    h.send(rpc_notification("notifications/cancelled", R"({"requestId":12345})"));
    h.send(rpc_notification("notifications/cancelled", R"({})"));
    const auto before = h.messages().size();
    const auto& r = h.call("1", "ping");
    CHECK(result_of(r).IsObject());
    CHECK(h.messages().size() == before + 1);
}

TEST_CASE("a duplicate id of a request in flight gets -32600 while the first still completes", "[dispatcher]") {
    test_tools tools;
    session_harness h{tools};
    h.initialize();
    h.send(rpc_request(R"("dup")", "tools/call", call_params("slow", R"({"ms":150})")));
    REQUIRE(h.pump_until([&] { return tools.slow->started == 1; }));
    h.send(rpc_request(R"("dup")", "tools/call", call_params("count", R"({"count":1})")));
    REQUIRE(h.pump_until([&] { return h.responses(R"("dup")").size() == 2; }, 3s));
    auto rs = h.responses(R"("dup")");
    CHECK(error_code_of(*rs[0]) == -32600);
    CHECK_FALSE(rs[0]->final);  // not the running request's response
    CHECK_FALSE(is_error_result(*rs[1]));
    CHECK(content_text(*rs[1]) == "slept 150 ms");
    CHECK(rs[1]->final);
    CHECK(tools.slow->finished == 1);
    CHECK(tools.slow->started == 1);
}

TEST_CASE("calls beyond max_in_flight get a busy isError result", "[dispatcher]") {
    test_tools tools;
    session_harness h{tools, session_limits{1}};
    h.initialize();
    h.send(rpc_request("1", "tools/call", call_params("slow", R"({"ms":100})")));
    REQUIRE(h.pump_until([&] { return tools.slow->started == 1; }));
    const auto& busy = h.call("2", "tools/call", call_params("count", R"({"count":1})"));
    CHECK(is_error_result(busy));
    CHECK_FALSE(is_error_result(h.wait_response("1")));
}

TEST_CASE("a tool can ask the client and gets the client's answer", "[dispatcher]") {
    session_harness h{test_tools{}};
    h.initialize();
    h.send(rpc_request("5", "tools/call", call_params("ask")));
    REQUIRE(h.pump_until([&] { return !h.messages().empty() && h.messages().back().method() == "roots/list"; }));
    const auto& ask = h.messages().back();
    CHECK(ask.related == "5");
    const std::string ask_id = ask.id();
    CHECK_FALSE(ask_id.empty());
    // An answer to an id nobody asked is ignored.
    h.send(R"({"jsonrpc":"2.0","id":"not-asked","result":{}})");
    h.send(R"({"jsonrpc":"2.0","id":)" + ask_id + R"(,"result":{"roots":[{"uri":"file:///w"}]}})");
    const auto& r = h.wait_response("5");
    CHECK(content_text(r) == R"(roots: [{"uri":"file:///w"}])");
}

// ---- resources

TEST_CASE("resources/subscribe delivers notifications/resources/updated for that URI only", "[dispatcher]") {
    session_harness h;
    h.initialize();
    CHECK(result_of(h.call("1", "resources/subscribe", R"({"uri":"datavor://connections"})")).IsObject());
    CHECK(error_code_of(h.call("2", "resources/subscribe", R"({})")) == -32602);

    h.server().notify_resource_updated("datavor://other");
    h.server().notify_resource_updated("datavor://connections");
    REQUIRE(h.pump_until([&] { return !h.notifications("notifications/resources/updated").empty(); }));
    h.pump_for(20ms);
    auto updates = h.notifications("notifications/resources/updated");
    REQUIRE(updates.size() == 1);
    CHECK(std::string(updates[0]->doc["params"]["uri"].GetString()) == "datavor://connections");

    CHECK(result_of(h.call("3", "resources/unsubscribe", R"({"uri":"datavor://connections"})")).IsObject());
    h.server().notify_resource_updated("datavor://connections");
    h.pump_for(30ms);
    CHECK(h.notifications("notifications/resources/updated").size() == 1);
}

TEST_CASE("resources/read of an unknown URI is -32002", "[dispatcher]") {
    session_harness h;
    h.initialize();
    CHECK(error_code_of(h.call("1", "resources/read", R"({"uri":"datavor://nothing"})")) == -32002);
    CHECK(error_code_of(h.call("2", "resources/read", R"({})")) == -32602);
}

// ---- stop

TEST_CASE("stop lets a running call finish inside the grace period", "[dispatcher]") {
    test_tools tools;
    session_harness h{tools};
    h.initialize();
    h.send(rpc_request("1", "tools/call", call_params("slow", R"({"ms":150})")));
    REQUIRE(h.pump_until([&] { return tools.slow->started == 1; }));
    const auto t0 = std::chrono::steady_clock::now();
    auto stopped = asio::co_spawn(h.io(), h.session().stop(5000ms), asio::use_future);
    REQUIRE(h.pump_until([&] { return stopped.wait_for(0s) == std::future_status::ready; }, 6s));
    stopped.get();
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);  // it ended when the call did, not at the deadline
    CHECK(tools.slow->finished == 1);
    CHECK(tools.slow->cancelled == 0);
    const auto* r = h.find_response("1");
    REQUIRE(r != nullptr);
    CHECK(content_text(*r) == "slept 150 ms");
}

TEST_CASE("stop cancels a call that outlives the grace period, sends it no response and refuses new calls", "[dispatcher]") {
    test_tools tools;
    session_harness h{tools};
    h.initialize();
    h.send(rpc_request("1", "tools/call", call_params("slow", R"({"ms":10000})")));
    REQUIRE(h.pump_until([&] { return tools.slow->started == 1; }));
    const auto t0 = std::chrono::steady_clock::now();
    auto stopped = asio::co_spawn(h.io(), h.session().stop(50ms), asio::use_future);
    REQUIRE(h.pump_until([&] { return stopped.wait_for(0s) == std::future_status::ready; }, 3s));
    stopped.get();
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);
    CHECK(tools.slow->cancelled == 1);
    CHECK(h.responses("1").empty());
    const auto& refused = h.call("2", "tools/call", call_params("count", R"({"count":1})"));
    CHECK(is_error_result(refused));
    CHECK(result_of(h.call("3", "ping")).IsObject());
}
