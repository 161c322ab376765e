// datavor: the MCP server (`serve`) and its CLI mirrors for scripts.
#include "engines/context/connections.hpp"
#include "server/composition.hpp"
#include "server/ledger_tools.hpp"
#include "engines/ledger/ledger.hpp"
#include "server/mcp_session.hpp"
#include "server/transports.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_future.hpp>

#include <rapidjson/prettywriter.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>
#include <iostream>
#include <thread>
#include <unistd.h>

namespace asio = boost::asio;
using namespace datavor;

namespace {

constexpr const char* usage = R"(Usage:
  datavor serve [--home DIR] [--http HOST:PORT] [--token TOKEN] [--allow-origin ORIGIN]...
      MCP server: stdio by default; Streamable HTTP on http://HOST:PORT/mcp with --http.
      A non-loopback HOST needs --token (or DATAVOR_TOKEN).
  datavor connection add NAME URL [--password-env VAR | --password-stdin] [--sslmode MODE]
                                  [--sslrootcert FILE] [--replace] [--home DIR]
  datavor connection list [--json] [--home DIR]
  datavor connection test NAME [--tables a,b] [--timeout SECONDS] [--json] [--home DIR]
  datavor connection remove NAME [--home DIR]
  datavor stream run --source URL|NAME --target URL|NAME --tables a,b [--name NAME]
                     [--snapshot initial|never|only] [--home DIR]
      Runs one stream in the foreground until SIGINT/SIGTERM, then stops cleanly.
      Progress goes to stderr once a second.
  datavor ledger show [--stream S] [--kind K] [--status open|retried|dismissed] [--table T]
                     [--limit N] [--summary] [--json] [--home DIR]
      Reads the sync ledger (ledger.db): batches, failed rows, lifecycle, retries.
  datavor ledger verify [--home DIR]
      Recomputes the hash chain; exit 0 when intact, 3 when an entry was removed or altered.
  datavor claude-config [--home DIR]
      Prints a claude_desktop_config.json block for this binary (absolute path).
  datavor --version
State lives in --home, else $DATAVOR_HOME, else ~/.datavor.
)";

struct args {
    std::vector<std::string> positional;
    std::map<std::string, std::vector<std::string>> options;
    bool has(const std::string& k) const { return options.count(k) > 0; }
    std::string get(const std::string& k, std::string def = {}) const {
        auto it = options.find(k);
        return it == options.end() || it->second.empty() ? def : it->second.back();
    }
};

const std::set<std::string> flags = {"--json", "--replace", "--password-stdin", "--help", "--version", "--summary"};

