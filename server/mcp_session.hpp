#pragma once
// One MCP client session: the dispatcher. Takes JSON-RPC text from a
// transport, answers through an outbound sink, runs handlers as coroutines.
//
// Lifecycle: create with make_session(), feed with receive(), end with
// stop() (cancels every in-flight request, then waits for them).
// Strand: all state is touched only on the session's strand; receive() and
// the notify_* calls may come from any thread (they post).
// Cancellation: notifications/cancelled emits terminal cancellation on the
// request's slot; a cancelled request sends no response.
#include "server/json.hpp"
#include "server/jsonrpc.hpp"
#include "server/mcp_server.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace datavor::server {

// Where a session's outgoing messages go. `related` is the JSON text of the
// client request id a message belongs to (empty when none); `final` marks that
// request's response. Called on the session's strand.
class outbound {
public:
    virtual ~outbound() = default;
    virtual void send(std::string message, const std::string& related, bool final) = 0;
};

inline constexpr const char* latest_protocol_version = "2025-11-25";
bool is_supported_protocol_version(std::string_view v);

struct session_limits {
    std::size_t max_in_flight = 64;
};

class mcp_session {
public:
    virtual ~mcp_session() = default;
    // Thread-safe: hands one complete JSON-RPC message to the session.
    virtual void receive(std::string text) = 0;
    // Thread-safe: the same for a message the transport has parsed already.
    virtual void receive(jsonrpc::message m) = 0;
    // Lets running calls finish for up to `grace`, then cancels the rest;
    // completes when every handler has ended. New requests are refused meanwhile.
    virtual boost::asio::awaitable<void> stop(std::chrono::milliseconds grace) = 0;
    virtual void notify_resource_updated(const std::string& uri) = 0;
    virtual void notify_resource_list_changed() = 0;
    virtual void notify_log(log_level level, std::string logger, std::string text) = 0;
    virtual std::string protocol_version() const = 0;  // empty before initialize
};

// The executor should be a strand (the session's).
std::shared_ptr<mcp_session> make_session(mcp_server& server, boost::asio::any_io_executor strand,
                                          std::shared_ptr<outbound> out, session_limits limits = {});

// What a tool handler can do while it runs.
class call_context {
public:
    virtual ~call_context() = default;
    // Sends notifications/progress when the call carried a progressToken.
    virtual void progress(double value, std::optional<double> total, std::string message) = 0;
    virtual bool wants_progress() const = 0;
    // notifications/message tied to this request (respecting logging/setLevel).
    virtual void log(log_level level, std::string logger, std::string text) = 0;
    // A server-to-client request (sampling/createMessage, elicitation/create,
    // roots/list); returns the client's result or throws with its error.
    virtual boost::asio::awaitable<json_doc> ask_client(std::string method, json_doc params) = 0;
    virtual const json_value* client_capabilities() const = 0;
};

// Builds a tools/call result: structured content plus its JSON text.
json_doc structured_result(json_doc structured, bool is_error = false);
json_doc text_result(std::string_view text, bool is_error = false);
// Builds a prompts/get result: one user message with `text`.
json_doc prompt_text_result(std::string_view description, std::string_view text);

}  // namespace datavor::server
