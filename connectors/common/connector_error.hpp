#pragma once
// What a failure means for the stream, decided from the driver's own codes
// (SQLSTATE, MariaDB errno, SQLite extended result codes), never from the
// message text:
//   data       this row cannot go to the target (a constraint, a conversion,
//              a value too long, no permission on the table): set it aside,
//              apply the rest
//   transient  the target or source is unavailable for now (connection lost,
//              deadlock, serialization failure, restarting, locked, disk
//              full): retry with backoff, set nothing aside
//   fatal      retrying will not help until someone changes something (a
//              missing table, a protocol error): the stream fails with the
//              message, which says what to do
#include <stdexcept>
#include <string>
#include <string_view>

namespace datavor::connectors {

enum class failure_kind { data, transient, fatal };

const char* to_string(failure_kind k);

class connector_error : public std::runtime_error {
public:
    connector_error(std::string message, failure_kind kind, std::string code)
        : std::runtime_error(std::move(message)), kind_(kind), code_(std::move(code)) {}
    failure_kind kind() const noexcept { return kind_; }
    // The driver's code as text: a SQLSTATE, "sqlite:2067", "mariadb:1062".
    const std::string& code() const noexcept { return code_; }

private:
    failure_kind kind_;
    std::string code_;
};

// PostgreSQL: by SQLSTATE (empty: not from the server, e.g. a lost
// connection, which is transient when `retryable`).
failure_kind classify_sqlstate(std::string_view sqlstate, bool retryable);
// SQLite: by (extended) result code.
failure_kind classify_sqlite(int extended_code);

}  // namespace datavor::connectors