args parse_args(int argc, char** argv) {
    args a;
    for (int i = 1; i < argc; ++i) {
        std::string s = argv[i];
        if (s.starts_with("--")) {
            if (auto eq = s.find('='); eq != std::string::npos) {
                a.options[s.substr(0, eq)].push_back(s.substr(eq + 1));
            } else if (flags.count(s)) {
                a.options[s];
            } else if (i + 1 < argc) {
                a.options[s].push_back(argv[++i]);
            } else {
                throw std::invalid_argument("option " + s + " needs a value");
            }
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

std::filesystem::path home_of(const args& a) {
    return a.has("--home") ? std::filesystem::path(a.get("--home")) : engines::context::default_home();
}

asio::awaitable<void> serve_stdio_then_stop(server::mcp_server& srv, server::application& app) {
    co_await server::serve_stdio(srv, std::chrono::seconds(30));
    co_await app.shutdown_streams();  // saved as running: they resume at the next start
}

asio::awaitable<void> stop_streams(server::application& app) { co_await app.shutdown_streams(); }

int serve(const args& a) {
    const bool http = a.has("--http");
    asio::io_context io(http ? 2 : 1);
    server::application app(home_of(a), io.get_executor());
    server::mcp_server srv(server::product_info());
    app.register_product(srv);
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto ec, int sig) {
        if (ec) return;
        srv.log(server::log_level::notice, "server", "signal " + std::to_string(sig) + ": shutting down");
        asio::co_spawn(io, stop_streams(app), [&io](std::exception_ptr) { io.stop(); });
    });
    std::exception_ptr failure;
    auto on_done = [&](std::exception_ptr e) {
        failure = e;
        io.stop();
    };
    app.resume_streams();
    if (http) {
        server::http_options o;
        std::string hp = a.get("--http");
        auto colon = hp.rfind(':');
        if (colon == std::string::npos) throw std::invalid_argument("--http needs HOST:PORT, e.g. 127.0.0.1:7433");
        o.address = hp.substr(0, colon);
        o.port = static_cast<std::uint16_t>(std::stoi(hp.substr(colon + 1)));
        if (a.has("--token")) o.token = a.get("--token");
        else if (const char* t = std::getenv("DATAVOR_TOKEN"); t && *t) o.token = t;
        if (auto it = a.options.find("--allow-origin"); it != a.options.end()) o.allowed_origins = it->second;
        auto address = o.address;
        asio::co_spawn(io, server::serve_http(srv, o, [&srv, address](std::uint16_t port) {
                           srv.log(server::log_level::notice, "server",
                                   "listening on http://" + address + ":" + std::to_string(port) + "/mcp");
                       }),
                       on_done);
        std::thread second([&io] { io.run(); });
        io.run();
        second.join();
    } else {
        asio::co_spawn(io, serve_stdio_then_stop(srv, app), on_done);
        io.run();
    }
    if (failure) std::rethrow_exception(failure);
    return 0;
}

int connection_cmd(const args& a) {
    if (a.positional.size() < 2) throw std::invalid_argument("connection needs a subcommand: add, list, test or remove");
    const std::string& sub = a.positional[1];
    server::application app(home_of(a));
    auto deps = app.connections();
    if (sub == "add") {
        if (a.positional.size() != 4) throw std::invalid_argument("usage: datavor connection add NAME URL");
        engines::context::add_connection_request req;
        req.name = a.positional[2];
        req.url = a.positional[3];
        if (a.has("--password-env")) req.password_env = a.get("--password-env");
        if (a.has("--password-stdin")) {
            std::string pw;
            std::getline(std::cin, pw);
            req.password = pw;
        }
        if (a.has("--sslmode")) req.sslmode = a.get("--sslmode");
        if (a.has("--sslrootcert")) req.sslrootcert = a.get("--sslrootcert");
        req.replace = a.has("--replace");
        auto r = engines::context::add_connection(deps.context, deps.secrets, req);
        if (!r) {
            std::cerr << "datavor: cannot add connection " << req.name << ": " << r.error().message() << "\n";
            return 1;
        }
        std::cout << (r->created ? "added " : "unchanged ") << req.name << " " << r->record.spec.redacted_url() << "\n";
        return 0;
    }
    if (sub == "list") {
        auto list = deps.context.list_connections();
        if (a.has("--json")) {
            server::json_doc d(rapidjson::kArrayType);
            for (const auto& r : list) d.PushBack(server::connection_json(r, d.GetAllocator()), d.GetAllocator());
            std::cout << server::to_json(d) << "\n";
        } else {
            for (const auto& r : list) std::cout << r.name << "\t" << r.spec.redacted_url() << "\n";
        }
        return 0;
    }
    if (sub == "remove") {
        if (a.positional.size() != 3) throw std::invalid_argument("usage: datavor connection remove NAME");
        bool removed = engines::context::remove_connection(deps.context, deps.secrets, a.positional[2]);
        std::cout << (removed ? "removed " : "no connection named ") << a.positional[2] << "\n";
        return removed ? 0 : 1;
    }
    if (sub == "test") {
        if (a.positional.size() != 3) throw std::invalid_argument("usage: datavor connection test NAME");
        std::vector<std::string> tables;
        std::string t = a.get("--tables");
        for (std::size_t pos = 0; !t.empty() && pos != std::string::npos;) {
            auto comma = t.find(',', pos);
            tables.push_back(t.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
            pos = comma == std::string::npos ? comma : comma + 1;
        }
        asio::io_context io(1);
        const bool json = a.has("--json");
        auto fut = asio::co_spawn(io,
                                  server::run_connection_test(deps, a.positional[2], tables,
                                                              std::stoi(a.get("--timeout", "10")), nullptr),
                                  asio::use_future);
        io.run();
        server::json_doc result = fut.get();
        const server::json_value* sc = server::member(result, "structuredContent");
        if (!sc) {
            std::cerr << "datavor: " << result["content"][0]["text"].GetString() << "\n";
            return 1;
        }
        if (json) {
            std::cout << server::to_json(*sc) << "\n";
        } else {
            for (const auto& c : (*sc)["checks"].GetArray()) {
                std::cout << c["status"].GetString() << "\t" << c["title"].GetString() << ": " << c["detail"].GetString()
                          << "\n";
                if (c.HasMember("fix")) std::cout << "\tfix: " << c["fix"].GetString() << "\n";
            }
            std::cout << (*sc)["summary"].GetString() << "\n";
        }
        return (*sc)["ok"].GetBool() ? 0 : 2;
    }
    throw std::invalid_argument("unknown connection subcommand " + sub);
}

std::vector<std::string> split_list(const std::string& t) {
    std::vector<std::string> out;
    for (std::size_t pos = 0; !t.empty() && pos != std::string::npos;) {
        auto comma = t.find(',', pos);
        out.push_back(t.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
        pos = comma == std::string::npos ? comma : comma + 1;
    }
    return out;
}

void print_status(const engines::stream::stream_status& s) {
    std::uint64_t snap = 0;
    for (const auto& [name, t] : s.tables) snap += t.snapshot_rows;
    char line[512];
    std::snprintf(line, sizeof line,
                  "stream %s: %s | snapshot rows %llu | changes %llu in %llu txns | %.0f/s | latency p50 %.2f ms p99 %.2f ms | applied %s",
                  s.name.c_str(), s.state.c_str(), static_cast<unsigned long long>(snap),
                  static_cast<unsigned long long>(s.changes), static_cast<unsigned long long>(s.transactions),
                  s.changes_per_second, s.latency_p50_ms, s.latency_p99_ms, s.applied.to_string().c_str());
    std::cerr << line << std::endl;
}

int stream_cmd(const args& a) {
    if (a.positional.size() < 2 || a.positional[1] != "run")
        throw std::invalid_argument("usage: datavor stream run --source URL|NAME --target URL|NAME --tables a,b");
    server::application app(home_of(a));
    server::application::stream_request req;
    req.source = a.get("--source");
    req.target = a.get("--target");
    req.tables = split_list(a.get("--tables"));
    req.name = a.get("--name", "cli");
    std::string mode = a.get("--snapshot", "initial");
    if (mode == "never") req.snapshot = connectors::snapshot_mode::never;
    else if (mode == "only") req.snapshot = connectors::snapshot_mode::only;
    else if (mode != "initial") throw std::invalid_argument("--snapshot must be initial, never or only");
    if (req.source.empty() || req.target.empty()) throw std::invalid_argument("--source and --target are required");
    auto runner = app.make_stream(req, [](std::string_view level, std::string_view msg) {
        std::cerr << level << ": " << msg << std::endl;
    });
    asio::io_context io(1);
    asio::cancellation_signal stop;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto ec, int) {
        if (!ec) stop.emit(asio::cancellation_type::terminal);
    });
    asio::steady_timer ticker(io);
    bool finished = false;  // a tick that already fired must not re-arm after the end
    std::function<void()> tick = [&] {
        ticker.expires_after(std::chrono::seconds(1));
        ticker.async_wait([&](auto ec) {
            if (ec || finished) return;
            print_status(runner->status());
            tick();
        });
    };
    tick();
    std::exception_ptr failure;
    asio::co_spawn(io, runner->run(), asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                       failure = e;
                       finished = true;
                       signals.cancel();
                       ticker.cancel();
                   }));
    io.run();
    print_status(runner->status());
    if (failure) std::rethrow_exception(failure);
    return 0;
}

