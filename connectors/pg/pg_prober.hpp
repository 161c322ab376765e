#pragma once
// Checks, one by one, what PostgreSQL logical replication (pgoutput) needs
// from a source, and for each failure the exact least-privilege fix.
#include "connectors/common/prerequisites.hpp"

#include <map>
#include <string>

namespace datavor::connectors::pg {

// libpq keyword/value options for a spec (password included when given).
std::map<std::string, std::string> libpq_options(const connection_spec& spec,
                                                 const std::optional<std::string>& password);

class pg_prober final : public prerequisite_prober {
public:
    boost::asio::awaitable<probe_report> run_checks(probe_request req, probe_progress progress) override;
};

}  // namespace datavor::connectors::pg
