// libFuzzer target: JSON-RPC framing and the MCP dispatcher.
// The input is a byte stream as a client would write it on stdio: it is split
// into lines by line_framer, every line goes through jsonrpc::parse and then a
// live mcp_session (with a tool whose inputSchema exercises the validator).
// Invariants: no crash, no sanitizer report, every reply is valid JSON.
#include "server/jsonrpc.hpp"
#include "server/mcp_session.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <cstdlib>

using namespace datavor::server;

namespace {

struct checking_outbound final : outbound {
    void send(std::string message, const std::string&, bool) override {
        json_doc d;
        d.Parse(message.c_str());
        if (d.HasParseError()) std::abort();  // the server must only ever write valid JSON
    }
};

boost::asio::awaitable<json_doc> echo(json_doc args, std::shared_ptr<call_context> c) {
    c->progress(1, 2, "half");
    co_return structured_result(std::move(args));
}

mcp_server& server() {
    static mcp_server* s = [] {
        auto* srv = new mcp_server(server_info{"fuzz", "fuzz", "0", ""});
        srv->add_tool(R"({"name":"echo","description":"echo","inputSchema":{"type":"object","properties":{
            "name":{"type":"string","pattern":"^[a-z]+$","maxLength":8},
            "n":{"type":"integer","minimum":0,"maximum":9},
            "kind":{"type":"string","enum":["a","b"]},
            "list":{"type":"array","items":{"type":"string"},"maxItems":3}},
            "required":["name"],"additionalProperties":false}})",
                      [](json_doc a, std::shared_ptr<call_context> c) { return echo(std::move(a), std::move(c)); });
        srv->set_page_size(1);
        return srv;
    }();
    return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    boost::asio::io_context io;
    auto session = make_session(server(), boost::asio::make_strand(io), std::make_shared<checking_outbound>());
    // Prime an initialized session half of the time, so deeper methods are reached.
    if (size > 0 && (data[0] & 1))
        session->receive(std::string(
            R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}})"));
    jsonrpc::line_framer framer(4096);
    framer.feed(
        input,
        [&](std::string line) {
            (void)jsonrpc::parse(line);
            session->receive(std::move(line));
        },
        [] {});
    io.run_for(std::chrono::milliseconds(50));
    return 0;
}
