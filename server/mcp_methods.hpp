#pragma once
// The MCP methods that answer from the server's registries alone, without
// session state or I/O: listing (with cursor pagination), reading resources,
// prompts and completions. Each returns a result or a JSON-RPC error.
#include "server/json.hpp"
#include "server/mcp_server.hpp"

#include <string>
#include <variant>

namespace datavor::server {

struct rpc_error {
    int code;
    std::string message;
};
using method_reply = std::variant<json_doc, rpc_error>;

method_reply list_tools(const mcp_server& s, const json_value* params);
method_reply list_resources(const mcp_server& s, const json_value* params);
method_reply list_resource_templates(const mcp_server& s, const json_value* params);
method_reply read_resource(const mcp_server& s, const json_value* params);
method_reply list_prompts(const mcp_server& s, const json_value* params);
method_reply get_prompt(const mcp_server& s, const json_value* params);
method_reply complete(const mcp_server& s, const json_value* params);

}  // namespace datavor::server
