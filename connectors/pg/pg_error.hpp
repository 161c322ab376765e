#pragma once
// An infrastructure failure talking to PostgreSQL: carries the SQLSTATE (empty
// when the failure is not from the server, e.g. connection refused) and
// whether retrying later may help.
#include "connectors/common/connector_error.hpp"

#include <string>

namespace datavor::connectors::pg {

class pg_error : public connector_error {
public:
    pg_error(std::string message, std::string sqlstate, bool retryable)
        : connector_error(std::move(message), classify_sqlstate(sqlstate, retryable), sqlstate),
          sqlstate_(std::move(sqlstate)),
          retryable_(retryable) {}
    const std::string& sqlstate() const noexcept { return sqlstate_; }
    bool retryable() const noexcept { return retryable_; }

private:
    std::string sqlstate_;
    bool retryable_;
};

}  // namespace datavor::connectors::pg
