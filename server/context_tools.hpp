#pragma once
// MCP tool and resource for the Context Engine's schema history:
// schema_history and datavor://context/{stream}/{table}.
#include "engines/context/context_store.hpp"
#include "server/mcp_server.hpp"

namespace datavor::server {

void register_context_tools(mcp_server& server, engines::context::context_store& context);

}  // namespace datavor::server
