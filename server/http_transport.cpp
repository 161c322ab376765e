// Streamable HTTP transport (MCP 2025-11-25) on Boost.Beast.
//
// POST /mcp   one JSON-RPC message. Requests are answered with JSON, except
//             tools/call, which is answered with an SSE stream carrying the
//             call's progress, log and server-to-client requests, then its result.
//             Notifications and responses get 202.
// GET /mcp    an SSE stream for messages not tied to a request (resource updates, logs).
// DELETE /mcp ends the session.
//
// Threads: each TCP connection runs as a coroutine on its own strand; each MCP
// session has its own strand. The router below is the only state the two
// share; its methods take a mutex and wake waiting streams by posting to the
// stream's strand.
#include "server/mcp_session.hpp"
#include "server/transports.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <deque>
#include <map>
#include <random>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace datavor::server {

bool is_loopback_address(const std::string& a) {
    return a == "localhost" || a == "::1" || a == "[::1]" || a.starts_with("127.");
}

namespace {

// Messages waiting for one HTTP stream (a POST's SSE/JSON answer or a GET stream).
struct stream_sink {
    explicit stream_sink(asio::any_io_executor ex) : wake(ex, asio::steady_timer::time_point::max()), ex(ex) {}
    std::mutex mu;
    std::deque<std::pair<std::string, bool>> queue;  // message, final
    bool closed = false;
    asio::steady_timer wake;  // used only on ex (the connection's strand)
    asio::any_io_executor ex;

    void push(std::string msg, bool final) {
        {
            std::lock_guard lock(mu);
            if (closed) return;
            queue.emplace_back(std::move(msg), final);
        }
        asio::post(ex, [this_ = this, keep = keepalive.lock()] {
            if (keep) this_->wake.cancel();
        });
    }
    std::optional<std::pair<std::string, bool>> pop() {
        std::lock_guard lock(mu);
        if (queue.empty()) return std::nullopt;
        auto m = std::move(queue.front());
        queue.pop_front();
        return m;
    }
    std::weak_ptr<stream_sink> keepalive;
};

std::shared_ptr<stream_sink> make_sink(asio::any_io_executor ex) {
    auto s = std::make_shared<stream_sink>(ex);
    s->keepalive = s;
    return s;
}

// Routes a session's outgoing messages to the HTTP stream that should carry them.
class router final : public outbound {
public:
    void send(std::string message, const std::string& related, bool final) override {
        std::lock_guard lock(mu_);
        if (!related.empty()) {
            auto it = by_request_.find(related);
            if (it != by_request_.end()) {
                auto sink = it->second.lock();
                if (final) by_request_.erase(it);
                if (sink) sink->push(std::move(message), final);
                return;
            }
            if (final) return;  // the POST that asked has gone; nobody can take the answer
        }
        // Not tied to a live request: one standalone GET stream takes it (never broadcast).
        for (auto it = get_streams_.begin(); it != get_streams_.end();) {
            if (auto sink = it->lock()) {
                sink->push(std::move(message), false);
                return;
            }
            it = get_streams_.erase(it);
        }
        if (backlog_.size() < 256) backlog_.push_back(std::move(message));
    }
    // false when a request with this id is already waiting for its answer.
    bool expect(const std::string& id, const std::shared_ptr<stream_sink>& sink) {
        std::lock_guard lock(mu_);
        auto [it, fresh] = by_request_.try_emplace(id, sink);
        if (!fresh && !it->second.expired()) return false;
        it->second = sink;
        return true;
    }
    void add_get_stream(const std::shared_ptr<stream_sink>& sink) {
        std::lock_guard lock(mu_);
        get_streams_.push_back(sink);
        for (auto& m : backlog_) sink->push(std::move(m), false);
        backlog_.clear();
    }

private:
    std::mutex mu_;
    std::map<std::string, std::weak_ptr<stream_sink>> by_request_;
    std::vector<std::weak_ptr<stream_sink>> get_streams_;
    std::deque<std::string> backlog_;
};

struct http_mcp_session {
    std::shared_ptr<mcp_session> mcp;
    std::shared_ptr<router> route;
    std::chrono::steady_clock::time_point last_used;
};

struct shared_state {
    shared_state(mcp_server& s, http_options o) : server(s), opts(std::move(o)) {}
    mcp_server& server;
    http_options opts;
    std::mutex mu;
    std::map<std::string, std::shared_ptr<http_mcp_session>> sessions;
};

std::string new_session_id() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char hex[] = "0123456789abcdef";
    std::string id;
    for (int i = 0; i < 32; ++i) id.push_back(hex[rng() & 15]);
    return id;
}