int claude_config(const args& a) {
    auto self = std::filesystem::read_symlink("/proc/self/exe").string();
    server::json_doc d(rapidjson::kObjectType);
    auto& al = d.GetAllocator();
    server::json_value servers(rapidjson::kObjectType), entry(rapidjson::kObjectType), argv(rapidjson::kArrayType);
    entry.AddMember("command", server::str(self, al), al);
    argv.PushBack("serve", al);
    if (a.has("--home")) {
        argv.PushBack("--home", al);
        argv.PushBack(server::str(std::filesystem::absolute(a.get("--home")).string(), al), al);
    }
    entry.AddMember("args", argv, al);
    servers.AddMember("datavor", entry, al);
    d.AddMember("mcpServers", servers, al);
    rapidjson::StringBuffer buf;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
    w.SetIndent(' ', 2);
    d.Accept(w);
    std::cout << buf.GetString() << "\n";
    return 0;
}

int ledger_cmd(const args& a) {
    if (a.positional.size() < 2) throw std::invalid_argument("ledger needs a subcommand: show or verify");
    const std::string& sub = a.positional[1];
    const auto home = home_of(a);
    if (!std::filesystem::exists(home / "ledger.db")) {
        std::cerr << "datavor: no ledger yet in " << home.string() << " (it is created when a stream first runs)\n";
        return 1;
    }
    engines::ledger::ledger l(home / "ledger.db");
    if (sub == "verify") {
        auto v = l.verify();
        if (v.ok) {
            std::cout << "ledger intact: " << v.entries << " entries chained";
            if (v.rolled_up) std::cout << ", " << v.rolled_up << " rolled up by retention (recorded)";
            std::cout << "\n";
            return 0;
        }
        std::cout << "ledger BROKEN at entry " << v.first_bad_seq << ": " << v.problem << " (" << v.entries
                  << " entries verified before it)\n";
        return 3;
    }
    if (sub != "show") throw std::invalid_argument("unknown ledger subcommand " + sub + ": use show or verify");
    const std::string stream = a.get("--stream");
    if (a.has("--summary")) {
        if (stream.empty()) throw std::invalid_argument("--summary needs --stream");
        for (const auto& c : l.failed_summary(stream))
            std::cout << c.error_class << "\t" << c.table << "\t" << c.code << "\topen " << c.open << "\ttotal " << c.total
                      << "\tfirst " << server::utc_iso_us(c.first_us) << "\tlast " << server::utc_iso_us(c.last_us) << "\n";
        return 0;
    }
    engines::ledger::query q;
    q.stream = stream;
    q.kind = a.get("--kind");
    q.status = a.get("--status");
    q.table = a.get("--table");
    q.limit = static_cast<std::size_t>(std::stoul(a.get("--limit", "50")));
    q.newest_first = true;
    auto entries = l.find(q);
    std::reverse(entries.begin(), entries.end());
    for (const auto& e : entries) {
        if (a.has("--json")) {
            server::json_doc d(rapidjson::kObjectType);
            server::json_value v = server::ledger_entry_json(e, d.GetAllocator());
            d.CopyFrom(v, d.GetAllocator());
            std::cout << server::to_json(d) << "\n";
            continue;
        }
        std::cout << e.seq << "\t" << server::utc_iso_us(e.at_us) << "\t" << e.stream << "\t" << e.kind;
        for (const auto* f : {&e.table, &e.op, &e.row_key, &e.position, &e.error_class, &e.code, &e.status})
            if (!f->empty()) std::cout << "\t" << *f;
        if (!e.message.empty()) std::cout << "\t" << e.message;
        std::cout << "\n";
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        args a = parse_args(argc, argv);
        if (a.has("--version")) {
            std::cout << "datavor " << server::product_info().version << "\n";
            return 0;
        }
        if (a.has("--help") || a.positional.empty()) {
            std::cout << usage;
            return a.positional.empty() && !a.has("--help") ? 2 : 0;
        }
        if (a.positional[0] == "serve") return serve(a);
        if (a.positional[0] == "claude-config") return claude_config(a);
        if (a.positional[0] == "stream") return stream_cmd(a);
        if (a.positional[0] == "connection") return connection_cmd(a);
        if (a.positional[0] == "ledger") return ledger_cmd(a);
        std::cerr << "datavor: unknown command " << a.positional[0] << "\n" << usage;
        return 2;
    } catch (const std::exception& e) {
        std::cerr << "datavor: " << e.what() << "\n";
        return 1;
    }
}
