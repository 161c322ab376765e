#include "connectors/common/fd_readiness.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/multiple_exceptions.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <optional>

#include <sys/stat.h>

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace datavor::connectors {

struct fd_readiness::impl {
    explicit impl(asio::any_io_executor e) : ex(std::move(e)) {}
    ~impl() { reset(); }
    void reset() {
        if (sock) sock->release();
        sock.reset();
        fd = -1;
    }
    asio::any_io_executor ex;
    int fd = -1;
    // The socket's identity: a driver that reconnects closes its socket and
    // usually gets the same descriptor number back for the new one, which the
    // reactor does not watch yet.
    dev_t dev = 0;
    ino_t ino = 0;
    std::optional<asio::posix::stream_descriptor> sock;
};

fd_readiness::fd_readiness(asio::any_io_executor ex) : impl_(std::make_unique<impl>(std::move(ex))) {}
fd_readiness::fd_readiness(fd_readiness&&) noexcept = default;
fd_readiness& fd_readiness::operator=(fd_readiness&&) noexcept = default;
fd_readiness::~fd_readiness() = default;

asio::awaitable<fd_readiness::ready> fd_readiness::wait(int fd, bool read, bool write,
                                                        std::chrono::milliseconds timeout) {
    auto& s = *impl_;
    struct stat st {};
    const bool known = fd >= 0 && ::fstat(fd, &st) == 0;
    if (fd != s.fd || (known && (st.st_dev != s.dev || st.st_ino != s.ino))) {
        s.reset();
        if (fd >= 0) {
            s.sock.emplace(s.ex, fd);
            s.fd = fd;
            s.dev = known ? st.st_dev : 0;
            s.ino = known ? st.st_ino : 0;
        }
    }
    asio::steady_timer timer(s.ex, timeout);
    if (!s.sock || (!read && !write)) {
        co_await timer.async_wait(asio::use_awaitable);
        co_return timed_out;
    }
    using d = asio::posix::stream_descriptor;
    try {
        if (read && write) {
            auto v = co_await (s.sock->async_wait(d::wait_read, asio::use_awaitable) ||
                               s.sock->async_wait(d::wait_write, asio::use_awaitable) ||
                               timer.async_wait(asio::use_awaitable));
            co_return v.index() == 0 ? readable : v.index() == 1 ? writable : timed_out;
        }
        auto v = co_await (s.sock->async_wait(read ? d::wait_read : d::wait_write, asio::use_awaitable) ||
                           timer.async_wait(asio::use_awaitable));
        co_return v.index() == 0 ? (read ? readable : writable) : timed_out;
    } catch (const asio::multiple_exceptions& e) {
        // operator|| wraps the branches' errors when every branch failed, as all
        // do when the wait is cancelled: throw the first (operation_aborted).
        std::rethrow_exception(e.first_exception());
    }
}

}  // namespace datavor::connectors
