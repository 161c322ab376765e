#pragma once
// MCP tools and the resource for the sync ledger: inspect_ledger,
// retry_failed, dismiss_failed and datavor://ledger/{stream}. Thin: the
// ledger engine reads and records; retries run on the stream's strand.
#include "engines/ledger/ledger.hpp"
#include "engines/stream/stream_manager.hpp"
#include "server/mcp_server.hpp"

namespace datavor::server {

struct ledger_deps {
    engines::ledger::ledger& ledger;
    engines::stream::stream_manager& manager;
    engines::context::context_store& context;
};

void register_ledger_tools(mcp_server& server, ledger_deps deps);

// An entry as JSON (shared with the CLI's `datavor ledger show`).
json_value ledger_entry_json(const engines::ledger::entry& e, json_alloc& a);
std::string utc_iso_us(std::int64_t unix_us);
// retry_failed's result (shared with `datavor ledger retry --json`).
json_doc retry_outcome_json(const std::string& stream, const engines::stream::retry_outcome& o, std::int64_t open_left);

}  // namespace datavor::server
