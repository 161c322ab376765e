#pragma once
// MCP tools and resources for streams (start, stop, pause, resume, list,
// status). Thin: arguments in, the stream manager and the prerequisite
// checks do the work, a structured result out.
#include "engines/stream/stream_manager.hpp"
#include "server/connection_tools.hpp"
#include "server/mcp_server.hpp"

namespace datavor::server {

struct stream_deps {
    connection_deps connections;
    engines::stream::stream_manager& manager;
    // Drops a saved stream's replication slot on its source.
    std::function<boost::asio::awaitable<void>(engines::context::stream_record)> drop_slot;
};

void register_stream_tools(mcp_server& server, stream_deps deps);

}  // namespace datavor::server
