#include "mcp-schema/embedded.hpp"

#include <stdexcept>
#include <string>

namespace datavor::mcp_schema {

std::string_view tool_file(std::string_view name) {
    for (const auto& f : tool_files())
        if (f.name == name) return f.content;
    throw std::logic_error("mcp-schema/" + std::string(name) + " is not embedded: list it in mcp-schema/CMakeLists.txt");
}

}  // namespace datavor::mcp_schema
