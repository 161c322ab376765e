#pragma once
// Adding and removing connections, shared by the MCP tools and the CLI:
// parses the URL, moves any password into the secret store, records the rest
// in context.db. Nothing here returns or logs a password.
#include "engines/context/context_store.hpp"
#include "engines/context/secret_store.hpp"

#include <optional>
#include <string>

namespace datavor::engines::context {

struct add_connection_request {
    std::string name;
    std::string url;
    std::optional<std::string> password;
    std::optional<std::string> password_env;
    std::optional<std::string> sslmode;
    std::optional<std::string> sslrootcert;
    bool replace = false;
};

struct add_connection_result {
    connection_record record;
    bool created = false;
};

// Errors: connectors::url_error (bad URL), context_error (name taken).
boost::system::result<add_connection_result> add_connection(context_store& ctx, secret_store& secrets,
                                                            add_connection_request req);
bool remove_connection(context_store& ctx, secret_store& secrets, const std::string& name);

// "2026-11-25T08:00:00Z"
std::string iso_time(std::int64_t unix_seconds);

}  // namespace datavor::engines::context
