#include "server/mcp_session.hpp"
#include "server/transports.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <thread>
#include <unistd.h>

namespace asio = boost::asio;

namespace datavor::server {
namespace {

// Writes whole lines to stdout in order. Called on the session strand.
class stdout_writer final : public outbound, public std::enable_shared_from_this<stdout_writer> {
public:
    explicit stdout_writer(asio::any_io_executor strand) : strand_(strand), out_(strand) {
        boost::system::error_code ec;
        out_.assign(::dup(STDOUT_FILENO), ec);
        pollable_ = !ec;  // a regular file cannot be polled: write it directly
    }
    void send(std::string message, const std::string&, bool) override {
        message.push_back('\n');
        if (!pollable_) {
            write_blocking(message);
            return;
        }
        queue_.push_back(std::move(message));
        if (!writing_) {
            writing_ = true;
            asio::co_spawn(strand_, drain(shared_from_this()), asio::detached);
        }
    }
    // Completes once everything queued so far is written.
    asio::awaitable<void> flush() {
        asio::steady_timer t(strand_);
        while (writing_) {
            t.expires_after(std::chrono::milliseconds(2));
            co_await t.async_wait(asio::use_awaitable);
        }
    }

private:
    static asio::awaitable<void> drain(std::shared_ptr<stdout_writer> self) {
        while (!self->queue_.empty()) {
            std::string msg = std::move(self->queue_.front());
            self->queue_.pop_front();
            boost::system::error_code ec;
            co_await asio::async_write(self->out_, asio::buffer(msg), asio::redirect_error(asio::use_awaitable, ec));
            if (ec) {  // the client went away: nothing more can be delivered
                self->queue_.clear();
                break;
            }
        }
        self->writing_ = false;
    }
    static void write_blocking(const std::string& s) {
        const char* p = s.data();
        std::size_t left = s.size();
        while (left) {
            auto n = ::write(STDOUT_FILENO, p, left);
            if (n <= 0) return;
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    }
    asio::any_io_executor strand_;
    asio::posix::stream_descriptor out_;
    bool pollable_ = true;
    bool writing_ = false;
    std::deque<std::string> queue_;
};

}  // namespace

asio::awaitable<void> serve_stdio(mcp_server& server, std::chrono::milliseconds grace) {
    auto ex = co_await asio::this_coro::executor;
    auto strand = asio::make_strand(ex);
    auto writer = std::make_shared<stdout_writer>(strand);
    auto session = make_session(server, strand, writer);
    jsonrpc::line_framer framer(max_message_bytes);
    auto on_line = [&](std::string line) { session->receive(std::move(line)); };
    auto on_oversize = [&] {
        asio::post(strand, [writer] {
            writer->send(jsonrpc::make_error("null", jsonrpc::invalid_request,
                                             "Invalid Request: message longer than " +
                                                 std::to_string(max_message_bytes) + " bytes; it was skipped"),
                         "", true);
        });
    };

    asio::posix::stream_descriptor in(ex);
    boost::system::error_code ec;
    in.assign(::dup(STDIN_FILENO), ec);
    std::string buf(64 * 1024, '\0');
    if (!ec) {
        for (;;) {
            auto n = co_await in.async_read_some(asio::buffer(buf), asio::redirect_error(asio::use_awaitable, ec));
            if (n) framer.feed(std::string_view(buf.data(), n), on_line, on_oversize);
            if (ec) break;  // EOF or error: the client is gone
        }
    } else {
        // stdin is a regular file (not pollable): read it; files never block for long.
        for (;;) {
            auto n = ::read(STDIN_FILENO, buf.data(), buf.size());
            if (n <= 0) break;
            framer.feed(std::string_view(buf.data(), static_cast<std::size_t>(n)), on_line, on_oversize);
        }
    }
    co_await session->stop(grace);
    co_await asio::co_spawn(strand, writer->flush(), asio::use_awaitable);
}

}  // namespace datavor::server
