// datavor: the MCP server (`serve`) and its CLI mirrors for scripts.
#include "engines/context/connections.hpp"
#include "server/composition.hpp"
#include "server/ledger_tools.hpp"
#include "engines/ledger/ledger.hpp"
#include "engines/stream/run_lock.hpp"
#include "server/mcp_session.hpp"
#include "server/transports.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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
                     [--snapshot initial|never|only] [--resnapshot] [--autopilot suggest|learned|all]
                     [--home DIR]
      Runs one stream in the foreground until SIGINT/SIGTERM, then stops cleanly.
      --resnapshot starts over: a new slot and a fresh copy of every table.
      --autopilot: how schema drift is decided (default: the saved stream's, else suggest, decided with
      accept_suggestion from a `datavor serve` on the same home).
      Progress goes to stderr once a second.
  datavor ledger show [--stream S] [--kind K] [--status open|retried|dismissed] [--table T]
                     [--limit N] [--summary] [--json] [--home DIR]
      Reads the sync ledger (ledger.db): batches, failed rows, lifecycle, retries.
  datavor ledger retry --stream S [--seqs 12,15] [--json] [--home DIR]
                      [--source URL|NAME --target URL|NAME --tables a,b]
      Re-applies the stream's open failed rows (all, or the given entries) through the stream,
      in order, after the cause is fixed; records the outcome. Runs the stream until the retry
      is done (a stream running in `datavor serve` is retried there: retry_failed). Exit 0 when
      every row applied, 4 when some still fail.
  datavor ledger verify [--home DIR]
      Recomputes the hash chain; exit 0 when intact, 3 when an entry was removed or altered.
  datavor ledger prune [--keep-days N] [--max-mb M] [--home DIR]
      One retention pass now: batch entries older than N days (30) or beyond M MiB (1024) roll up
      into daily summaries; failed rows stay until retried or dismissed. `serve`, `stream run` and
      `ledger retry` take --ledger-keep-days N / --ledger-max-mb M (0: no limit) and apply them hourly.
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

const std::set<std::string> flags = {"--json", "--replace", "--password-stdin", "--help", "--version", "--summary",
                                     "--resnapshot"};

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

int int_option(const args& a, const std::string& name, int fallback) {
    if (!a.has(name)) return fallback;
    try {
        std::size_t used = 0;
        const int v = std::stoi(a.get(name), &used);
        if (used == a.get(name).size() && v >= 0) return v;
    } catch (const std::exception&) {
    }
    throw std::invalid_argument(name + " takes a whole number >= 0 (0 turns the limit off)");
}

// --ledger-keep-days / --ledger-max-mb: the ledger's automatic retention.
void ledger_retention_options(const args& a, server::application& app) {
    app.set_ledger_retention(int_option(a, "--ledger-keep-days", 30), int_option(a, "--ledger-max-mb", 1024));
}

