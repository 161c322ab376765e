#pragma once
// MCP tools for the Suggestion Engine: list_suggestions, accept_suggestion,
// reject_suggestion, set_autopilot, and the resource datavor://suggestions.
// Thin: decisions are the engine's (engines/suggest); a running stream
// carries an accepted one out between two batches.
#include "engines/stream/stream_manager.hpp"
#include "engines/suggest/suggest_engine.hpp"
#include "server/mcp_server.hpp"

namespace datavor::server {

struct suggestion_deps {
    engines::suggest::suggest_engine& engine;
    engines::stream::stream_manager& manager;
    std::function<void()> changed;  // resources/updated datavor://suggestions
};

void register_suggestion_tools(mcp_server& server, suggestion_deps deps);

}  // namespace datavor::server
