#include "server/tool_catalog.hpp"

#include <rapidjson/schema.h>

#include <stdexcept>

namespace datavor::server {
namespace {

const json_value* resolve_pointer(const json_value& root, const std::string& pointer) {
    if (pointer.empty() || pointer == "#") return &root;
    std::string p = pointer[0] == '#' ? pointer.substr(1) : pointer;
    rapidjson::Pointer ptr(p.c_str());
    return ptr.IsValid() ? ptr.Get(root) : nullptr;
}

std::string pointer_text(const rapidjson::Pointer& p) {
    rapidjson::StringBuffer sb;
    p.StringifyUriFragment(sb);
    std::string s(sb.GetString(), sb.GetSize());
    if (!s.empty() && s[0] == '#') s.erase(0, 1);
    return s.empty() ? "(arguments)" : s;
}

std::string json_list(const json_value& arr) {
    std::string out;
    for (const auto& v : arr.GetArray()) out += (out.empty() ? "" : ", ") + to_json(v);
    return out;
}

// Explains one violation using the schema node that failed and the value.
std::string explain(const std::string& keyword, const json_value* schema, const json_value* value,
                    const std::string& where) {
    auto field = [&](const char* k) -> const json_value* { return schema ? member(*schema, k) : nullptr; };
    std::string msg = "at " + where + ": ";
    if (keyword == "required" && field("required") && value && value->IsObject()) {
        std::string missing;
        for (const auto& r : field("required")->GetArray())
            if (r.IsString() && !value->HasMember(r.GetString())) missing += (missing.empty() ? "" : ", ") + to_json(r);
        return msg + "missing required field(s) " + missing;
    }
    if (keyword == "additionalProperties" && value && value->IsObject()) {
        std::string extra, allowed;
        const json_value* props = field("properties");
        for (const auto& m : value->GetObject())
            if (!props || !props->HasMember(m.name)) extra += (extra.empty() ? "" : ", ") + to_json(m.name);
        if (props)
            for (const auto& m : props->GetObject()) allowed += (allowed.empty() ? "" : ", ") + to_json(m.name);
        return msg + "unknown field(s) " + extra + "; allowed fields are " + allowed;
    }
    if (keyword == "type" && field("type"))
        return msg + "expected type " + to_json(*field("type")) + ", got " + (value ? to_json(*value) : "nothing");
    if (keyword == "enum" && field("enum"))
        return msg + "expected one of " + json_list(*field("enum")) + ", got " + (value ? to_json(*value) : "nothing");
    if (keyword == "pattern" && field("pattern"))
        return msg + "value " + (value ? to_json(*value) : "") + " does not match the pattern " +
               to_json(*field("pattern")) + (field("description") && field("description")->IsString()
                    ? " (" + std::string(field("description")->GetString()) + ")"
                    : "");
    for (const char* k : {"minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems"})
        if (keyword == k && field(k))
            return msg + "violates " + keyword + " " + to_json(*field(k)) + ", got " + (value ? to_json(*value) : "nothing");
    return msg + "violates the schema keyword \"" + keyword + "\"";
}

}  // namespace

void tool_catalog::add(std::string_view definition_json) {
    auto t = std::make_unique<tool_definition>();
    t->definition.Parse(definition_json.data(), definition_json.size());
    if (t->definition.HasParseError() || !t->definition.IsObject())
        throw std::invalid_argument("tool definition is not a JSON object");
    auto name = string_member(t->definition, "name");
    const json_value* input = member(t->definition, "inputSchema");
    if (!name || !input || !input->IsObject()) throw std::invalid_argument("tool definition needs name and inputSchema");
    t->name = std::string(*name);
    using schema_doc = rapidjson::GenericSchemaDocument<json_value, rapidjson::CrtAllocator>;
    t->input_schema = std::make_shared<schema_doc>(*input);
    if (tools_.count(t->name)) throw std::invalid_argument("duplicate tool " + t->name);
    ordered_.push_back(t.get());
    tools_.emplace(t->name, std::move(t));
}

const tool_definition* tool_catalog::find(std::string_view name) const {
    auto it = tools_.find(name);
    return it == tools_.end() ? nullptr : it->second.get();
}

std::optional<std::string> tool_catalog::validate(const tool_definition& tool, const json_value& arguments) const {
    rapidjson::GenericSchemaValidator<rapidjson::GenericSchemaDocument<json_value, rapidjson::CrtAllocator>> v(
        *tool.input_schema);
    if (arguments.Accept(v)) return std::nullopt;
    rapidjson::StringBuffer sp;
    v.GetInvalidSchemaPointer().StringifyUriFragment(sp);
    const json_value* input = member(tool.definition, "inputSchema");
    const json_value* schema_node = resolve_pointer(*input, std::string(sp.GetString(), sp.GetSize()));
    const std::string keyword = v.GetInvalidSchemaKeyword();
    rapidjson::Pointer where = v.GetInvalidDocumentPointer();
    // RapidJSON reports an additionalProperties violation at the extra member
    // itself (/colour); explain() needs the object that holds it.
    if (keyword == "additionalProperties" && where.GetTokenCount() > 0) {
        rapidjson::Pointer parent;  // an owning copy: where's tokens are freed when it is reassigned
        for (std::size_t i = 0; i + 1 < where.GetTokenCount(); ++i) parent = parent.Append(where.GetTokens()[i]);
        const auto& last = where.GetTokens()[where.GetTokenCount() - 1];
        const json_value name(rapidjson::StringRef(last.name, last.length));
        const json_value* obj = parent.GetTokenCount() == 0 ? &arguments : parent.Get(arguments);
        const json_value* props = schema_node ? member(*schema_node, "properties") : nullptr;
        const bool declared = props && props->IsObject() && props->HasMember(name);
        if (obj && obj->IsObject() && obj->HasMember(name) && !declared) where = parent;
    }
    const json_value* value = where.GetTokenCount() == 0 ? &arguments : where.Get(arguments);
    return "Invalid arguments for tool " + tool.name + " " + explain(keyword, schema_node, value, pointer_text(where)) +
           ". Fix the arguments to match the tool's inputSchema and call it again.";
}

}  // namespace datavor::server
