#pragma once
// Webhook deliveries for alerts: an HTTP POST of a JSON body, retried (1 s
// doubling, 5 attempts, 5 s per attempt), run as its own coroutine on the
// caller's executor so the stream that raised the alert never waits for it.
// At most 100 deliveries are in flight per process; past that a delivery is
// dropped and said so (the alert itself is in the ledger either way).
//
// http:// only for now (https with certificate checks comes with the TLS
// work); the URL is checked when the rule is added.
#include <boost/asio/any_io_executor.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace datavor::engines::notify {

struct http_url {
    std::string host, port, target;
};
// Parses http://host[:port][/path]; nullopt (with `why`) when it is not one.
std::optional<http_url> parse_http_url(std::string_view url, std::string& why);

using notify_log = std::function<void(std::string_view level, std::string_view message)>;

// Starts the delivery in the background and returns at once.
void post_webhook(boost::asio::any_io_executor ex, http_url url, std::string body, notify_log log);

}  // namespace datavor::engines::notify
