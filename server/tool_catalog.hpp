#pragma once
// The tools a server offers, loaded from their JSON definitions (mcp-schema/):
// serves tools/list and validates tools/call arguments against inputSchema
// with RapidJSON's schema validator.
//
// Thread safety: filled once at start-up, then read-only.
#include "server/json.hpp"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rapidjson {
template <typename ValueT, typename Allocator>
class GenericSchemaDocument;
}

namespace datavor::server {

struct tool_definition {
    std::string name;
    json_doc definition;  // served as-is by tools/list
    std::shared_ptr<rapidjson::GenericSchemaDocument<json_value, rapidjson::CrtAllocator>> input_schema;
};

class tool_catalog {
public:
    // Throws std::invalid_argument when the definition is not a valid tool.
    void add(std::string_view definition_json);
    const tool_definition* find(std::string_view name) const;
    const std::vector<const tool_definition*>& ordered() const { return ordered_; }

    // nullopt when valid; otherwise a message naming the offending field and
    // what was expected, written for a model to correct its call.
    std::optional<std::string> validate(const tool_definition& tool, const json_value& arguments) const;

private:
    std::map<std::string, std::unique_ptr<tool_definition>, std::less<>> tools_;
    std::vector<const tool_definition*> ordered_;
};

}  // namespace datavor::server