// Host part of a Host header or Origin URL ("http://h:p" or "h:p" -> "h").
std::string host_of(std::string_view v) {
    if (auto p = v.find("://"); p != std::string_view::npos) v.remove_prefix(p + 3);
    if (!v.empty() && v.front() == '[') return std::string(v.substr(0, v.find(']') + 1));
    return std::string(v.substr(0, v.find_first_of(":/")));
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    unsigned char d = 0;
    for (std::size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
    return d == 0;
}

using request = http::request<http::string_body>;

http::response<http::string_body> json_response(const request& req, http::status st, std::string body) {
    http::response<http::string_body> res{st, req.version()};
    res.set(http::field::server, "datavor");
    res.set(http::field::content_type, "application/json");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

http::response<http::string_body> error_response(const request& req, http::status st, int code, std::string_view msg) {
    return json_response(req, st, jsonrpc::make_error("null", code, msg));
}

// One HTTP stream (POST answer or GET) waits here for its messages.
asio::awaitable<std::optional<std::pair<std::string, bool>>> next_message(std::shared_ptr<stream_sink> sink,
                                                                          std::chrono::seconds heartbeat) {
    for (;;) {
        if (auto m = sink->pop()) co_return m;
        boost::system::error_code ec;
        sink->wake.expires_after(heartbeat);
        co_await sink->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (!ec) co_return std::nullopt;  // heartbeat due
    }
}

std::string sse_event(std::string_view data, std::uint64_t id) {
    return "event: message\nid: " + std::to_string(id) + "\ndata: " + std::string(data) + "\n\n";
}

class connection {
public:
    connection(shared_state& st, beast::tcp_stream stream) : st_(st), stream_(std::move(stream)) {}

    asio::awaitable<void> run() {
        beast::flat_buffer buf;
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(max_message_bytes);
            stream_.expires_after(std::chrono::minutes(5));
            boost::system::error_code ec;
            co_await http::async_read(stream_, buf, parser, asio::redirect_error(asio::use_awaitable, ec));
            if (ec == http::error::body_limit) {
                request dummy;
                auto res = error_response(dummy, http::status::payload_too_large, jsonrpc::invalid_request,
                                          "Message larger than " + std::to_string(max_message_bytes) + " bytes");
                res.keep_alive(false);
                co_await write(std::move(res));
                co_await linger_close();
                co_return;
            }
            if (ec) break;
            request req = parser.release();
            bool keep = co_await handle(req);
            if (!keep || !req.keep_alive()) break;
        }
        boost::system::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }

private:
    // Closes after an early answer while the peer may still be sending: stop
    // writing, then read and drop what arrives (bounded), so the peer reads
    // our answer instead of a connection reset.
    asio::awaitable<void> linger_close() {
        boost::system::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream_.expires_after(std::chrono::seconds(5));
        std::array<char, 65536> sink;
        std::size_t drained = 0;
        while (!ec && drained < 64 * max_message_bytes)
            drained += co_await stream_.async_read_some(asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
        stream_.close();
    }

    template <class Res>
    asio::awaitable<bool> write(Res res) {
        boost::system::error_code ec;
        co_await http::async_write(stream_, res, asio::redirect_error(asio::use_awaitable, ec));
        co_return !ec;
    }

    std::optional<http::response<http::string_body>> check_security(const request& req) {
        const auto& o = st_.opts;
        // DNS-rebinding protection: a loopback server only answers loopback Host names.
        if (is_loopback_address(o.address)) {
            std::string host = host_of(req[http::field::host]);
            if (!is_loopback_address(host))
                return error_response(req, http::status::forbidden, -32000, "Invalid Host: " + host);
        }
        if (auto origin = req[http::field::origin]; !origin.empty()) {
            std::string host = host_of(origin);
            bool ok = is_loopback_address(host) ||
                      std::find(o.allowed_origins.begin(), o.allowed_origins.end(), std::string(origin)) !=
                          o.allowed_origins.end();
            if (!ok)
                return error_response(req, http::status::forbidden, -32000,
                                      "Invalid Origin: " + std::string(origin) + " (allow it with --allow-origin)");
        }
        if (o.token) {
            auto auth = req[http::field::authorization];
            if (!auth.starts_with("Bearer ") || !constant_time_equal(auth.substr(7), *o.token)) {
                auto res = error_response(req, http::status::unauthorized, -32000,
                                          "Missing or wrong bearer token: send Authorization: Bearer <token>");
                res.set(http::field::www_authenticate, "Bearer");
                return res;
            }
        }
        if (auto v = req["MCP-Protocol-Version"]; !v.empty() && !is_supported_protocol_version(v))
            return error_response(req, http::status::bad_request, -32000,
                                  "Unsupported MCP-Protocol-Version: " + std::string(v) +
                                      " (supported: 2025-11-25, 2025-06-18, 2025-03-26)");
        return std::nullopt;
    }

    std::shared_ptr<http_mcp_session> find_session(const request& req) {
        std::lock_guard lock(st_.mu);
        auto it = st_.sessions.find(std::string(req["Mcp-Session-Id"]));
        if (it == st_.sessions.end()) return nullptr;
        it->second->last_used = std::chrono::steady_clock::now();
        return it->second;
    }

    std::shared_ptr<http_mcp_session> create_session(std::string& id) {
        auto s = std::make_shared<http_mcp_session>();
        s->route = std::make_shared<router>();
        auto ex = co_executor_;
        s->mcp = make_session(st_.server, asio::make_strand(ex), s->route);
        s->last_used = std::chrono::steady_clock::now();
        std::lock_guard lock(st_.mu);
        if (st_.sessions.size() >= st_.opts.max_sessions) {  // evict the least recently used
            auto oldest = std::min_element(st_.sessions.begin(), st_.sessions.end(), [](auto& a, auto& b) {
                return a.second->last_used < b.second->last_used;
            });
            asio::co_spawn(ex, oldest->second->mcp->stop(std::chrono::milliseconds(0)), asio::detached);
            st_.sessions.erase(oldest);
        }
        id = new_session_id();
        st_.sessions[id] = s;
        return s;
    }

    asio::awaitable<bool> handle(request& req) {
        co_executor_ = co_await asio::this_coro::executor;
        if (req.target() != "/mcp" && !req.target().starts_with("/mcp?"))
            co_return co_await write(error_response(req, http::status::not_found, -32000, "Not found: the MCP endpoint is /mcp"));
        if (auto denied = check_security(req)) co_return co_await write(std::move(*denied));
        switch (req.method()) {
            case http::verb::post: co_return co_await handle_post(req);
            case http::verb::get: co_return co_await handle_get(req);
            case http::verb::delete_: {
                std::string id(req["Mcp-Session-Id"]);
                std::shared_ptr<http_mcp_session> s;
                {
                    std::lock_guard lock(st_.mu);
                    if (auto it = st_.sessions.find(id); it != st_.sessions.end()) {
                        s = it->second;
                        st_.sessions.erase(it);
                    }
                }
                if (!s) co_return co_await write(error_response(req, http::status::not_found, -32001, "Session not found"));
                co_await s->mcp->stop(std::chrono::milliseconds(0));
                http::response<http::string_body> res{http::status::ok, req.version()};
                res.keep_alive(req.keep_alive());
                res.prepare_payload();
                co_return co_await write(std::move(res));
            }
            default: {
                auto res = error_response(req, http::status::method_not_allowed, -32000, "Use POST, GET or DELETE on /mcp");
                res.set(http::field::allow, "GET, POST, DELETE");
                co_return co_await write(std::move(res));
            }
        }
    }

    asio::awaitable<bool> handle_post(request& req) {
        auto ctype = req[http::field::content_type];
        if (!ctype.starts_with("application/json"))
            co_return co_await write(error_response(req, http::status::unsupported_media_type, -32000,
                                                    "Content-Type must be application/json"));
        auto parsed = jsonrpc::parse(req.body());
        if (!parsed) {
            const auto& f = parsed.error();
            co_return co_await write(json_response(req, http::status::bad_request, jsonrpc::make_error(f.id, f.code, f.message)));
        }
        jsonrpc::message m = std::move(*parsed);
        std::string new_id;
        std::shared_ptr<http_mcp_session> s;
        const bool is_initialize = m.k == jsonrpc::kind::request && m.method == "initialize";
        if (is_initialize && req["Mcp-Session-Id"].empty()) {
            s = create_session(new_id);
        } else {
            if (req["Mcp-Session-Id"].empty())
                co_return co_await write(error_response(req, http::status::bad_request, -32000,
                                                        "Mcp-Session-Id header is required: send initialize first"));
            s = find_session(req);
            if (!s)
                co_return co_await write(error_response(req, http::status::not_found, -32001,
                                                        "Session not found: it ended or expired; initialize again"));
        }
        if (m.k != jsonrpc::kind::request) {
            s->mcp->receive(std::move(m));
            http::response<http::empty_body> res{http::status::accepted, req.version()};
            res.keep_alive(req.keep_alive());
            res.prepare_payload();
            co_return co_await write(std::move(res));
        }
        auto sink = make_sink(co_executor_);
        if (!s->route->expect(m.id, sink))
            co_return co_await write(json_response(
                req, http::status::ok,
                jsonrpc::make_error(m.id, jsonrpc::invalid_request,
                                    "Invalid Request: duplicate request id " + m.id + ": it is still in progress")));
        const bool stream = m.method == "tools/call";
        s->mcp->receive(std::move(m));
        std::string session_header = new_id;
        if (!stream) {
            for (;;) {
                auto msg = co_await next_message(sink, std::chrono::seconds(3600));
                if (!msg) continue;
                if (!msg->second) continue;  // JSON answers carry only the result
                auto res = json_response(req, http::status::ok, std::move(msg->first));
                if (!session_header.empty()) res.set("Mcp-Session-Id", session_header);
                co_return co_await write(std::move(res));
            }
        }
        co_return co_await stream_events(req, sink, session_header, true);
    }

    asio::awaitable<bool> handle_get(request& req) {
        if (req[http::field::accept].find("text/event-stream") == std::string_view::npos)
            co_return co_await write(error_response(req, http::status::not_acceptable, -32000,
                                                    "GET /mcp opens an SSE stream: send Accept: text/event-stream"));
        if (req["Mcp-Session-Id"].empty())
            co_return co_await write(error_response(req, http::status::bad_request, -32000, "Mcp-Session-Id header is required"));
        auto s = find_session(req);
        if (!s) co_return co_await write(error_response(req, http::status::not_found, -32001, "Session not found"));
        auto sink = make_sink(co_executor_);
        s->route->add_get_stream(sink);
        co_return co_await stream_events(req, sink, "", false);
    }

    // Writes an SSE response; a POST stream ends after its final message.
    asio::awaitable<bool> stream_events(const request& req, std::shared_ptr<stream_sink> sink,
                                        const std::string& session_header, bool until_final) {
        http::response<http::empty_body> res{http::status::ok, req.version()};
        res.set(http::field::content_type, "text/event-stream");
        res.set(http::field::cache_control, "no-cache");
        if (!session_header.empty()) res.set("Mcp-Session-Id", session_header);
        res.keep_alive(req.keep_alive());
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        stream_.expires_never();
        boost::system::error_code ec;
        co_await http::async_write_header(stream_, sr, asio::redirect_error(asio::use_awaitable, ec));
        std::uint64_t event_id = 0;
        while (!ec) {
            auto msg = co_await next_message(sink, std::chrono::seconds(20));
            std::string chunk = msg ? sse_event(msg->first, ++event_id) : std::string(": keepalive\n\n");
            co_await asio::async_write(stream_, http::make_chunk(asio::buffer(chunk)),
                                       asio::redirect_error(asio::use_awaitable, ec));
            if (msg && msg->second && until_final) break;
        }
        {
            std::lock_guard lock(sink->mu);
            sink->closed = true;
        }
        if (ec) co_return false;
        co_await asio::async_write(stream_, http::make_chunk_last(), asio::redirect_error(asio::use_awaitable, ec));
        co_return !ec;
    }

    shared_state& st_;
    beast::tcp_stream stream_;
    asio::any_io_executor co_executor_;
};

asio::awaitable<void> run_connection(std::shared_ptr<shared_state> st, tcp::socket socket) {
    connection c(*st, beast::tcp_stream(std::move(socket)));
    co_await c.run();
}

}  // namespace

asio::awaitable<void> serve_http(mcp_server& server, http_options options,
                                 std::function<void(std::uint16_t)> on_listening) {
    if (!is_loopback_address(options.address) && !options.token)
        throw std::invalid_argument("binding " + options.address +
                                    " (not loopback) needs a token: pass --token or set DATAVOR_TOKEN");
    auto ex = co_await asio::this_coro::executor;
    auto st = std::make_shared<shared_state>(server, options);
    std::string bind = options.address == "localhost" ? "127.0.0.1" : options.address;
    if (bind.size() > 2 && bind.front() == '[') bind = bind.substr(1, bind.size() - 2);
    tcp::endpoint ep(asio::ip::make_address(bind), options.port);
    tcp::acceptor acceptor(ex, ep);
    if (on_listening) on_listening(acceptor.local_endpoint().port());
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::make_strand(ex), asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        auto sock_ex = socket.get_executor();
        asio::co_spawn(sock_ex, run_connection(st, std::move(socket)), asio::detached);
    }
}

}  // namespace datavor::server