int serve(const args& a) {
    const bool http = a.has("--http");
    asio::io_context io(http ? 2 : 1);
    server::application app(home_of(a), io.get_executor());
    ledger_retention_options(a, app);
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

// --source, --target, --tables, --name, --snapshot as `stream run` takes them.
server::application::stream_request stream_request_of(const args& a, const std::string& default_name) {
    server::application::stream_request req;
    req.source = a.get("--source");
    req.target = a.get("--target");
    req.tables = split_list(a.get("--tables"));
    req.name = a.get("--name", default_name);
    std::string mode = a.get("--snapshot", "initial");
    if (mode == "never") req.snapshot = connectors::snapshot_mode::never;
    else if (mode == "only") req.snapshot = connectors::snapshot_mode::only;
    else if (mode != "initial") throw std::invalid_argument("--snapshot must be initial, never or only");
    if (req.source.empty() || req.target.empty()) throw std::invalid_argument("--source and --target are required");
    req.autopilot = a.get("--autopilot");  // "": the saved stream's, else suggest
    if (!req.autopilot.empty() && req.autopilot != "suggest" && req.autopilot != "learned" && req.autopilot != "all")
        throw std::invalid_argument("--autopilot must be suggest, learned or all");
    return req;
}

int stream_cmd(const args& a) {
    if (a.positional.size() < 2 || a.positional[1] != "run")
        throw std::invalid_argument("usage: datavor stream run --source URL|NAME --target URL|NAME --tables a,b");
    server::application app(home_of(a));
    ledger_retention_options(a, app);
    auto req = stream_request_of(a, "cli");
    auto runner = app.make_stream(req, [](std::string_view level, std::string_view msg) {
        std::cerr << level << ": " << msg << std::endl;
    });
    if (a.has("--resnapshot")) runner->start_over();
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

// `datavor ledger retry`: failed rows go back through their stream, so that
// order per key holds (held changes follow their row). The stream is run here
// until the retry is done, then stopped; a stream that runs in `datavor serve`
// holds its slot, so it is retried there (retry_failed) instead.
int ledger_retry(const args& a) {
    const auto home = home_of(a);
    const std::string stream = a.get("--stream");
    if (stream.empty()) throw std::invalid_argument("ledger retry needs --stream NAME (datavor ledger show --kind failed lists them)");
    std::vector<std::int64_t> wanted;
    for (const auto& s : split_list(a.get("--seqs"))) {
        try {
            wanted.push_back(std::stoll(s));
        } catch (const std::exception&) {
            throw std::invalid_argument("--seqs takes ledger entry numbers, comma-separated (got \"" + s + "\")");
        }
    }
    if (!std::filesystem::exists(home / "ledger.db")) {
        std::cerr << "datavor: no ledger yet in " << home.string() << " (it is created when a stream first runs)\n";
        return 1;
    }
    if (auto pid = engines::stream::run_lock::holder(home / "run", stream)) {
        std::cerr << "datavor: stream " << stream << " is running in another Datavor process"
                  << (*pid > 0 ? " (pid " + std::to_string(*pid) + ")" : std::string()) << " on this home: retry there "
                  << "with the retry_failed tool, or stop the stream first (stop_stream, or end `datavor stream run`)\n";
        return 1;
    }
    server::application app(home);
    ledger_retention_options(a, app);
    engines::ledger::query q;
    q.stream = stream;
    q.kind = engines::ledger::kind_failed;
    q.status = "open";
    q.limit = 1000000;
    std::set<std::int64_t> open;
    for (const auto& e : app.ledger().find(q)) open.insert(e.seq);
    for (auto s : wanted)
        if (!open.count(s))
            throw std::invalid_argument("entry " + std::to_string(s) + " is not an open failed row of stream " + stream +
                                        " (datavor ledger show --stream " + stream + " --kind failed --status open)");
    if (open.empty()) {
        std::cout << "stream " << stream << " has no open failed rows: nothing to retry\n";
        return 0;
    }
    server::application::stream_request req;
    if (a.has("--source") || a.has("--target")) {
        req = stream_request_of(a, stream);
        req.name = stream;
    } else if (auto saved = app.saved_stream(stream)) {
        req = *saved;
    } else {
        throw std::invalid_argument("stream " + stream + " is not saved in " + (home / "context.db").string() +
                                    " (a `datavor stream run` stream is not): pass the --source, --target and --tables it runs with");
    }
    auto runner = app.make_stream(req, [](std::string_view level, std::string_view msg) {
        std::cerr << level << ": " << msg << std::endl;
    });
    asio::io_context io(1);
    asio::cancellation_signal stop;
    bool finished = false;
    std::exception_ptr failure;
    std::string problem;
    std::optional<engines::stream::retry_outcome> result;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto ec, int) {
        if (!ec) {
            problem = "interrupted before the retry finished";
            stop.emit(asio::cancellation_type::terminal);
        }
    });
    asio::co_spawn(io, runner->run(), asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr e) {
                       failure = e;
                       finished = true;
                       signals.cancel();
                   }));
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            asio::steady_timer t(io);
            auto pause = [&]() -> asio::awaitable<void> {
                t.expires_after(std::chrono::milliseconds(100));
                co_await t.async_wait(asio::use_awaitable);
            };
            for (;;) {  // until the stream has caught up with its source
                if (finished) co_return;
                const auto st = runner->status();
                if (st.state == "streaming") break;
                if (st.state == "degraded") {
                    problem = "the stream cannot run: " + st.degraded_reason +
                              " (if it runs in `datavor serve`, retry there with the retry_failed tool)";
                    stop.emit(asio::cancellation_type::terminal);
                    co_return;
                }
                co_await pause();
            }
            auto handle = runner->request_retry(wanted);
            for (;;) {
                if (finished) co_return;
                auto o = runner->outcome(handle);
                if (o.done) {
                    result = std::move(o);
                    break;
                }
                co_await pause();
            }
            stop.emit(asio::cancellation_type::terminal);
        },
        asio::detached);
    io.run();
    runner.reset();
    if (!result) {
        if (failure && problem.empty()) std::rethrow_exception(failure);
        std::cerr << "datavor: " << (problem.empty() ? "the stream stopped before the retry ran" : problem) << "\n";
        return 1;
    }
    if (!result->error.empty()) {
        std::cerr << "datavor: cannot retry: " << result->error << "\n";
        return 1;
    }
    app.ledger().flush(std::chrono::seconds(10));
    const auto left = app.ledger().find(q).size();
    if (a.has("--json")) {
        std::cout << server::to_json(server::retry_outcome_json(stream, *result, static_cast<std::int64_t>(left))) << "\n";
    } else {
        std::cout << "stream " << stream << ": " << result->applied.size() << " failed row(s) applied";
        if (!result->applied.empty()) {
            std::cout << " (";
            for (std::size_t i = 0; i < result->applied.size(); ++i) std::cout << (i ? ", " : "") << result->applied[i];
            std::cout << ")";
        }
        std::cout << ", " << result->failed.size() << " still failing; " << left << " open failed row(s) left\n";
        for (const auto& [s, m] : result->failed) std::cout << "  " << s << ": " << m << "\n";
    }
    return result->failed.empty() ? 0 : 4;
}

int ledger_cmd(const args& a) {
    if (a.positional.size() < 2) throw std::invalid_argument("ledger needs a subcommand: show, verify, retry or prune");
    const std::string& sub = a.positional[1];
    if (sub == "retry") return ledger_retry(a);
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
    if (sub == "prune") {
        engines::ledger::retention r;
        const int days = int_option(a, "--keep-days", 30);
        r.batch_age = std::chrono::hours(24 * (days > 0 ? days : 365 * 1000));
        r.max_bytes = static_cast<std::int64_t>(int_option(a, "--max-mb", 1024)) << 20;
        const auto before = l.used_bytes();
        const auto removed = l.apply_retention(r);
        std::cout << "ledger: " << removed << " batch entries rolled up into daily summaries; " << (before >> 10)
                  << " KiB in use before, " << (l.used_bytes() >> 10) << " KiB after\n";
        return 0;
    }
    if (sub != "show")
        throw std::invalid_argument("unknown ledger subcommand " + sub + ": use show, verify, retry or prune");
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
