#pragma once
// Small RapidJSON helpers shared by the server: serialise, copy, build.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <optional>
#include <string>
#include <string_view>

namespace datavor::server {

using json_doc = rapidjson::Document;
using json_value = rapidjson::Value;
using json_alloc = rapidjson::Document::AllocatorType;

std::string to_json(const json_value& v);
json_value str(std::string_view s, json_alloc& a);
// Copies `v` into a fresh document.
json_doc clone(const json_value& v);
// Member lookups that tolerate a missing or wrongly typed member.
const json_value* member(const json_value& obj, const char* name);
std::optional<std::string_view> string_member(const json_value& obj, const char* name);

}  // namespace datavor::server
