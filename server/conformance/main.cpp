// datavor-conformance-server: the product's server library with the official
// conformance suite's fixtures instead of product tools. Test only.
#include "server/conformance/fixtures.hpp"
#include "server/transports.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <iostream>
#include <string>
#include <thread>

int main(int argc, char** argv) {
    using namespace datavor::server;
    std::string http;
    for (int i = 1; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--http") http = argv[i + 1];
    mcp_server srv(server_info{"datavor-conformance", "Datavor conformance fixtures", "0.0.0", ""});
    conformance::register_fixtures(srv);
    boost::asio::io_context io(2);
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, int) { io.stop(); });
    auto done = [&](std::exception_ptr e) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& x) {
                std::cerr << "datavor-conformance-server: " << x.what() << "\n";
            }
        }
        io.stop();
    };
    if (http.empty()) {
        boost::asio::co_spawn(io, serve_stdio(srv, std::chrono::seconds(5)), done);
        io.run();
        return 0;
    }
    http_options o;
    auto colon = http.rfind(':');
    o.address = http.substr(0, colon);
    o.port = static_cast<std::uint16_t>(std::stoi(http.substr(colon + 1)));
    boost::asio::co_spawn(io, serve_http(srv, o, [](std::uint16_t port) {
                              std::cerr << "listening on http://127.0.0.1:" << port << "/mcp" << std::endl;
                          }),
                          done);
    std::thread t([&] { io.run(); });
    io.run();
    t.join();
    return 0;
}
