#pragma once
// The MCP server core, shared by every transport: what the server offers
// (tools, resources, prompts, completions) and the live sessions it
// broadcasts to. Method dispatch for one client lives in mcp_session.
//
// Thread safety: registration happens before any session exists; afterwards
// the registries are read-only. The session list and log broadcast take a
// mutex; each session's own work runs on its strand.
#include "server/json.hpp"
#include "server/tool_catalog.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace datavor::server {

class mcp_session;
class call_context;

enum class log_level { debug, info, notice, warning, error, critical, alert, emergency };
std::optional<log_level> parse_log_level(std::string_view s);
std::string_view to_string(log_level l);

// A tool handler gets the validated arguments and returns the tools/call result
// object ({content, structuredContent?, isError?}). Exceptions become isError
// results; cancellation arrives through the awaiting coroutine's slot.
using tool_handler = std::function<boost::asio::awaitable<json_doc>(json_doc arguments, std::shared_ptr<call_context>)>;

struct resource_provider {
    std::function<void(json_value& out_array, json_alloc&)> list;        // resources/list entries
    std::function<void(json_value& out_array, json_alloc&)> templates;   // resources/templates/list entries
    // Fills out_array with `contents` entries; false when the URI is not this provider's.
    std::function<bool(const std::string& uri, json_value& out_array, json_alloc&)> read;
};

// JSON resources: a resources/list entry, a resources/templates/list entry
// (title may be empty), and one `contents` entry holding `text`.
void push_json_resource(json_value& out, json_alloc& a, const std::string& uri, const std::string& name,
                        const std::string& title, const std::string& description);
void push_json_template(json_value& out, json_alloc& a, const std::string& uri_template, const std::string& name,
                        const std::string& title, const std::string& description);
void push_json_contents(json_value& out, json_alloc& a, const std::string& uri, const std::string& text);

struct prompt_definition {
    json_doc definition;  // {name, title, description, arguments[]}
    // Returns the prompts/get result, or an error message for bad arguments.
    std::function<std::optional<json_doc>(const json_value& arguments, std::string& error)> get;
};

// completion/complete: ref ({type, name|uri}), argument name and partial value,
// resolved context arguments; returns the candidate values.
using completion_provider = std::function<std::vector<std::string>(
    const json_value& ref, std::string_view argument, std::string_view value, const json_value* context_args)>;

struct server_info {
    std::string name = "datavor";
    std::string title = "Datavor";
    std::string version;
    std::string instructions;
};

class mcp_server {
public:
    explicit mcp_server(server_info info);
    ~mcp_server();

    // Registration (before serving).
    void add_tool(std::string_view definition_json, tool_handler handler);
    void add_resources(resource_provider p);
    void add_prompt(prompt_definition p);
    // Every provider is asked; their candidates are concatenated.
    void add_completion(completion_provider c);
    void set_page_size(std::size_t n) { page_size_ = n; }

    const server_info& info() const { return info_; }
    const tool_catalog& tools() const { return catalog_; }
    const tool_handler* handler(std::string_view name) const;
    const std::vector<resource_provider>& resources() const { return resources_; }
    const std::vector<prompt_definition>& prompts() const { return prompts_; }
    std::vector<std::string> complete(const json_value& ref, std::string_view argument, std::string_view value,
                                      const json_value* context_args) const;
    std::size_t page_size() const { return page_size_; }

    // Sessions register themselves; broadcasts reach every live one.
    void attach(const std::shared_ptr<mcp_session>& s);
    void notify_resource_updated(const std::string& uri);
    void notify_resource_list_changed();
    // Writes to stderr and to each session whose logging/setLevel admits it.
    void log(log_level level, std::string_view logger, std::string_view text);
    // Protect against a broadcast while sessions are being torn down.
    std::vector<std::shared_ptr<mcp_session>> live_sessions();

private:
    server_info info_;
    tool_catalog catalog_;
    std::map<std::string, tool_handler, std::less<>> handlers_;
    std::vector<resource_provider> resources_;
    std::vector<prompt_definition> prompts_;
    std::vector<completion_provider> completions_;
    std::size_t page_size_ = 50;
    std::mutex mu_;
    std::vector<std::weak_ptr<mcp_session>> sessions_;
};

}  // namespace datavor::server
