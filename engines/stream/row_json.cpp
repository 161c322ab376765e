#include "engines/stream/row_json.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace datavor::engines::stream {
namespace {

using namespace datavor::connectors;
using writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put_value(writer& w, const value& v) {
    switch (v.st) {
        case value::state::null: w.Null(); return;
        case value::state::text: w.String(v.data.data(), static_cast<rapidjson::SizeType>(v.data.size())); return;
        case value::state::unchanged:
            w.StartObject();
            w.Key("unchanged");
            w.Bool(true);
            w.EndObject();
            return;
        case value::state::binary: {
            static const char* digits = "0123456789abcdef";
            std::string hex;
            hex.reserve(v.data.size() * 2);
            for (unsigned char c : v.data) {
                hex.push_back(digits[c >> 4]);
                hex.push_back(digits[c & 15]);
            }
            w.StartObject();
            w.Key("hex");
            w.String(hex.c_str(), static_cast<rapidjson::SizeType>(hex.size()));
            w.EndObject();
            return;
        }
    }
}

std::optional<value> get_value(const rapidjson::Value& j) {
    if (j.IsNull()) return value::null_value();
    if (j.IsString()) return value::text_value(std::string(j.GetString(), j.GetStringLength()));
    if (j.IsObject() && j.HasMember("unchanged")) return value::unchanged_value();
    if (j.IsObject() && j.HasMember("hex") && j["hex"].IsString()) {
        std::string hex = j["hex"].GetString(), out;
        if (hex.size() % 2) return std::nullopt;
        auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
        for (std::size_t i = 0; i < hex.size(); i += 2) out.push_back(static_cast<char>(nib(hex[i]) * 16 + nib(hex[i + 1])));
        return value{value::state::binary, std::move(out)};
    }
    return std::nullopt;
}

void put_row(writer& w, const std::optional<row>& r) {
    if (!r || r->empty()) {
        w.Null();
        return;
    }
    w.StartArray();
    for (const auto& v : *r) put_value(w, v);
    w.EndArray();
}

}  // namespace

std::string key_json(const table_schema& t, const row& r) {
    rapidjson::StringBuffer buf;
    writer w(buf);
    w.StartObject();
    for (std::size_t i = 0; i < t.columns.size() && i < r.size(); ++i) {
        if (!t.columns[i].key) continue;
        w.Key(t.columns[i].name.c_str(), static_cast<rapidjson::SizeType>(t.columns[i].name.size()));
        put_value(w, r[i]);
    }
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

std::vector<std::string> keys_of(const change_event& c) {
    std::vector<std::string> out;
    if (c.op == change_op::truncate) return out;
    if (c.before && !c.before->empty()) out.push_back(key_json(*c.table, *c.before));
    if (!c.after.empty()) {
        auto k = key_json(*c.table, c.after);
        if (out.empty() || out.front() != k) out.push_back(std::move(k));
    }
    return out;
}

std::string change_json(const change_event& c) {
    rapidjson::StringBuffer buf;
    writer w(buf);
    const auto& t = *c.table;
    w.StartObject();
    w.Key("table");
    const auto q = t.qualified();
    w.String(q.c_str());
    w.Key("op");
    const char op[2] = {static_cast<char>(c.op), 0};
    w.String(op);
    w.Key("columns");
    w.StartArray();
    for (const auto& col : t.columns) w.String(col.name.c_str());
    w.EndArray();
    w.Key("types");
    w.StartArray();
    for (const auto& col : t.columns) w.String(col.type_name.c_str());
    w.EndArray();
    w.Key("key");
    w.StartArray();
    for (const auto& col : t.columns) w.Bool(col.key);
    w.EndArray();
    w.Key("before");
    put_row(w, c.before);
    w.Key("after");
    put_row(w, c.after.empty() ? std::optional<row>() : std::optional<row>(c.after));
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

std::optional<change_event> change_from_json(const std::string& json, std::shared_ptr<const table_schema> current) {
    rapidjson::Document d;
    d.Parse(json.c_str());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("op") || !d["op"].IsString() || !d.HasMember("columns") ||
        !d["columns"].IsArray())
        return std::nullopt;
    change_event c;
    c.table = current;
    const std::string op = d["op"].GetString();
    if (op.size() != 1) return std::nullopt;
    c.op = static_cast<change_op>(op[0]);
    std::vector<std::string> names;
    for (const auto& n : d["columns"].GetArray())
        if (n.IsString()) names.emplace_back(n.GetString());
    auto rebuild = [&](const rapidjson::Value& arr) -> std::optional<row> {
        if (!arr.IsArray() || arr.Size() != names.size()) return std::nullopt;
        row r(current->columns.size(), value::unchanged_value());
        for (std::size_t i = 0; i < names.size(); ++i) {
            auto v = get_value(arr[static_cast<rapidjson::SizeType>(i)]);
            if (!v) return std::nullopt;
            for (std::size_t j = 0; j < current->columns.size(); ++j)
                if (current->columns[j].name == names[i]) r[j] = *v;
        }
        return r;
    };
    if (d.HasMember("before") && !d["before"].IsNull()) {
        c.before = rebuild(d["before"]);
        if (!c.before) return std::nullopt;
    }
    if (d.HasMember("after") && !d["after"].IsNull()) {
        auto a = rebuild(d["after"]);
        if (!a) return std::nullopt;
        c.after = std::move(*a);
    }
    return c;
}

}  // namespace datavor::engines::stream
