#pragma once
// MCP tools, resources, prompt and completions for connections. Handlers are
// thin: validated arguments in, an engine call, a structured result out.
#include "connectors/common/prerequisites.hpp"
#include "engines/context/context_store.hpp"
#include "engines/context/secret_store.hpp"
#include "server/mcp_server.hpp"

#include <map>

namespace datavor::server {

struct connection_deps {
    engines::context::context_store& context;
    engines::context::secret_store& secrets;
    std::map<connectors::db_kind, connectors::prerequisite_prober*> probers;
};

void register_connection_tools(mcp_server& server, connection_deps deps);

// The connection as tools and resources show it (never with a password).
json_value connection_json(const engines::context::connection_record& r, json_alloc& a);

// Runs the prerequisite checks for a saved connection (used by the tool and the CLI).
boost::asio::awaitable<json_doc> run_connection_test(connection_deps deps, std::string name,
                                                     std::vector<std::string> tables, int timeout_seconds,
                                                     connectors::probe_progress progress);

}  // namespace datavor::server
