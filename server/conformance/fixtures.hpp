#pragma once
// Conformance-suite fixtures (test only; never linked into the product binary).
#include "server/mcp_server.hpp"

namespace datavor::server::conformance {
void register_fixtures(mcp_server& server);
}
