#pragma once
// An in-process MCP session for tests: JSON text in through receive(), every
// outbound message recorded (parsed) with its `related` id and `final` flag.
// All work runs on one io_context driven by the test thread, so the recorded
// messages are only touched on that thread.
#include "server/jsonrpc.hpp"
#include "server/mcp_server.hpp"
#include "server/mcp_session.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <string>

namespace datavor::test {

struct sent_message {
    std::string text;
    server::json_doc doc;
    std::string related;
    bool final = false;

    bool is_response() const { return doc.IsObject() && (doc.HasMember("result") || doc.HasMember("error")); }
    std::string id() const { return doc.IsObject() && doc.HasMember("id") ? server::to_json(doc["id"]) : std::string{}; }
    std::string method() const {
        auto m = doc.IsObject() ? server::string_member(doc, "method") : std::nullopt;
        return m ? std::string(*m) : std::string{};
    }
};

class recording_outbound final : public server::outbound {
public:
    void send(std::string message, const std::string& related, bool final) override {
        auto& m = messages.emplace_back();
        m.doc.Parse(message.c_str());
        m.text = std::move(message);
        m.related = related;
        m.final = final;
    }
    std::deque<sent_message> messages;
};

inline std::string rpc_request(const std::string& id, const std::string& method, const std::string& params = {}) {
    return R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":")" + method + "\"" +
           (params.empty() ? std::string{} : R"(,"params":)" + params) + "}";
}

inline std::string rpc_notification(const std::string& method, const std::string& params = {}) {
    return R"({"jsonrpc":"2.0","method":")" + method + "\"" +
           (params.empty() ? std::string{} : R"(,"params":)" + params) + "}";
}

class session_harness {
public:
    using setup_fn = std::function<void(server::mcp_server&)>;

    explicit session_harness(setup_fn setup = {}, server::session_limits limits = {})
        : server_(server::server_info{"datavor-test", "Datavor test", "0.0.0-test", ""}) {
        if (setup) setup(server_);
        session_ = server::make_session(server_, boost::asio::make_strand(io_), out_, limits);
    }

    ~session_harness() {
        // End every handler before the io_context goes away (bounded: a hang fails loudly below).
        if (!session_) return;
        auto f = boost::asio::co_spawn(io_, session_->stop(std::chrono::milliseconds(0)), boost::asio::use_future);
        pump_until([&] { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
                   std::chrono::seconds(5));
    }

    server::mcp_server& server() { return server_; }
    server::mcp_session& session() { return *session_; }
    boost::asio::io_context& io() { return io_; }
    std::deque<sent_message>& messages() { return out_->messages; }

    void send(std::string text) { session_->receive(std::move(text)); }

    // Runs handlers until pred() holds or the timeout passes; returns pred().
    bool pump_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!pred()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            io_.run_one_for(std::chrono::milliseconds(5));
        }
        return true;
    }
    // Runs whatever is ready for `d` (to show that something does NOT happen).
    void pump_for(std::chrono::milliseconds d) {
        const auto deadline = std::chrono::steady_clock::now() + d;
        while (std::chrono::steady_clock::now() < deadline) io_.run_one_for(std::chrono::milliseconds(5));
    }

    const sent_message* find_response(const std::string& id) const {
        for (const auto& m : out_->messages)
            if (m.is_response() && m.id() == id) return &m;
        return nullptr;
    }
    std::vector<const sent_message*> responses(const std::string& id) const {
        std::vector<const sent_message*> out;
        for (const auto& m : out_->messages)
            if (m.is_response() && m.id() == id) out.push_back(&m);
        return out;
    }
    std::vector<const sent_message*> notifications(const std::string& method) const {
        std::vector<const sent_message*> out;
        for (const auto& m : out_->messages)
            if (!m.doc.HasMember("id") && m.method() == method) out.push_back(&m);
        return out;
    }

    // Waits for the response to `id`; fails the test when none comes.
    const sent_message& wait_response(const std::string& id, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        const bool got = pump_until([&] { return find_response(id) != nullptr; }, timeout);
        INFO("waiting for the response to id " << id);
        REQUIRE(got);
        return *find_response(id);
    }

    // Sends a request and returns its response.
    const sent_message& call(const std::string& id, const std::string& method, const std::string& params = {}) {
        send(rpc_request(id, method, params));
        return wait_response(id);
    }

    // initialize + notifications/initialized; returns the negotiated version.
    std::string initialize(const std::string& version = server::latest_protocol_version) {
        const auto& r = call(R"("init")", "initialize",
                             R"({"protocolVersion":")" + version +
                                 R"(","capabilities":{},"clientInfo":{"name":"catch2","version":"1"}})");
        REQUIRE(r.doc.HasMember("result"));
        send(rpc_notification("notifications/initialized"));
        return r.doc["result"]["protocolVersion"].GetString();
    }

private:
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
    server::mcp_server server_;
    std::shared_ptr<recording_outbound> out_ = std::make_shared<recording_outbound>();
    std::shared_ptr<server::mcp_session> session_;
};

inline int error_code_of(const sent_message& m) {
    REQUIRE(m.doc.HasMember("error"));
    return m.doc["error"]["code"].GetInt();
}

inline const server::json_value& result_of(const sent_message& m) {
    INFO(m.text);
    REQUIRE(m.doc.HasMember("result"));
    return m.doc["result"];
}

// The text of a tools/call result's first content item.
inline std::string content_text(const sent_message& m) {
    const auto& r = result_of(m);
    REQUIRE(r.HasMember("content"));
    REQUIRE(r["content"].IsArray());
    REQUIRE(r["content"].Size() >= 1);
    return r["content"][0]["text"].GetString();
}

inline bool is_error_result(const sent_message& m) {
    const auto& r = result_of(m);
    return r.HasMember("isError") && r["isError"].IsBool() && r["isError"].GetBool();
}

}  // namespace datavor::test
