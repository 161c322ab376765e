#include "engines/suggest/drift.hpp"

#include <rapidjson/document.h>

namespace datavor::engines::suggest {

std::vector<column_info> columns_of(const connectors::table_schema& t) {
    std::vector<column_info> out;
    out.reserve(t.columns.size());
    for (const auto& c : t.columns)
        out.push_back({c.name, c.type_name.empty() ? "oid " + std::to_string(c.type_oid) : c.type_name, c.nullable, c.key});
    return out;
}

std::vector<column_info> columns_of_json(const std::string& columns_json) {
    rapidjson::Document d;
    d.Parse(columns_json.c_str(), columns_json.size());
    std::vector<column_info> out;
    if (d.HasParseError() || !d.IsArray()) return out;
    for (const auto& c : d.GetArray()) {
        if (!c.IsObject() || !c.HasMember("name") || !c["name"].IsString()) return {};
        column_info i;
        i.name = c["name"].GetString();
        if (c.HasMember("type") && c["type"].IsString()) i.type = c["type"].GetString();
        if (c.HasMember("nullable") && c["nullable"].IsBool()) i.nullable = c["nullable"].GetBool();
        if (c.HasMember("key") && c["key"].IsBool()) i.key = c["key"].GetBool();
        out.push_back(std::move(i));
    }
    return out;
}

const char* name_of(drift_kind k) {
    switch (k) {
    case drift_kind::new_column: return "new_column";
    case drift_kind::dropped_column: return "dropped_column";
    case drift_kind::type_change: return "type_change";
    case drift_kind::nullability_change: return "nullability_change";
    case drift_kind::key_change: return "key_change";
    }
    return "?";
}

namespace {
const column_info* find(const std::vector<column_info>& cols, const std::string& name) {
    for (const auto& c : cols)
        if (c.name == name) return &c;
    return nullptr;
}
std::string key_of(const std::vector<column_info>& cols) {
    std::string k;
    for (const auto& c : cols)
        if (c.key) k += (k.empty() ? "" : ", ") + c.name;
    return k;
}
}  // namespace

std::vector<drift> diff(const std::vector<column_info>& before, const std::vector<column_info>& after) {
    std::vector<drift> out;
    for (const auto& a : after) {
        const auto* b = find(before, a.name);
        if (!b) {
            // A new key column is part of the key change below: it cannot be
            // withheld (changes are matched by it), so it is not a new_column.
            if (!a.key) out.push_back({drift_kind::new_column, a.name, "", a.type, a.nullable});
            continue;
        }
        if (b->type != a.type) out.push_back({drift_kind::type_change, a.name, b->type, a.type, a.nullable});
        if (b->nullable != a.nullable) out.push_back({drift_kind::nullability_change, a.name, a.type, a.type, a.nullable});
    }
    for (const auto& b : before)
        if (!find(after, b.name)) out.push_back({drift_kind::dropped_column, b.name, b.type, "", b.nullable});
    const auto old_key = key_of(before), new_key = key_of(after);
    // The key's columns changed: over existing columns, or a key column
    // added (it streams at once) or dropped.
    if (old_key != new_key) out.push_back({drift_kind::key_change, new_key, old_key, "", true});
    return out;
}

}  // namespace datavor::engines::suggest
