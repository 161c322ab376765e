#include "engines/notify/webhook.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>

namespace datavor::engines::notify {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

std::atomic<int> in_flight{0};
constexpr int max_in_flight = 100;
constexpr int attempts = 5;

// One attempt; "" when the receiver took it (2xx), else why not.
asio::awaitable<std::string> attempt(const http_url& url, const std::string& body) {
    auto ex = co_await asio::this_coro::executor;
    try {
        asio::ip::tcp::resolver resolver(ex);
        auto found = co_await resolver.async_resolve(url.host, url.port, asio::use_awaitable);
        beast::tcp_stream stream(ex);
        stream.expires_after(std::chrono::seconds(5));
        co_await stream.async_connect(found, asio::use_awaitable);
        http::request<http::string_body> req{http::verb::post, url.target, 11};
        req.set(http::field::host, url.host);
        req.set(http::field::content_type, "application/json");
        req.set(http::field::user_agent, "datavor-webhook");
        req.body() = body;
        req.prepare_payload();
        co_await http::async_write(stream, req, asio::use_awaitable);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        co_await http::async_read(stream, buffer, res, asio::use_awaitable);
        beast::error_code ignored;
        stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        const unsigned status = res.result_int();
        if (status >= 200 && status < 300) co_return std::string();
        co_return "HTTP " + std::to_string(status);
    } catch (const std::exception& e) {
        co_return std::string(e.what());
    }
}

asio::awaitable<void> deliver(http_url url, std::string body, notify_log log) {
    auto ex = co_await asio::this_coro::executor;
    std::chrono::seconds wait{1};
    std::string why;
    for (int n = 1; n <= attempts; ++n) {
        why = co_await attempt(url, body);
        if (why.empty()) {
            if (n > 1) log("info", "webhook http://" + url.host + ":" + url.port + url.target + " took the alert at attempt " + std::to_string(n));
            --in_flight;
            co_return;
        }
        if (n == attempts) break;
        asio::steady_timer t(ex);
        t.expires_after(wait);
        co_await t.async_wait(asio::use_awaitable);
        wait *= 2;
    }
    --in_flight;
    log("warning", "webhook http://" + url.host + ":" + url.port + url.target + " refused the alert " +
                       std::to_string(attempts) + " times (last: " + why + "); it stays in the ledger (list_alerts)");
}

}  // namespace

std::optional<http_url> parse_http_url(std::string_view url, std::string& why) {
    if (url.starts_with("https://")) {
        why = "https webhooks come with the TLS work; use http:// to a receiver on a trusted network";
        return std::nullopt;
    }
    if (!url.starts_with("http://")) {
        why = "a webhook is an http:// URL";
        return std::nullopt;
    }
    url.remove_prefix(7);
    const auto slash = url.find('/');
    std::string_view hostport = url.substr(0, slash);
    http_url out;
    out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    const auto colon = hostport.rfind(':');
    if (colon != std::string_view::npos && hostport.find(']') == std::string_view::npos) {
        out.host = std::string(hostport.substr(0, colon));
        out.port = std::string(hostport.substr(colon + 1));
    } else {
        out.host = std::string(hostport);
        out.port = "80";
    }
    if (out.host.empty() || out.port.empty() || out.port.find_first_not_of("0123456789") != std::string::npos) {
        why = "the webhook URL needs a host (and a numeric port, if any)";
        return std::nullopt;
    }
    return out;
}

void post_webhook(asio::any_io_executor ex, http_url url, std::string body, notify_log log) {
    if (++in_flight > max_in_flight) {
        --in_flight;
        log("warning", "webhook http://" + url.host + ":" + url.port + url.target +
                           ": 100 deliveries already in flight; this alert is not sent (it is in the ledger)");
        return;
    }
    asio::co_spawn(ex, deliver(std::move(url), std::move(body), std::move(log)), asio::detached);
}

}  // namespace datavor::engines::notify
