#include "server/composition.hpp"

#include "engines/ledger/ledger.hpp"
#include "server/ledger_tools.hpp"
#include "server/context_tools.hpp"
#include "server/rule_tools.hpp"
#include "server/suggestion_tools.hpp"
#include "engines/suggest/suggest_engine.hpp"

#include <atomic>
#include <cstdlib>
#include <random>

#include "connectors/jsonl/jsonl_sink.hpp"
#include "connectors/mariadb/mariadb_prober.hpp"
#include "connectors/pg/pg_prober.hpp"
#include "connectors/pg/pg_sink.hpp"
#include "connectors/pg/pg_source.hpp"
#include "connectors/sqlite/sqlite_sink.hpp"
#include "connectors/sqlite/sqlite_prober.hpp"
#include "engines/context/context_store.hpp"
#include "engines/context/secret_store.hpp"
#include "engines/stream/stream_manager.hpp"
#include "server/stream_tools.hpp"

#ifndef DATAVOR_VERSION
#define DATAVOR_VERSION "0.0.0"
#endif

namespace datavor::server {

struct application::parts {
    explicit parts(const std::filesystem::path& home) : context(home), secrets(home) {}
    engines::context::context_store context;
    engines::context::secret_store secrets;
    connectors::pg::pg_prober pg;
    connectors::mariadb::mariadb_prober mariadb;
    connectors::sqlite::sqlite_prober sqlite;
    connectors::jsonl::jsonl_prober jsonl;
    engines::stream::stream_log log = [](std::string_view, std::string_view) {};
    std::mutex ledger_mu;
    std::unique_ptr<engines::ledger::ledger> ledger;  // opened on first use; outlives the streams
    std::function<void()> alert_hook;  // resources/updated datavor://alerts, once a server is registered
    std::function<void()> suggestion_hook;  // resources/updated datavor://suggestions
    std::unique_ptr<engines::suggest::suggest_engine> suggest;  // after the ledger opens
    int keep_days = 30;
    std::int64_t max_mb = 1024;
    std::unique_ptr<engines::stream::stream_manager> streams;
};

namespace {
application::stream_request request_of(const engines::context::stream_record& r) {
    application::stream_request req{r.name, r.source, r.target, r.tables, connectors::snapshot_mode::initial};
    if (r.snapshot == "never") req.snapshot = connectors::snapshot_mode::never;
    if (r.snapshot == "only") req.snapshot = connectors::snapshot_mode::only;
    return req;
}
}  // namespace

std::optional<application::stream_request> application::saved_stream(const std::string& name) {
    auto r = parts_->context.find_stream(name);
    if (!r) return std::nullopt;
    return request_of(*r);
}

application::application(const std::filesystem::path& home, boost::asio::any_io_executor ex)
    : home_(home), parts_(std::make_unique<parts>(home)) {
    if (!ex) return;
    parts_->streams = std::make_unique<engines::stream::stream_manager>(
        ex, parts_->context,
        [this](const engines::context::stream_record& r) {
            return make_stream(request_of(r), [this](std::string_view level, std::string_view msg) { parts_->log(level, msg); });
        },
        [this](std::string_view level, std::string_view msg) { parts_->log(level, msg); }, nullptr);
}

void application::set_log(engines::stream::stream_log log) { parts_->log = std::move(log); }

void application::resume_streams() {
    if (parts_->streams) parts_->streams->resume_saved();
}

boost::asio::awaitable<void> application::shutdown_streams() {
    if (parts_->streams) co_await parts_->streams->shutdown();
}
application::~application() = default;

connection_deps application::connections() {
    return connection_deps{parts_->context,
                           parts_->secrets,
                           {{connectors::db_kind::postgresql, &parts_->pg},
                            {connectors::db_kind::mariadb, &parts_->mariadb},
                            {connectors::db_kind::sqlite, &parts_->sqlite},
                            {connectors::db_kind::jsonl, &parts_->jsonl}}};
}

namespace {
boost::asio::awaitable<void> drop_stream_slot(connection_deps deps, engines::context::stream_record rec);
}

void application::register_product(mcp_server& server) {
    register_connection_tools(server, connections());
    if (!parts_->streams) return;
    mcp_server* srv = &server;
    parts_->log = [srv](std::string_view level, std::string_view msg) {
        srv->log(parse_log_level(level).value_or(log_level::info), "stream", msg);
    };
    parts_->streams->set_on_change([srv](const std::string& name) {
        srv->notify_resource_updated("datavor://streams");
        srv->notify_resource_updated("datavor://streams/" + name);
        srv->notify_resource_list_changed();
    });
    auto deps = connections();
    register_stream_tools(server, stream_deps{deps, *parts_->streams, [deps](engines::context::stream_record r) {
                                                  return drop_stream_slot(deps, std::move(r));
                                              }});
    register_ledger_tools(server, ledger_deps{ledger(), *parts_->streams, parts_->context});
    register_rule_tools(server, rule_deps{parts_->context, *parts_->streams, ledger(),
                                          [this](const std::string& stream) { return stream_salt(stream); },
                                          [this](const std::string& stream) { return suggest().withholds(stream); }});
    parts_->alert_hook = [srv] { srv->notify_resource_updated("datavor://alerts"); };
    parts_->suggestion_hook = [srv] { srv->notify_resource_updated("datavor://suggestions"); };
    register_suggestion_tools(server, suggestion_deps{suggest(), *parts_->streams, parts_->suggestion_hook});
    register_context_tools(server, parts_->context);
}

namespace {

struct resolved_endpoint {
    connectors::connection_spec spec;
    std::optional<std::string> password;
};

resolved_endpoint resolve(const std::string& ref, connection_deps deps) {
    if (ref.find(':') != std::string::npos) {
        auto parsed = connectors::parse_connection_url(ref);
        if (!parsed) throw std::invalid_argument(ref.substr(0, ref.find(':')) + " URL: " + parsed.error().message());
        return {parsed->spec, parsed->password};
    }
    auto rec = deps.context.find_connection(ref);
    if (!rec) throw std::invalid_argument("no connection named " + ref + " (add it with add_connection, or pass a URL)");
    auto pw = engines::context::resolve_password(*rec, deps.secrets);
    if (!pw) throw std::invalid_argument("connection " + ref + ": " + pw.error().message());
    return {rec->spec, *pw};
}

}  // namespace

namespace {
boost::asio::awaitable<void> drop_stream_slot(connection_deps deps, engines::context::stream_record rec) {
    auto src = resolve(rec.source, deps);
    connectors::pg::pg_source_options o;
    o.spec = src.spec;
    o.password = src.password;
    o.stream = rec.name;
    co_await connectors::pg::pg_source::drop_slot(std::move(o));
}
}  // namespace

std::unique_ptr<engines::stream::stream_runner> application::make_stream(const stream_request& req,
                                                                         engines::stream::stream_log log) {
    auto src = resolve(req.source, connections());
    auto dst = resolve(req.target, connections());
    if (src.spec.kind != connectors::db_kind::postgresql)
        throw std::invalid_argument("the source must be PostgreSQL for now (the MariaDB binlog source comes next)");
    if (dst.spec.kind == connectors::db_kind::postgresql && dst.spec.host == src.spec.host &&
        dst.spec.port == src.spec.port && dst.spec.database == src.spec.database)
        throw std::invalid_argument("the target is the source database itself: choose another database as the target");
    if (dst.spec.kind == connectors::db_kind::mariadb)
        throw std::invalid_argument("a MariaDB target is not available yet: use PostgreSQL, SQLite or JSON lines");
    if (req.tables.empty()) throw std::invalid_argument("name the tables to stream (schema.table, comma-separated)");
    connectors::pg::pg_source_options o;
    o.spec = src.spec;
    o.password = src.password;
    o.stream = req.name;
    o.tables = req.tables;
    o.spool_dir = home_ / "spool";
    engines::stream::stream_settings settings;
    settings.name = req.name;
    settings.lock_dir = home_ / "run";
    // The rules as saved now, with the stream's secret salt for masks
    // (created once, kept in the secrets file, never shown).
    settings.on_alert = [this] {
        if (parts_->alert_hook) parts_->alert_hook();
    };
    settings.suggest = &suggest();
    settings.autopilot = req.autopilot;
    settings.context_changed = [this, last = std::make_shared<std::int64_t>(-1)] {
        const auto v = parts_->context.data_version();
        const bool changed = *last >= 0 && v != *last;
        *last = v;
        return changed;
    };
    settings.on_suggestion = [this] {
        if (parts_->suggestion_hook) parts_->suggestion_hook();
    };
    settings.load_rules = [this, name = req.name]() -> std::shared_ptr<engines::rules::rule_set> {
        auto saved = parts_->context.list_rules(name);
        for (auto& w : suggest().withholds(name)) saved.push_back(std::move(w));  // pending new columns
        if (saved.empty()) return nullptr;
        static std::atomic<std::uint64_t> generation{0};
        return std::make_shared<engines::rules::rule_set>(std::move(saved), stream_salt(name), ++generation);
    };
    settings.snapshot = req.snapshot;
    const std::string database = src.spec.database;
    // Source and sink are built again after a transient failure (reconnect).
    auto make_parts = [o, dst, database]() {
        std::unique_ptr<connectors::change_sink> sink;
        if (dst.spec.kind == connectors::db_kind::jsonl)
            sink = std::make_unique<connectors::jsonl::jsonl_sink>(dst.spec.path, database);
        else if (dst.spec.kind == connectors::db_kind::postgresql)
            sink = std::make_unique<connectors::pg::pg_sink>(dst.spec, dst.password);
        else
            sink = std::make_unique<connectors::sqlite::sqlite_sink>(dst.spec.path);
        return std::make_pair(std::unique_ptr<connectors::change_source>(std::make_unique<connectors::pg::pg_source>(o)),
                              std::move(sink));
    };
    auto first = make_parts();
    // DATAVOR_LEDGER=off runs a stream without its audit trail: for measuring
    // the ledger's cost (scripts/bench), not for production.
    const char* mode = std::getenv("DATAVOR_LEDGER");
    engines::ledger::ledger* audit = mode && std::string_view(mode) == "off" ? nullptr : &ledger();
    return std::make_unique<engines::stream::stream_runner>(settings, std::move(first.first), std::move(first.second),
                                                            std::move(log), make_parts, audit);
}

engines::suggest::suggest_engine& application::suggest() {
    auto& audit = ledger();
    std::lock_guard lock(parts_->ledger_mu);
    if (!parts_->suggest) parts_->suggest = std::make_unique<engines::suggest::suggest_engine>(parts_->context, &audit);
    return *parts_->suggest;
}

engines::ledger::ledger& application::ledger() {
    std::lock_guard lock(parts_->ledger_mu);
    if (!parts_->ledger) {
        // DATAVOR_LEDGER=batches: batch entries without the rows' SHA-256 (bench comparisons).
        engines::ledger::ledger_options o;
        const char* mode = std::getenv("DATAVOR_LEDGER");
        if (mode && std::string_view(mode) == "batches") o.row_checksums = false;
        if (parts_->keep_days > 0 || parts_->max_mb > 0) {
            engines::ledger::retention r;
            r.batch_age = parts_->keep_days > 0 ? std::chrono::hours(24 * parts_->keep_days)
                                                : std::chrono::hours(24 * 365 * 1000);
            r.max_bytes = parts_->max_mb << 20;
            o.auto_retention = r;
        }
        parts_->ledger = std::make_unique<engines::ledger::ledger>(home_ / "ledger.db", o);
    }
    return *parts_->ledger;
}

std::string application::stream_salt(const std::string& stream) {
    const std::string key = "mask-salt:" + stream;
    if (auto salt = parts_->secrets.get(key)) return *salt;
    std::random_device rd;
    std::string s;
    for (int i = 0; i < 32; ++i) s += "0123456789abcdef"[rd() % 16];
    parts_->secrets.put(key, s);
    return s;
}

void application::set_ledger_retention(int keep_days, std::int64_t max_mb) {
    std::lock_guard lock(parts_->ledger_mu);
    if (parts_->ledger) throw std::logic_error("set_ledger_retention after the ledger was opened");
    if (keep_days < 0 || max_mb < 0) throw std::invalid_argument("ledger retention limits must be 0 (off) or positive");
    parts_->keep_days = keep_days;
    parts_->max_mb = max_mb;
}

server_info product_info() {
    server_info i;
    i.name = "datavor";
    i.title = "Datavor change data capture";
    i.version = DATAVOR_VERSION;
    i.instructions =
        "Datavor streams changes from PostgreSQL and MariaDB/MySQL into other databases. Start with "
        "list_connections; add databases with add_connection (passwords are stored locally and never shown); "
        "check a source with test_connection, which returns the exact SQL that fixes each missing prerequisite.";
    return i;
}

}  // namespace datavor::server
