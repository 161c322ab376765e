#pragma once
// The one place that builds the engines and the concrete connectors and hands
// them to the MCP handlers and the CLI. Nothing else names a concrete connector.
//
// Lifecycle: lives as long as the process; owns context.db and the secrets file.
#include "connectors/common/stream_parts.hpp"
#include "engines/stream/stream_runner.hpp"
#include "server/connection_tools.hpp"

#include <boost/asio/any_io_executor.hpp>
#include "server/mcp_server.hpp"

#include <filesystem>
#include <memory>

namespace datavor::engines::suggest {
class suggest_engine;
}
namespace datavor::engines::ledger {
class ledger;
}

namespace datavor::server {

class application {
public:
    // With an executor, streams can run (and their tools are registered); the
    // CLI's connection commands need none.
    explicit application(const std::filesystem::path& home, boost::asio::any_io_executor ex = {});
    ~application();

    const std::filesystem::path& home() const { return home_; }
    connection_deps connections();
    // Registers every product tool, resource, prompt and completion.
    void register_product(mcp_server& server);

    struct stream_request {
        std::string name;
        std::string source;  // a saved connection name or a URL
        std::string target;  // a saved connection name or a URL (sqlite:PATH)
        std::vector<std::string> tables;
        connectors::snapshot_mode snapshot = connectors::snapshot_mode::initial;
        std::string autopilot;  // "" the saved stream's; the CLI's --autopilot
    };
    // Starts the streams saved as running (process start) / stops them all,
    // keeping them saved as running (process end). Need an executor.
    void resume_streams();
    boost::asio::awaitable<void> shutdown_streams();
    // Server logs also reach MCP clients once a server is registered.
    void set_log(engines::stream::stream_log log);

    // A stream saved in context.db (started through MCP), as a request.
    std::optional<stream_request> saved_stream(const std::string& name);
    // Builds a stream from its parts; throws std::invalid_argument with what to fix.
    std::unique_ptr<engines::stream::stream_runner> make_stream(const stream_request& req,
                                                                engines::stream::stream_log log);

    // The ledger (ledger.db in the home folder), opened on first use.
    engines::ledger::ledger& ledger();
    engines::suggest::suggest_engine& suggest();  // opened with the ledger
    // Retention applied by the ledger every hour (set before its first use):
    // batch entries older than `keep_days` or beyond `max_mb` roll up into
    // daily summaries; 0 turns a limit off. Defaults: 30 days, 1024 MiB.
    void set_ledger_retention(int keep_days, std::int64_t max_mb);
    // A stream's secret salt for masks (secrets.json; created on first use, never shown).
    std::string stream_salt(const std::string& stream);

private:
    struct parts;
    std::filesystem::path home_;
    std::unique_ptr<parts> parts_;
};

server_info product_info();

}  // namespace datavor::server
