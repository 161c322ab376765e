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

}  // namespace datavor::mcp_schema
