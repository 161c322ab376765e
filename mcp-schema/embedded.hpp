#pragma once
// The tool definitions in mcp-schema/, embedded at build time.
#include <span>
#include <string_view>

namespace datavor::mcp_schema {

struct embedded_file {
    std::string_view name;
    std::string_view content;
};

std::span<const embedded_file> tool_files();

// The content of one embedded file by name; throws std::logic_error when the
// build did not embed it (a missing entry in mcp-schema/CMakeLists.txt).
std::string_view tool_file(std::string_view name);

}  // namespace datavor::mcp_schema
