#pragma once
// The one readiness adaptor for C drivers in non-blocking mode (libpq,
// MariaDB Connector/C): waits on a socket the driver owns until it is
// readable or writable, with a timeout, without ever closing it.
//
// Lifecycle: one per connection; the socket may change between waits (a
// driver can reconnect during its connect phase). Strand: use from one
// coroutine at a time. Cancellation: a wait honours the awaiting coroutine's
// cancellation slot (throws operation_aborted).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>

namespace datavor::connectors {

class fd_readiness {
public:
    enum ready : int { timed_out = 0, readable = 1, writable = 2 };

    explicit fd_readiness(boost::asio::any_io_executor ex);
    fd_readiness(fd_readiness&&) noexcept;
    fd_readiness& operator=(fd_readiness&&) noexcept;
    ~fd_readiness();  // releases the socket; the driver closes it

    boost::asio::awaitable<ready> wait(int fd, bool read, bool write, std::chrono::milliseconds timeout);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace datavor::connectors
