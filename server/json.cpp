#include "server/json.hpp"

namespace datavor::server {

std::string to_json(const json_value& v) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    v.Accept(w);
    return {buf.GetString(), buf.GetSize()};
}

json_value str(std::string_view s, json_alloc& a) {
    return json_value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

json_doc clone(const json_value& v) {
    json_doc d;
    d.CopyFrom(v, d.GetAllocator());
    return d;
}

const json_value* member(const json_value& obj, const char* name) {
    if (!obj.IsObject()) return nullptr;
    auto it = obj.FindMember(name);
    return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::optional<std::string_view> string_member(const json_value& obj, const char* name) {
    auto* m = member(obj, name);
    if (!m || !m->IsString()) return std::nullopt;
    return std::string_view(m->GetString(), m->GetStringLength());
}

}  // namespace datavor::server
