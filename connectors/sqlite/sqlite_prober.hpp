#pragma once
// Checks that a SQLite target file can be opened for writing.
#include "connectors/common/prerequisites.hpp"

namespace datavor::connectors::sqlite {

class sqlite_prober final : public prerequisite_prober {
public:
    boost::asio::awaitable<probe_report> run_checks(probe_request req, probe_progress progress) override;
};

}  // namespace datavor::connectors::sqlite
