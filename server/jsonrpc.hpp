#pragma once
// Sans-I/O JSON-RPC 2.0: framing of newline-delimited streams, parsing of one
// message into a request / notification / response, and serialisation of
// replies. No sockets, no coroutines: bytes in, values out (fuzzed by
// tests/fuzz/jsonrpc_fuzz.cpp).
#include "server/json.hpp"

#include <boost/system/result.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace datavor::server::jsonrpc {

// Standard JSON-RPC and MCP error codes.
enum code : int {
    parse_error = -32700,
    invalid_request = -32600,
    method_not_found = -32601,
    invalid_params = -32602,
    internal_error = -32603,
    resource_not_found = -32002,
};

enum class kind { request, notification, response };

struct message {
    kind k = kind::request;
    std::string id;      // the id as JSON text ("1", "\"a\""); empty for notifications
    std::string method;  // requests and notifications
    json_doc doc;        // owns the whole message
    const json_value* params() const;  // nullptr when absent
};

struct failure {
    int code = invalid_request;
    std::string message;
    std::string id = "null";  // JSON text of the id when it could be read
};

boost::system::result<message, failure> parse(std::string_view text);

std::string make_result(std::string_view id, const json_value& result);
std::string make_error(std::string_view id, int code, std::string_view message, const json_value* data = nullptr);
std::string make_notification(std::string_view method, const json_value& params);
std::string make_request(std::string_view id, std::string_view method, const json_value& params);

// Splits a byte stream into lines. A line longer than max_line is reported
// once through on_oversize and the rest of it discarded; the stream goes on.
class line_framer {
public:
    explicit line_framer(std::size_t max_line) : max_(max_line) {}
    template <class OnLine, class OnOversize>
    void feed(std::string_view bytes, OnLine&& on_line, OnOversize&& on_oversize);

private:
    std::size_t max_;
    std::string buf_;
    bool discarding_ = false;
};

template <class OnLine, class OnOversize>
void line_framer::feed(std::string_view bytes, OnLine&& on_line, OnOversize&& on_oversize) {
    while (!bytes.empty()) {
        auto nl = bytes.find('\n');
        auto chunk = bytes.substr(0, nl);
        if (discarding_) {
            // skip until the end of the oversize line
        } else if (buf_.size() + chunk.size() > max_) {
            buf_.clear();
            discarding_ = true;
            on_oversize();
        } else {
            buf_.append(chunk);
        }
        if (nl == std::string_view::npos) return;
        bytes.remove_prefix(nl + 1);
        if (!discarding_) {
            std::string line;
            line.swap(buf_);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty()) on_line(std::move(line));
        }
        discarding_ = false;
    }
}

}  // namespace datavor::server::jsonrpc
