#pragma once
// The one place that builds the engines and the concrete connectors and hands
// them to the MCP handlers and the CLI. Nothing else names a concrete connector.
//
// Lifecycle: lives as long as the process; owns context.db and the secrets file.
#include "server/connection_tools.hpp"
#include "server/mcp_server.hpp"

#include <filesystem>
#include <memory>

namespace datavor::server {

class application {
public:
    explicit application(const std::filesystem::path& home);
    ~application();

    const std::filesystem::path& home() const { return home_; }
    connection_deps connections();
    // Registers every product tool, resource, prompt and completion.
    void register_product(mcp_server& server);

private:
    struct parts;
    std::filesystem::path home_;
    std::unique_ptr<parts> parts_;
};

server_info product_info();

}  // namespace datavor::server
