#include "server/context_tools.hpp"

#include "mcp-schema/embedded.hpp"
#include "server/json.hpp"
#include "server/ledger_tools.hpp"
#include "server/mcp_session.hpp"

#include <map>

namespace datavor::server {

namespace {

using record = engines::context::context_store::schema_version_record;

std::string qualified(const std::string& t) { return t.find('.') == std::string::npos ? "public." + t : t; }

// A version's columns by name: type, nullable, key.
std::map<std::string, const json_value*> by_name(const json_doc& cols) {
    std::map<std::string, const json_value*> out;
    if (!cols.IsArray()) return out;
    for (const auto& c : cols.GetArray())
        if (c.IsObject() && c.HasMember("name") && c["name"].IsString()) out[c["name"].GetString()] = &c;
    return out;
}

// The history as JSON, each version with its diff from the one before.
json_doc history_json(const std::string& stream, const std::string& table, const std::vector<record>& versions) {
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("stream", str(stream, a), a);
    out.AddMember("table", str(table, a), a);
    json_value arr(rapidjson::kArrayType);
    json_doc previous;
    for (const auto& v : versions) {
        json_doc cols;
        cols.Parse(v.columns_json.c_str());
        json_value o(rapidjson::kObjectType);
        o.AddMember("version", v.version, a);
        o.AddMember("position", str(v.position, a), a);
        o.AddMember("origin", str(v.origin, a), a);
        o.AddMember("seen_at", str(utc_iso_us(v.seen_at * 1000000), a), a);
        o.AddMember("replica_identity", str(v.replica_identity, a), a);
        o.AddMember("columns", json_value(cols, a), a);
        if (previous.IsArray()) {
            const auto before = by_name(previous), after = by_name(cols);
            json_value added(rapidjson::kArrayType), dropped(rapidjson::kArrayType), changed(rapidjson::kArrayType);
            for (const auto& [name, c] : after)
                if (!before.count(name)) added.PushBack(json_value(*c, a), a);
            for (const auto& [name, c] : before)
                if (!after.count(name)) dropped.PushBack(str(name, a), a);
            for (const auto& [name, c] : after) {
                auto it = before.find(name);
                if (it == before.end() || *it->second == *c) continue;
                json_value ch(rapidjson::kObjectType);
                ch.AddMember("column", str(name, a), a);
                ch.AddMember("from", json_value(*it->second, a), a);
                ch.AddMember("to", json_value(*c, a), a);
                changed.PushBack(ch, a);
            }
            json_value diff(rapidjson::kObjectType);
            diff.AddMember("added", added, a);
            diff.AddMember("dropped", dropped, a);
            diff.AddMember("changed", changed, a);
            o.AddMember("diff", diff, a);
        }
        arr.PushBack(o, a);
        previous.CopyFrom(cols, previous.GetAllocator());
    }
    out.AddMember("versions", arr, a);
    return out;
}

boost::asio::awaitable<json_doc> history_tool(engines::context::context_store* ctx, json_doc args) {
    const std::string stream(*string_member(args, "stream"));
    const std::string table = qualified(std::string(*string_member(args, "table")));
    auto versions = ctx->schema_history(stream, table);
    if (versions.empty()) {
        const std::string text = "No schema history for " + table + " in stream " + stream +
                                 " (the stream records it when it opens and whenever the source's definition changes; "
                                 "see list_streams for the tables).";
        co_return text_result(text, true);
    }
    co_return structured_result(history_json(stream, table, versions));
}

}  // namespace

void register_context_tools(mcp_server& server, engines::context::context_store& context) {
    auto* ctx = &context;
    server.add_tool(mcp_schema::tool_file("schema_history.json"), [ctx](json_doc args, std::shared_ptr<call_context>) {
        return history_tool(ctx, std::move(args));
    });
    resource_provider res;
    res.list = [](json_value&, json_alloc&) {};
    res.templates = [](json_value& out, json_alloc& a) {
        push_json_template(out, a, "datavor://context/{stream}/{table}", "schema history", "A table's schema history",
                           "Every definition of a streamed table, with the position it took effect and the diff from the one before");
    };
    res.read = [ctx](const std::string& uri, json_value& out, json_alloc& a) {
        constexpr std::string_view prefix = "datavor://context/";
        if (!uri.starts_with(prefix)) return false;
        const auto rest = uri.substr(prefix.size());
        const auto slash = rest.find('/');
        if (slash == std::string::npos) return false;
        const std::string stream = rest.substr(0, slash), table = qualified(rest.substr(slash + 1));
        auto versions = ctx->schema_history(stream, table);
        if (versions.empty()) return false;
        push_json_contents(out, a, uri, to_json(history_json(stream, table, versions)));
        return true;
    };
    server.add_resources(std::move(res));
}

}  // namespace datavor::server
