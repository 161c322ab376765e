#include "server/suggestion_tools.hpp"

#include "mcp-schema/embedded.hpp"
#include "server/json.hpp"
#include "server/ledger_tools.hpp"
#include "server/mcp_session.hpp"

namespace datavor::server {

namespace {

namespace ctx = engines::context;

std::string opt(const json_value& args, const char* key) { return std::string(string_member(args, key).value_or("")); }

json_value suggestion_json(const ctx::suggestion_record& s, json_alloc& a) {
    json_value o(rapidjson::kObjectType);
    o.AddMember("id", s.id, a);
    o.AddMember("stream", str(s.stream, a), a);
    o.AddMember("table", str(s.table, a), a);
    o.AddMember("kind", str(s.kind, a), a);
    if (!s.column.empty()) o.AddMember("column", str(s.column, a), a);
    if (!s.old_type.empty()) o.AddMember("old_type", str(s.old_type, a), a);
    if (!s.new_type.empty()) o.AddMember("new_type", str(s.new_type, a), a);
    o.AddMember("position", str(s.position, a), a);
    o.AddMember("schema_version", s.schema_version, a);
    o.AddMember("action", str(s.action, a), a);
    if (!s.action_type.empty()) o.AddMember("action_type", str(s.action_type, a), a);
    o.AddMember("message", str(s.message, a), a);
    o.AddMember("status", str(s.status, a), a);
    if (!s.decided_by.empty()) o.AddMember("decided_by", str(s.decided_by, a), a);
    if (s.pattern_id) o.AddMember("pattern_id", s.pattern_id, a);
    if (s.rule_id) o.AddMember("rule_id", s.rule_id, a);
    o.AddMember("kept_rows", s.kept_rows, a);
    o.AddMember("applied", s.backfilled >= 0, a);
    if (s.kind == "new_column" && s.backfilled >= 0) o.AddMember("backfilled_rows", s.backfilled, a);
    if (!s.note.empty()) o.AddMember("note", str(s.note, a), a);
    if (!s.error_code.empty()) o.AddMember("error_code", str(s.error_code, a), a);
    o.AddMember("detected_at", str(utc_iso_us(s.detected_at * 1000000), a), a);
    if (s.decided_at) o.AddMember("decided_at", str(utc_iso_us(s.decided_at * 1000000), a), a);
    return o;
}

json_value pattern_json(const ctx::pattern_record& p, json_alloc& a) {
    json_value o(rapidjson::kObjectType);
    o.AddMember("id", p.id, a);
    o.AddMember("kind", str(p.kind, a), a);
    o.AddMember("table_pattern", str(p.table_pattern, a), a);
    if (!p.old_type.empty()) o.AddMember("old_type", str(p.old_type, a), a);
    if (!p.new_type.empty()) o.AddMember("new_type", str(p.new_type, a), a);
    o.AddMember("decision", str(p.decision, a), a);
    if (!p.action_type.empty()) o.AddMember("action_type", str(p.action_type, a), a);
    o.AddMember("description", str(p.description, a), a);
    o.AddMember("from_suggestion", p.from_suggestion, a);
    o.AddMember("stream", str(p.stream, a), a);
    o.AddMember("uses", p.uses, a);
    o.AddMember("created_at", str(utc_iso_us(p.created_at * 1000000), a), a);
    return o;
}

json_doc listing(suggestion_deps& d, const std::string& stream, const std::string& status) {
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    json_value arr(rapidjson::kArrayType);
    for (const auto& s : d.engine.context().list_suggestions(stream, status)) arr.PushBack(suggestion_json(s, a), a);
    out.AddMember("suggestions", arr, a);
    json_value pats(rapidjson::kArrayType);
    for (const auto& p : d.engine.context().list_patterns()) pats.PushBack(pattern_json(p, a), a);
    out.AddMember("patterns", pats, a);
    json_value errs(rapidjson::kArrayType);
    for (const auto& e : d.engine.context().list_error_patterns(stream)) {
        json_value o(rapidjson::kObjectType);
        o.AddMember("stream", str(e.stream, a), a);
        o.AddMember("table", str(e.table, a), a);
        o.AddMember("error_class", str(e.error_class, a), a);
        o.AddMember("code", str(e.code, a), a);
        if (!e.column.empty()) o.AddMember("column", str(e.column, a), a);
        o.AddMember("message", str(e.message, a), a);
        o.AddMember("count", e.count, a);
        o.AddMember("first_seen", str(utc_iso_us(e.first_seen * 1000000), a), a);
        o.AddMember("last_seen", str(utc_iso_us(e.last_seen * 1000000), a), a);
        errs.PushBack(o, a);
    }
    out.AddMember("error_patterns", errs, a);
    return out;
}

boost::asio::awaitable<json_doc> list_tool(suggestion_deps d, json_doc args, std::shared_ptr<call_context>) {
    co_return structured_result(listing(d, opt(args, "stream"), opt(args, "status")));
}

json_doc decided(suggestion_deps& d, const engines::suggest::decision& r, bool with_running) {
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("suggestion", suggestion_json(*r.suggestion, a), a);
    if (r.pattern) out.AddMember("pattern", pattern_json(*r.pattern, a), a);
    if (r.rule) {
        json_value o(rapidjson::kObjectType);
        o.AddMember("id", r.rule->id, a);
        o.AddMember("kind", str(r.rule->kind, a), a);
        o.AddMember("column", str(r.rule->column, a), a);
        if (!r.rule->to.empty()) o.AddMember("to", str(r.rule->to, a), a);
        out.AddMember("rule", o, a);
    }
    if (with_running) out.AddMember("applied_to_running_stream", d.manager.running(r.suggestion->stream), a);
    return out;
}

boost::asio::awaitable<json_doc> accept_tool(suggestion_deps d, json_doc args, std::shared_ptr<call_context>) {
    const auto r = d.engine.accept(member(args, "id")->GetInt64(), opt(args, "type"), opt(args, "note"));
    if (!r.suggestion) co_return text_result("Cannot accept: " + r.error + ".", true);
    d.manager.apply_suggestions(r.suggestion->stream);  // reloads its rules, then carries it out
    if (d.changed) d.changed();
    co_return structured_result(decided(d, r, true));
}

boost::asio::awaitable<json_doc> reject_tool(suggestion_deps d, json_doc args, std::shared_ptr<call_context>) {
    const auto r = d.engine.reject(member(args, "id")->GetInt64(), opt(args, "note"));
    if (!r.suggestion) co_return text_result("Cannot reject: " + r.error + ".", true);
    d.manager.reload_rules(r.suggestion->stream);  // the drop rule replaces the withhold
    if (d.changed) d.changed();
    co_return structured_result(decided(d, r, false));
}

boost::asio::awaitable<json_doc> autopilot_tool(suggestion_deps d, json_doc args, std::shared_ptr<call_context>) {
    const std::string stream = opt(args, "stream"), mode = opt(args, "mode");
    auto rec = d.engine.context().find_stream(stream);
    if (!rec || !d.engine.context().set_autopilot(stream, mode))
        co_return text_result("No stream named " + stream + " (see list_streams).", true);
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("stream", str(stream, a), a);
    out.AddMember("mode", str(mode, a), a);
    out.AddMember("previous", str(rec->autopilot, a), a);
    co_return structured_result(std::move(out));
}

}  // namespace

void register_suggestion_tools(mcp_server& server, suggestion_deps deps) {
    auto add = [&](const char* file, auto fn) {
        server.add_tool(mcp_schema::tool_file(file), [deps, fn](json_doc args, std::shared_ptr<call_context> c) {
            return fn(deps, std::move(args), std::move(c));
        });
    };
    add("list_suggestions.json", &list_tool);
    add("accept_suggestion.json", &accept_tool);
    add("reject_suggestion.json", &reject_tool);
    add("set_autopilot.json", &autopilot_tool);

    resource_provider res;
    res.list = [](json_value& out, json_alloc& a) {
        push_json_resource(out, a, "datavor://suggestions", "suggestions", "Suggestions",
                           "Schema drift the streams met, pending and decided, and the patterns learned from decisions");
    };
    res.templates = [](json_value&, json_alloc&) {};
    res.read = [deps](const std::string& uri, json_value& out, json_alloc& a) mutable {
        if (uri != "datavor://suggestions") return false;
        push_json_contents(out, a, uri, to_json(listing(deps, "", "")));
        return true;
    };
    server.add_resources(std::move(res));
}

}  // namespace datavor::server
