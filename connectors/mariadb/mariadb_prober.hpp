#pragma once
// Checks, one by one, what reading the MariaDB/MySQL binlog needs from a
// source, and for each failure the exact setting or least-privilege GRANT.
#include "connectors/common/prerequisites.hpp"

namespace datavor::connectors::mariadb {

class mariadb_prober final : public prerequisite_prober {
public:
    boost::asio::awaitable<probe_report> run_checks(probe_request req, probe_progress progress) override;
};

}  // namespace datavor::connectors::mariadb
