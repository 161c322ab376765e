#pragma once
// The two MCP transports. Both only move JSON-RPC text between a peer and an
// mcp_session; neither knows any MCP method. Beast and Asio socket headers stay
// inside the .cpp files so that this header is cheap to include.
#include "server/mcp_server.hpp"

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace datavor::server {

// Largest JSON-RPC message accepted from a peer (a longer stdio line gets a
// -32600 error and is skipped; a larger HTTP body gets 413).
inline constexpr std::size_t max_message_bytes = 4 * 1024 * 1024;

// Serves one session over stdin/stdout (newline-delimited JSON) until stdin
// closes; then lets running calls finish (up to `grace`), cancels the rest and
// flushes stdout. Nothing but MCP is written to stdout.
boost::asio::awaitable<void> serve_stdio(mcp_server& server, std::chrono::milliseconds grace);

struct http_options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 7433;
    std::optional<std::string> token;         // when set, every request needs "Authorization: Bearer <token>"
    std::vector<std::string> allowed_origins;  // extra Origins beyond loopback ones
    std::size_t max_sessions = 1024;
};

bool is_loopback_address(const std::string& address);

// Streamable HTTP on /mcp until cancelled. Calls `on_listening` with the bound
// port once accepting (port 0 picks a free one).
boost::asio::awaitable<void> serve_http(mcp_server& server, http_options options,
                                        std::function<void(std::uint16_t)> on_listening);

}  // namespace datavor::server
