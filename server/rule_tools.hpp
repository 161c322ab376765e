#pragma once
// MCP tools for the rules engine: add_rule, list_rules, remove_rule. Thin:
// rules are checked (engines/rules validate), saved in context.db and picked
// up by a running stream between two batches; each change is in the ledger.
#include "engines/context/context_store.hpp"
#include "engines/ledger/ledger.hpp"
#include "engines/stream/stream_manager.hpp"
#include "server/mcp_server.hpp"

namespace datavor::server {

struct rule_deps {
    engines::context::context_store& context;
    engines::stream::stream_manager& manager;
    engines::ledger::ledger& ledger;
    // The stream's secret mask salt (created when missing), for test_rule's masks.
    std::function<std::string(const std::string& stream)> salt_of;
    // The internal rules that keep a stream's pending new columns out of the target (engines/suggest).
    std::function<std::vector<engines::rules::rule>(const std::string& stream)> withholds_of;
};

void register_rule_tools(mcp_server& server, rule_deps deps);

}  // namespace datavor::server
