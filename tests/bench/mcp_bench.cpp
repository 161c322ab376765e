// mcp_bench: round-trip latency of read-only MCP tool calls against a real
// `datavor serve`, over stdio (pipes) or Streamable HTTP (one keep-alive
// connection). One request in flight at a time, as an agent issues them.
//
// Usage: mcp_bench --bin build/server/datavor --mode stdio|http --calls 10000 --home DIR
// Prints one JSON object: {"mode","calls","p50_us","p90_us","p99_us","max_us","calls_per_s"}.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <thread>
#include <fcntl.h>
#include <unistd.h>
#include <vector>

extern char** environ;
namespace beast = boost::beast;
namespace http = beast::http;
using clock_type = std::chrono::steady_clock;

namespace {

const std::string init_req =
    R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp_bench","version":"1"}}})";
const std::string initialized = R"({"jsonrpc":"2.0","method":"notifications/initialized"})";
std::string call(int id) {
    return R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
           R"(,"method":"tools/call","params":{"name":"list_connections","arguments":{}}})";
}

pid_t spawn(const std::vector<std::string>& argv, int in_fd, int out_fd) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in_fd >= 0) posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    if (out_fd >= 0) posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid;
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0)
        throw std::runtime_error("cannot start " + argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

struct line_reader {
    int fd;
    std::string buf;
    std::string next() {
        for (;;) {
            auto nl = buf.find('\n');
            if (nl != std::string::npos) {
                std::string line = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                return line;
            }
            char tmp[65536];
            auto n = ::read(fd, tmp, sizeof tmp);
            if (n <= 0) throw std::runtime_error("server closed stdout");
            buf.append(tmp, static_cast<std::size_t>(n));
        }
    }
};

void write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        auto n = ::write(fd, s.data() + off, s.size() - off);
        if (n <= 0) throw std::runtime_error("write failed");
        off += static_cast<std::size_t>(n);
    }
}

std::vector<double> run_stdio(const std::string& bin, const std::string& home, int calls) {
    int to_srv[2], from_srv[2];
    if (pipe2(to_srv, O_CLOEXEC) || pipe2(from_srv, O_CLOEXEC)) throw std::runtime_error("pipe");
    pid_t pid = spawn({bin, "serve", "--home", home}, to_srv[0], from_srv[1]);
    close(to_srv[0]);
    close(from_srv[1]);
    line_reader in{from_srv[0], {}};
    write_all(to_srv[1], init_req + "\n");
    in.next();
    write_all(to_srv[1], initialized + "\n");
    std::vector<double> us;
    us.reserve(calls);
    for (int i = 1; i <= calls + 200; ++i) {  // the first 200 warm up
        auto t0 = clock_type::now();
        write_all(to_srv[1], call(i) + "\n");
        std::string line = in.next();
        auto t1 = clock_type::now();
        if (line.find("\"id\":" + std::to_string(i) + ",") == std::string::npos)
            throw std::runtime_error("unexpected reply: " + line.substr(0, 200));
        if (i > 200) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    close(to_srv[1]);
    waitpid(pid, nullptr, 0);
    close(from_srv[0]);
    return us;
}

std::vector<double> run_http(const std::string& bin, const std::string& home, int calls, int port) {
    pid_t pid = spawn({bin, "serve", "--home", home, "--http", "127.0.0.1:" + std::to_string(port)}, -1, -1);
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    boost::asio::ip::tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port));
    for (int attempt = 0;; ++attempt) {
        beast::error_code ec;
        stream.socket().connect(ep, ec);
        if (!ec) break;
        if (attempt > 200) throw std::runtime_error("server did not listen");
        stream.socket().close();
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    stream.socket().set_option(boost::asio::ip::tcp::no_delay(true));
    std::string session;
    beast::flat_buffer buf;
    auto post = [&](const std::string& body) {
        http::request<http::string_body> req{http::verb::post, "/mcp", 11};
        req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
        req.set(http::field::content_type, "application/json");
        req.set(http::field::accept, "application/json, text/event-stream");
        if (!session.empty()) {
            req.set("Mcp-Session-Id", session);
            req.set("MCP-Protocol-Version", "2025-11-25");
        }
        req.body() = body;
        req.prepare_payload();
        http::write(stream, req);
        http::response<http::string_body> res;
        http::read(stream, buf, res);
        if (session.empty()) session = std::string(res["Mcp-Session-Id"]);
        return res;
    };
    post(init_req);
    post(initialized);
    std::vector<double> us;
    us.reserve(calls);
    for (int i = 1; i <= calls + 200; ++i) {
        auto t0 = clock_type::now();
        auto res = post(call(i));
        auto t1 = clock_type::now();
        if (res.result() != http::status::ok || res.body().find("\"id\":" + std::to_string(i) + ",") == std::string::npos)
            throw std::runtime_error("unexpected reply: " + res.body().substr(0, 200));
        if (i > 200) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    return us;
}

}  // namespace

int main(int argc, char** argv) {
    std::map<std::string, std::string> a;
    for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
    const std::string mode = a.count("--mode") ? a["--mode"] : "stdio";
    const int calls = a.count("--calls") ? std::stoi(a["--calls"]) : 10000;
    try {
        auto t0 = clock_type::now();
        auto us = mode == "http" ? run_http(a["--bin"], a["--home"], calls, std::stoi(a.count("--port") ? a["--port"] : "17433"))
                                 : run_stdio(a["--bin"], a["--home"], calls);
        double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
        std::sort(us.begin(), us.end());
        auto pct = [&](double p) { return us[std::min(us.size() - 1, static_cast<std::size_t>(p * us.size()))]; };
        std::printf(R"({"mode":"%s","calls":%zu,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f,"calls_per_s":%.0f})"
                    "\n",
                    mode.c_str(), us.size(), pct(0.50), pct(0.90), pct(0.99), us.back(), (calls + 200) / secs);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mcp_bench: %s\n", e.what());
        return 1;
    }
}
