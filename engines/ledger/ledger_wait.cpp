#include "engines/ledger/ledger_wait.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace datavor::engines::ledger {

boost::asio::awaitable<bool> wait_written(ledger& l, std::chrono::milliseconds max) {
    const auto ticket = l.ticket();
    const auto deadline = std::chrono::steady_clock::now() + max;
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
    while (!l.written(ticket)) {
        if (std::chrono::steady_clock::now() >= deadline) co_return false;
        t.expires_after(std::chrono::milliseconds(20));
        co_await t.async_wait(boost::asio::use_awaitable);
    }
    co_return true;
}

}  // namespace datavor::engines::ledger
