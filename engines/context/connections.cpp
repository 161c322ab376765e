#include "engines/context/connections.hpp"

#include <ctime>

namespace datavor::engines::context {

std::string iso_time(std::int64_t unix_seconds) {
    std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

boost::system::result<add_connection_result> add_connection(context_store& ctx, secret_store& secrets,
                                                            add_connection_request req) {
    auto parsed = connectors::parse_connection_url(req.url);
    if (!parsed) return parsed.error();
    auto spec = parsed->spec;
    if (req.sslmode) spec.params["sslmode"] = *req.sslmode;
    if (req.sslrootcert) spec.params["sslrootcert"] = *req.sslrootcert;
    // A password from the argument wins over one embedded in the URL.
    std::optional<std::string> password = req.password ? req.password : parsed->password;

    std::string secret_ref = "none";
    if (password) secret_ref = "secrets_file";
    else if (req.password_env) secret_ref = "env:" + *req.password_env;
    else if (spec.kind == connectors::db_kind::postgresql) secret_ref = "pgpass";

    auto existing = ctx.find_connection(req.name);
    if (existing && !req.replace) {
        const bool same = existing->spec.redacted_url() == spec.redacted_url() &&
                          (existing->secret_ref == secret_ref || (!password && !req.password_env));
        if (!same) return context_error::connection_exists;
        if (password) secrets.put("connection:" + req.name, *password);
        return add_connection_result{*existing, false};
    }
    // Store the secret before the record, so a record never points at a missing secret.
    if (password) secrets.put("connection:" + req.name, *password);
    else secrets.erase("connection:" + req.name);
    auto rec = ctx.put_connection(req.name, spec, secret_ref, true);
    if (!rec) return rec.error();
    return add_connection_result{*rec, !existing};
}

bool remove_connection(context_store& ctx, secret_store& secrets, const std::string& name) {
    bool removed = ctx.remove_connection(name);
    secrets.erase("connection:" + name);
    return removed;
}

}  // namespace datavor::engines::context
