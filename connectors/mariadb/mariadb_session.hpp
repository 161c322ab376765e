#pragma once
// One MariaDB Connector/C connection driven in non-blocking mode from Asio
// (MYSQL_OPT_NONBLOCK with the *_start/*_cont calls and the socket's
// readiness). Private to connectors/mariadb: nothing else includes mysql.h.
//
// Lifecycle: created by connect(); closed by the destructor. One operation in
// flight at a time. Cancellation: honours the caller's cancellation slot; a
// cancelled operation leaves the connection unusable (drop it).
#include "connectors/common/fd_readiness.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct st_mysql;

namespace datavor::connectors::mariadb {

class mariadb_error : public std::runtime_error {
public:
    mariadb_error(std::string message, unsigned err, bool retryable)
        : std::runtime_error(std::move(message)), errno_(err), retryable_(retryable) {}
    unsigned server_errno() const noexcept { return errno_; }
    bool retryable() const noexcept { return retryable_; }

private:
    unsigned errno_;
    bool retryable_;
};

struct mariadb_connect_options {
    std::string host, user, database;
    std::optional<std::string> password;
    unsigned port = 3306;
    std::string ssl_mode;  // "", "disable", "required", "verify-ca", "verify-full"
    std::string ssl_ca;
    std::chrono::milliseconds timeout{10000};
};

using mariadb_rows = std::vector<std::vector<std::optional<std::string>>>;

class mariadb_session {
public:
    mariadb_session(mariadb_session&&) noexcept;
    mariadb_session& operator=(mariadb_session&&) noexcept;
    ~mariadb_session();

    static boost::asio::awaitable<mariadb_session> connect(mariadb_connect_options opts);

    // Runs one statement and returns all its rows as text (NULL as nullopt).
    boost::asio::awaitable<mariadb_rows> query(std::string sql);

    bool tls_in_use() const noexcept;
    std::string server_version() const;

private:
    explicit mariadb_session(boost::asio::any_io_executor ex);
    boost::asio::awaitable<int> wait(int status);
    [[noreturn]] void fail(const std::string& what) const;

    struct mysql_closer {
        void operator()(st_mysql* m) const noexcept;
    };
    // Destroyed before mysql_ (declared after it), so the socket is released before mysql_close.
    std::unique_ptr<st_mysql, mysql_closer> mysql_;
    fd_readiness ready_;
    std::chrono::milliseconds timeout_{10000};
};

}  // namespace datavor::connectors::mariadb
