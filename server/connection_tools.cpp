#include "server/connection_tools.hpp"

#include "engines/context/connections.hpp"
#include "mcp-schema/embedded.hpp"
#include "server/mcp_session.hpp"

#include <boost/asio/use_awaitable.hpp>

namespace datavor::server {
namespace {

namespace ctx = engines::context;

std::optional<std::string> opt_string(const json_value& args, const char* key) {
    auto v = string_member(args, key);
    return v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
}

constexpr std::string_view connections_uri = "datavor://connections";

json_doc handle_add(connection_deps deps, mcp_server& server, const json_doc& args) {
    ctx::add_connection_request req;
    req.name = std::string(*string_member(args, "name"));
    req.url = std::string(*string_member(args, "url"));
    req.password = opt_string(args, "password");
    req.password_env = opt_string(args, "password_env");
    req.sslmode = opt_string(args, "sslmode");
    req.sslrootcert = opt_string(args, "sslrootcert");
    if (auto* r = member(args, "replace"); r && r->IsBool()) req.replace = r->GetBool();
    if (req.password && req.password_env)
        return text_result("Give either password or password_env, not both.", true);
    auto added = ctx::add_connection(deps.context, deps.secrets, req);
    if (!added) return text_result("Cannot add connection " + req.name + ": " + added.error().message(), true);
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("connection", connection_json(added->record, a), a);
    out.AddMember("created", added->created, a);
    server.log(log_level::info, "context",
               "connection " + req.name + (added->created ? " added: " : " updated: ") +
                   added->record.spec.redacted_url());
    server.notify_resource_updated(std::string(connections_uri));
    server.notify_resource_updated(std::string(connections_uri) + "/" + req.name);
    server.notify_resource_list_changed();
    return structured_result(std::move(out));
}

json_doc list_json(const ctx::context_store& store, std::optional<std::string> kind) {
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    json_value arr(rapidjson::kArrayType);
    for (const auto& r : store.list_connections())
        if (!kind || to_string(r.spec.kind) == *kind) arr.PushBack(connection_json(r, a), a);
    out.AddMember("connections", arr, a);
    return out;
}

// Coroutine handlers are free functions taking everything by value (no capturing coroutine lambdas).
boost::asio::awaitable<json_doc> add_tool(connection_deps deps, mcp_server* server, json_doc args,
                                          std::shared_ptr<call_context>) {
    co_return handle_add(deps, *server, args);
}

boost::asio::awaitable<json_doc> list_tool(connection_deps deps, json_doc args, std::shared_ptr<call_context>) {
    co_return structured_result(list_json(deps.context, opt_string(args, "kind")));
}

boost::asio::awaitable<json_doc> remove_tool(connection_deps deps, mcp_server* server, json_doc args,
                                             std::shared_ptr<call_context>) {
    std::string name(*string_member(args, "name"));
    bool removed = ctx::remove_connection(deps.context, deps.secrets, name);
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("name", str(name, a), a);
    out.AddMember("removed", removed, a);
    if (removed) {
        server->log(log_level::info, "context", "connection " + name + " removed");
        server->notify_resource_updated(std::string(connections_uri));
        server->notify_resource_updated(std::string(connections_uri) + "/" + name);
        server->notify_resource_list_changed();
    }
    co_return structured_result(std::move(out));
}

boost::asio::awaitable<json_doc> test_tool(connection_deps deps, json_doc args, std::shared_ptr<call_context> call) {
    std::vector<std::string> tables;
    if (auto* t = member(args, "tables"))
        for (const auto& v : t->GetArray()) tables.emplace_back(v.GetString(), v.GetStringLength());
    int timeout = 10;
    if (auto* t = member(args, "timeout_seconds"); t && t->IsInt()) timeout = t->GetInt();
    std::string name(*string_member(args, "name"));
    auto counter = std::make_shared<int>(0);
    connectors::probe_progress progress = [call, counter](const connectors::prerequisite_check& c) {
        ++*counter;
        call->progress(*counter, std::nullopt,
                       std::string(to_string(c.status)) + ": " + c.title + (c.detail.empty() ? "" : " (" + c.detail + ")"));
    };
    co_return co_await run_connection_test(deps, name, std::move(tables), timeout, std::move(progress));
}

std::vector<std::string> complete_names(const ctx::context_store& store, std::string_view prefix) {
    std::vector<std::string> out;
    for (const auto& r : store.list_connections())
        if (r.name.starts_with(prefix)) out.push_back(r.name);
    return out;
}

}  // namespace

json_value connection_json(const ctx::connection_record& r, json_alloc& a) {
    json_value c(rapidjson::kObjectType);
    c.AddMember("name", str(r.name, a), a);
    c.AddMember("kind", str(to_string(r.spec.kind), a), a);
    c.AddMember("url", str(r.spec.redacted_url(), a), a);
    std::string source = r.secret_ref.starts_with("env:") ? "env" : r.secret_ref;
    c.AddMember("password_source", str(source, a), a);
    if (source == "env") c.AddMember("password_env", str(r.secret_ref.substr(4), a), a);
    c.AddMember("sslmode", str(r.spec.param("sslmode", r.spec.param("ssl-mode")), a), a);
    c.AddMember("created_at", str(ctx::iso_time(r.created_at), a), a);
    c.AddMember("updated_at", str(ctx::iso_time(r.updated_at), a), a);
    return c;
}

boost::asio::awaitable<json_doc> run_connection_test(connection_deps deps, std::string name,
                                                     std::vector<std::string> tables, int timeout_seconds,
                                                     connectors::probe_progress progress) {
    auto rec = deps.context.find_connection(name);
    if (!rec) co_return text_result("No connection named " + name + ". Add it with add_connection first (see list_connections).", true);
    auto password = ctx::resolve_password(*rec, deps.secrets);
    if (!password)
        co_return text_result("Cannot read the password of connection " + name + ": " + password.error().message() +
                                  (rec->secret_ref.starts_with("env:") ? " (variable " + rec->secret_ref.substr(4) + ")" : ""),
                              true);
    auto it = deps.probers.find(rec->spec.kind);
    if (it == deps.probers.end() || !it->second)
        co_return text_result("No prerequisite checks exist for " + std::string(to_string(rec->spec.kind)), true);
    connectors::probe_request req{rec->spec, *password, std::move(tables), std::chrono::seconds(timeout_seconds)};
    auto report = co_await it->second->run_checks(std::move(req), std::move(progress));

    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("connection", str(name, a), a);
    out.AddMember("kind", str(to_string(rec->spec.kind), a), a);
    out.AddMember("ok", report.ok(), a);
    if (!report.server_version.empty()) out.AddMember("server_version", str(report.server_version, a), a);
    int failed = 0, warned = 0;
    json_value checks(rapidjson::kArrayType);
    for (const auto& c : report.checks) {
        failed += c.status == connectors::check_status::fail;
        warned += c.status == connectors::check_status::warn;
        json_value j(rapidjson::kObjectType);
        j.AddMember("id", str(c.id, a), a);
        j.AddMember("title", str(c.title, a), a);
        j.AddMember("status", str(to_string(c.status), a), a);
        j.AddMember("detail", str(c.detail, a), a);
        if (!c.fix.empty()) j.AddMember("fix", str(c.fix, a), a);
        checks.PushBack(j, a);
    }
    std::string summary = failed ? std::to_string(failed) + " check(s) failed; apply each check's fix, then run test_connection again"
                                 : "ready for change data capture";
    if (warned) summary += " (" + std::to_string(warned) + " warning(s))";
    out.AddMember("summary", str(summary, a), a);
    out.AddMember("checks", checks, a);
    co_return structured_result(std::move(out));
}

void register_connection_tools(mcp_server& server, connection_deps deps) {
    mcp_server* srv = &server;
    server.add_tool(mcp_schema::tool_file("add_connection.json"), [deps, srv](json_doc args, std::shared_ptr<call_context> c) {
        return add_tool(deps, srv, std::move(args), std::move(c));
    });
    server.add_tool(mcp_schema::tool_file("list_connections.json"), [deps](json_doc args, std::shared_ptr<call_context> c) {
        return list_tool(deps, std::move(args), std::move(c));
    });
    server.add_tool(mcp_schema::tool_file("test_connection.json"), [deps](json_doc args, std::shared_ptr<call_context> c) {
        return test_tool(deps, std::move(args), std::move(c));
    });
    server.add_tool(mcp_schema::tool_file("remove_connection.json"), [deps, srv](json_doc args, std::shared_ptr<call_context> c) {
        return remove_tool(deps, srv, std::move(args), std::move(c));
    });

    auto* store = &deps.context;
    resource_provider res;
    res.list = [store](json_value& out, json_alloc& a) {
        push_json_resource(out, a, std::string(connections_uri), "connections", "Database connections",
                           "Every saved connection (no passwords)");
        for (const auto& r : store->list_connections())
            push_json_resource(out, a, std::string(connections_uri) + "/" + r.name, "connection " + r.name, "",
                               std::string(to_string(r.spec.kind)) + " connection " + r.spec.redacted_url());
    };
    res.templates = [](json_value& out, json_alloc& a) {
        push_json_template(out, a, std::string(connections_uri) + "/{name}", "connection", "One database connection",
                           "A saved connection by name (no password)");
    };
    res.read = [store](const std::string& uri, json_value& out, json_alloc& a) {
        std::string text;
        if (uri == connections_uri) {
            text = to_json(list_json(*store, std::nullopt));
        } else if (uri.starts_with(std::string(connections_uri) + "/")) {
            auto rec = store->find_connection(uri.substr(connections_uri.size() + 1));
            if (!rec) return false;
            json_doc d;
            text = to_json(connection_json(*rec, d.GetAllocator()));
        } else {
            return false;
        }
        push_json_contents(out, a, uri, text);
        return true;
    };
    server.add_resources(std::move(res));

    prompt_definition p;
    p.definition.Parse(R"json({"name":"check-source","title":"Check a source database for CDC",
      "description":"Walks through checking that a saved connection is ready for change data capture and fixing what is missing.",
      "arguments":[{"name":"connection","description":"The saved connection to check","required":true},
                   {"name":"tables","description":"Comma-separated tables the stream will read (optional)","required":false}]})json");
    p.get = [](const json_value& args, std::string& error) -> std::optional<json_doc> {
        auto conn = string_member(args, "connection");
        if (!conn) {
            error = "argument connection is required";
            return std::nullopt;
        }
        auto tables = string_member(args, "tables");
        std::string text = "Check whether the database connection `" + std::string(*conn) +
                           "` is ready for change data capture. Call the tool test_connection with name \"" +
                           std::string(*conn) + "\"" +
                           (tables ? " and tables [" + std::string(*tables) + "] (split on commas)" : std::string{}) +
                           ". Then list the checks that failed or warned, and for each show its `fix` exactly as "
                           "returned (SQL to run as an administrator, or a server setting). Never ask for or repeat a "
                           "password. If everything passes, say the source is ready.";
        return prompt_text_result("Check a source database for CDC", text);
    };
    server.add_prompt(std::move(p));

    server.add_completion([store](const json_value& ref, std::string_view arg, std::string_view value,
                                  const json_value*) -> std::vector<std::string> {
        auto type = string_member(ref, "type");
        if (type == "ref/prompt" && string_member(ref, "name") == "check-source" && arg == "connection")
            return complete_names(*store, value);
        if (type == "ref/resource" && string_member(ref, "uri") == std::string(connections_uri) + "/{name}" &&
            arg == "name")
            return complete_names(*store, value);
        return {};
    });
}

}  // namespace datavor::server
