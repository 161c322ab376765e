#include "server/mcp_methods.hpp"

#include "server/jsonrpc.hpp"

#include <charconv>

namespace datavor::server {
namespace {

// Cursors are opaque to clients; here they are "o<offset>".
std::optional<std::size_t> read_cursor(const json_value* params, bool& bad) {
    bad = false;
    if (!params) return 0;
    const json_value* c = member(*params, "cursor");
    if (!c || c->IsNull()) return 0;
    if (!c->IsString() || c->GetStringLength() < 2 || c->GetString()[0] != 'o') {
        bad = true;
        return std::nullopt;
    }
    std::size_t off = 0;
    const char* b = c->GetString() + 1;
    const char* e = c->GetString() + c->GetStringLength();
    auto [p, ec] = std::from_chars(b, e, off);
    if (ec != std::errc{} || p != e) {
        bad = true;
        return std::nullopt;
    }
    return off;
}

// Copies items [offset, offset+page) of `all` into result[key], adding nextCursor.
method_reply paginate(const json_value* params, json_value& all, const char* key, std::size_t page, json_doc& result) {
    bool bad = false;
    auto off = read_cursor(params, bad);
    if (bad || *off > all.Size())
        return rpc_error{jsonrpc::invalid_params, "Invalid params: unknown cursor; omit it to start from the first page"};
    auto& a = result.GetAllocator();
    json_value page_items(rapidjson::kArrayType);
    const std::size_t end = std::min<std::size_t>(all.Size(), *off + page);
    for (std::size_t i = *off; i < end; ++i) page_items.PushBack(json_value(all[static_cast<rapidjson::SizeType>(i)], a), a);
    result.AddMember(json_value(key, a), page_items, a);
    if (end < all.Size()) result.AddMember("nextCursor", str("o" + std::to_string(end), a), a);
    return std::move(result);
}

}  // namespace

method_reply list_tools(const mcp_server& s, const json_value* params) {
    json_doc result(rapidjson::kObjectType);
    auto& a = result.GetAllocator();
    json_value all(rapidjson::kArrayType);
    for (const auto* t : s.tools().ordered()) all.PushBack(json_value(t->definition, a), a);
    return paginate(params, all, "tools", s.page_size(), result);
}

method_reply list_resources(const mcp_server& s, const json_value* params) {
    json_doc result(rapidjson::kObjectType);
    auto& a = result.GetAllocator();
    json_value all(rapidjson::kArrayType);
    for (const auto& p : s.resources())
        if (p.list) p.list(all, a);
    return paginate(params, all, "resources", s.page_size(), result);
}

method_reply list_resource_templates(const mcp_server& s, const json_value* params) {
    json_doc result(rapidjson::kObjectType);
    auto& a = result.GetAllocator();
    json_value all(rapidjson::kArrayType);
    for (const auto& p : s.resources())
        if (p.templates) p.templates(all, a);
    return paginate(params, all, "resourceTemplates", s.page_size(), result);
}

method_reply read_resource(const mcp_server& s, const json_value* params) {
    auto uri = params ? string_member(*params, "uri") : std::nullopt;
    if (!uri) return rpc_error{jsonrpc::invalid_params, "Invalid params: resources/read needs \"uri\" (a string)"};
    json_doc result(rapidjson::kObjectType);
    auto& a = result.GetAllocator();
    json_value contents(rapidjson::kArrayType);
    for (const auto& p : s.resources()) {
        if (p.read && p.read(std::string(*uri), contents, a)) {
            result.AddMember("contents", contents, a);
            return result;
        }
    }
    return rpc_error{jsonrpc::resource_not_found,
                     "Resource not found: " + std::string(*uri) + " (see resources/list and resources/templates/list)"};
}

method_reply list_prompts(const mcp_server& s, const json_value* params) {
    json_doc result(rapidjson::kObjectType);
    auto& a = result.GetAllocator();
    json_value all(rapidjson::kArrayType);
    for (const auto& p : s.prompts()) all.PushBack(json_value(p.definition, a), a);
    return paginate(params, all, "prompts", s.page_size(), result);
}

method_reply get_prompt(const mcp_server& s, const json_value* params) {
    auto name = params ? string_member(*params, "name") : std::nullopt;
    if (!name) return rpc_error{jsonrpc::invalid_params, "Invalid params: prompts/get needs \"name\""};
    static const json_value empty_args(rapidjson::kObjectType);
    const json_value* args = member(*params, "arguments");
    if (args && !args->IsObject())
        return rpc_error{jsonrpc::invalid_params, "Invalid params: \"arguments\" must be an object of strings"};
    for (const auto& p : s.prompts()) {
        if (string_member(p.definition, "name") != name) continue;
        std::string error;
        auto r = p.get(args ? *args : empty_args, error);
        if (!r) return rpc_error{jsonrpc::invalid_params, "Invalid params: " + error};
        return std::move(*r);
    }
    return rpc_error{jsonrpc::invalid_params, "Invalid params: unknown prompt " + std::string(*name) + " (see prompts/list)"};
}

method_reply complete(const mcp_server& s, const json_value* params) {
    const json_value* ref = params ? member(*params, "ref") : nullptr;
    const json_value* arg = params ? member(*params, "argument") : nullptr;
    if (!ref || !ref->IsObject() || !arg || !arg->IsObject() || !string_member(*arg, "name") ||
        !string_member(*ref, "type"))
        return rpc_error{jsonrpc::invalid_params,
                         "Invalid params: completion/complete needs ref {type, name|uri} and argument {name, value}"};
    const json_value* ctx = member(*params, "context");
    const json_value* ctx_args = ctx ? member(*ctx, "arguments") : nullptr;
    std::vector<std::string> values =
        s.complete(*ref, *string_member(*arg, "name"), string_member(*arg, "value").value_or(""), ctx_args);
    json_doc result(rapidjson::kObjectType);
    auto& a = result.GetAllocator();
    json_value c(rapidjson::kObjectType), vs(rapidjson::kArrayType);
    const std::size_t shown = std::min<std::size_t>(values.size(), 100);
    for (std::size_t i = 0; i < shown; ++i) vs.PushBack(str(values[i], a), a);
    c.AddMember("values", vs, a);
    c.AddMember("total", static_cast<uint64_t>(values.size()), a);
    c.AddMember("hasMore", values.size() > shown, a);
    result.AddMember("completion", c, a);
    return result;
}

}  // namespace datavor::server
