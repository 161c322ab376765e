#include "server/mcp_server.hpp"

#include "server/mcp_session.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace datavor::server {

namespace {
constexpr std::string_view level_names[] = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};
}

std::optional<log_level> parse_log_level(std::string_view s) {
    for (std::size_t i = 0; i < std::size(level_names); ++i)
        if (level_names[i] == s) return static_cast<log_level>(i);
    return std::nullopt;
}

std::string_view to_string(log_level l) { return level_names[static_cast<std::size_t>(l)]; }

mcp_server::mcp_server(server_info info) : info_(std::move(info)) {}
mcp_server::~mcp_server() = default;

void mcp_server::add_tool(std::string_view definition_json, tool_handler handler) {
    catalog_.add(definition_json);
    const auto* def = catalog_.ordered().back();
    handlers_.emplace(def->name, std::move(handler));
}

const tool_handler* mcp_server::handler(std::string_view name) const {
    auto it = handlers_.find(name);
    return it == handlers_.end() ? nullptr : &it->second;
}

void mcp_server::add_resources(resource_provider p) { resources_.push_back(std::move(p)); }

namespace {
void push_described(json_value& out, json_alloc& a, const char* uri_key, const std::string& uri,
                    const std::string& name, const std::string& title, const std::string& description) {
    json_value v(rapidjson::kObjectType);
    v.AddMember(rapidjson::StringRef(uri_key), str(uri, a), a);
    v.AddMember("name", str(name, a), a);
    if (!title.empty()) v.AddMember("title", str(title, a), a);
    v.AddMember("description", str(description, a), a);
    v.AddMember("mimeType", "application/json", a);
    out.PushBack(v, a);
}
}  // namespace

void push_json_resource(json_value& out, json_alloc& a, const std::string& uri, const std::string& name,
                        const std::string& title, const std::string& description) {
    push_described(out, a, "uri", uri, name, title, description);
}

void push_json_template(json_value& out, json_alloc& a, const std::string& uri_template, const std::string& name,
                        const std::string& title, const std::string& description) {
    push_described(out, a, "uriTemplate", uri_template, name, title, description);
}

void push_json_contents(json_value& out, json_alloc& a, const std::string& uri, const std::string& text) {
    json_value c(rapidjson::kObjectType);
    c.AddMember("uri", str(uri, a), a);
    c.AddMember("mimeType", "application/json", a);
    c.AddMember("text", str(text, a), a);
    out.PushBack(c, a);
}
void mcp_server::add_prompt(prompt_definition p) { prompts_.push_back(std::move(p)); }
void mcp_server::add_completion(completion_provider c) { completions_.push_back(std::move(c)); }

std::vector<std::string> mcp_server::complete(const json_value& ref, std::string_view argument, std::string_view value,
                                              const json_value* context_args) const {
    std::vector<std::string> out;
    for (const auto& c : completions_) {
        auto v = c(ref, argument, value, context_args);
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

void mcp_server::attach(const std::shared_ptr<mcp_session>& s) {
    std::lock_guard lock(mu_);
    std::erase_if(sessions_, [](const auto& w) { return w.expired(); });
    sessions_.push_back(s);
}

std::vector<std::shared_ptr<mcp_session>> mcp_server::live_sessions() {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<mcp_session>> out;
    for (auto& w : sessions_)
        if (auto s = w.lock()) out.push_back(std::move(s));
    return out;
}

void mcp_server::notify_resource_updated(const std::string& uri) {
    for (auto& s : live_sessions()) s->notify_resource_updated(uri);
}

void mcp_server::notify_resource_list_changed() {
    for (auto& s : live_sessions()) s->notify_resource_list_changed();
}

void mcp_server::log(log_level level, std::string_view logger, std::string_view text) {
    // stderr only: stdout belongs to the MCP stdio transport.
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&now, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::fprintf(stderr, "%s %-7s [%.*s] %.*s\n", ts, std::string(to_string(level)).c_str(),
                 static_cast<int>(logger.size()), logger.data(), static_cast<int>(text.size()), text.data());
    for (auto& s : live_sessions()) s->notify_log(level, std::string(logger), std::string(text));
}

}  // namespace datavor::server
