#include "server/stream_tools.hpp"

#include "mcp-schema/embedded.hpp"
#include "server/mcp_session.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cmath>
#include <ctime>

namespace datavor::server {
namespace {

namespace ctx = engines::context;
using engines::stream::stream_status;

constexpr std::string_view streams_uri = "datavor://streams";

std::string utc_iso(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

json_value progress_json(const engines::stream::snapshot_progress& p, json_alloc& a) {
    json_value o(rapidjson::kObjectType);
    o.AddMember("kind", str(p.kind, a), a);
    o.AddMember("table", str(p.table, a), a);
    o.AddMember("tables_total", p.tables_total, a);
    o.AddMember("tables_done", p.tables_done, a);
    o.AddMember("rows", p.rows, a);
    o.AddMember("bytes", p.bytes, a);
    o.AddMember("rows_estimate", p.rows_estimate, a);
    o.AddMember("elapsed_seconds", std::round(p.elapsed_seconds * 10) / 10, a);
    o.AddMember("eta_seconds", p.eta_seconds < 0 ? -1.0 : std::round(p.eta_seconds * 10) / 10, a);
    return o;
}

// "public.orders: 120000 of ~500000 rows, about 12 s left" for progress notifications.
std::string progress_text(const engines::stream::snapshot_progress& p) {
    std::string t = p.table.empty() ? std::string("starting the copy") : p.table + ": " + std::to_string(p.rows);
    if (!p.table.empty()) {
        t += p.rows_estimate >= 0 ? " of ~" + std::to_string(p.rows_estimate) + " rows" : " rows";
        if (p.tables_total > 1)
            t += " (table " + std::to_string(p.tables_done + 1) + " of " + std::to_string(p.tables_total) + ")";
        if (p.eta_seconds >= 0) t += ", about " + std::to_string(static_cast<long long>(std::ceil(p.eta_seconds))) + " s left";
    }
    return t;
}

std::string qualified_table(std::string_view t) {
    return t.find('.') == std::string_view::npos ? "public." + std::string(t) : std::string(t);
}

json_value status_json(const ctx::stream_record& rec, const engines::stream::stream_manager& m,
                       const ctx::context_store& c, json_alloc& a) {
    const std::optional<stream_status> live = m.status(rec.name);
    json_value s(rapidjson::kObjectType);
    s.AddMember("name", str(rec.name, a), a);
    s.AddMember("autopilot", str(rec.autopilot, a), a);
    s.AddMember("pending_suggestions", static_cast<std::int64_t>(c.list_suggestions(rec.name, "pending").size()), a);
    // A running stream knows its phase; one that is not running has its saved state.
    const std::string state = live && m.running(rec.name) ? live->state : rec.state;
    s.AddMember("state", str(state, a), a);
    s.AddMember("source", str(rec.source, a), a);
    s.AddMember("target", str(rec.target, a), a);
    json_value tables(rapidjson::kArrayType);
    for (const auto& t : rec.tables) tables.PushBack(str(t, a), a);
    s.AddMember("tables", tables, a);
    s.AddMember("snapshot", str(rec.snapshot, a), a);
    std::string error = rec.last_error;
    if (live) {
        s.AddMember("applied_position", str(live->applied.to_string(), a), a);
        s.AddMember("transactions", live->transactions, a);
        s.AddMember("changes", live->changes, a);
        s.AddMember("changes_per_second", live->changes_per_second, a);
        s.AddMember("latency_p50_ms", live->latency_p50_ms, a);
        s.AddMember("latency_p99_ms", live->latency_p99_ms, a);
        if (!live->degraded_reason.empty()) s.AddMember("degraded_reason", str(live->degraded_reason, a), a);
        s.AddMember("reconnects", live->reconnects, a);
        s.AddMember("rows_set_aside", live->rows_set_aside, a);
        s.AddMember("held_keys", live->held_keys, a);
        if (!live->last_error.empty()) error = live->last_error;
        if (live->source.retained_bytes >= 0 || !live->source.wal_status.empty()) {
            json_value slot(rapidjson::kObjectType);
            slot.AddMember("retained_wal_bytes", live->source.retained_bytes, a);
            slot.AddMember("wal_status", str(live->source.wal_status, a), a);
            slot.AddMember("safe_wal_bytes", live->source.safe_bytes, a);
            s.AddMember("slot", slot, a);
        }
        json_value stats(rapidjson::kArrayType);
        for (const auto& [table, c] : live->tables) {
            json_value t(rapidjson::kObjectType);
            t.AddMember("table", str(table, a), a);
            t.AddMember("snapshot_rows", c.snapshot_rows, a);
            t.AddMember("snapshot_bytes", c.snapshot_bytes, a);
            t.AddMember("snapshot_rows_estimate", c.snapshot_rows_estimate, a);
            t.AddMember("inserts", c.inserts, a);
            t.AddMember("updates", c.updates, a);
            t.AddMember("deletes", c.deletes, a);
            t.AddMember("truncates", c.truncates, a);
            stats.PushBack(t, a);
        }
        s.AddMember("table_stats", stats, a);
        if (live->snapshot.active) s.AddMember("snapshot_progress", progress_json(live->snapshot, a), a);
        if (!live->pending_resnapshots.empty()) {
            json_value p(rapidjson::kArrayType);
            for (const auto& t : live->pending_resnapshots) p.PushBack(str(t, a), a);
            s.AddMember("pending_resnapshots", p, a);
        }
        if (!live->resnapshots.empty()) {
            json_value r(rapidjson::kArrayType);
            for (const auto& x : live->resnapshots) {
                json_value o(rapidjson::kObjectType);
                o.AddMember("table", str(x.table, a), a);
                o.AddMember("rows", x.rows, a);
                o.AddMember("seconds", std::round(x.seconds * 1000) / 1000, a);
                o.AddMember("finished_at", str(utc_iso(x.finished_at), a), a);
                r.PushBack(o, a);
            }
            s.AddMember("resnapshots", r, a);
        }
    }
    s.AddMember("last_error", str(error, a), a);
    return s;
}

json_doc one_stream(const stream_deps& d, const ctx::stream_record& rec) {
    json_doc out(rapidjson::kObjectType);
    out.AddMember("stream", status_json(rec, d.manager, d.connections.context, out.GetAllocator()), out.GetAllocator());
    return out;
}

std::string name_of(const json_doc& args) { return std::string(*string_member(args, "name")); }

bool flag(const json_doc& args, const char* key) {
    const json_value* v = member(args, key);
    return v && v->IsBool() && v->GetBool();
}

// Polls a stream twice a second until `done` says so or the stream stops,
// sending a progress notification with its copy's progress each time.
template <typename Done>
boost::asio::awaitable<void> follow_copy(const stream_deps& d, const std::string& name, call_context& call, Done done) {
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    std::uint64_t last_rows = 0;
    for (;;) {
        auto st = d.manager.status(name);
        if (!st || !d.manager.running(name) || done(*st)) co_return;
        if (st->snapshot.active && call.wants_progress()) {
            // Progress must increase: rows copied, plus one per poll before the first rows.
            last_rows = std::max(last_rows + 1, st->snapshot.rows);
            call.progress(static_cast<double>(last_rows),
                          st->snapshot.rows_estimate > 0
                              ? std::optional<double>(static_cast<double>(std::max<std::int64_t>(
                                    st->snapshot.rows_estimate, static_cast<std::int64_t>(last_rows))))
                              : std::nullopt,
                          progress_text(st->snapshot));
        }
        timer.expires_after(std::chrono::milliseconds(500));
        co_await timer.async_wait(boost::asio::use_awaitable);
    }
}

boost::asio::awaitable<json_doc> start_tool(stream_deps d, json_doc args, std::shared_ptr<call_context> call) {
    ctx::stream_record rec;
    rec.name = name_of(args);
    rec.source = std::string(*string_member(args, "source"));
    rec.target = std::string(*string_member(args, "target"));
    for (const auto& t : args["tables"].GetArray()) rec.tables.emplace_back(t.GetString(), t.GetStringLength());
    rec.snapshot = std::string(string_member(args, "snapshot").value_or("initial"));
    if (d.manager.running(rec.name))
        co_return text_result("Stream " + rec.name + " is already running; see stream_status, or stop_stream first.", true);
    auto src = d.connections.context.find_connection(rec.source);
    if (!src) co_return text_result("No connection named " + rec.source + ": add the source with add_connection first.", true);
    if (src->spec.kind != connectors::db_kind::postgresql)
        co_return text_result("The source must be a PostgreSQL connection (the MariaDB source comes next).", true);
    // Prerequisites first: a failing source gets its fixes, not a half-created stream.
    auto counter = std::make_shared<int>(0);
    // A named callback: GCC 12 destroys a lambda temporary inside co_await twice.
    connectors::probe_progress progress = [call, counter](const connectors::prerequisite_check& c) {
        call->progress(++*counter, std::nullopt, "checking: " + c.title);
    };
    auto report = co_await run_connection_test(d.connections, rec.source, rec.tables, 15, std::move(progress));
    const json_value* sc = member(report, "structuredContent");
    if (!sc) co_return report;  // a text error (password unavailable, …)
    if (!(*sc)["ok"].GetBool()) {
        json_doc out(rapidjson::kObjectType);
        auto& a = out.GetAllocator();
        out.AddMember("started", false, a);
        out.AddMember("checks", json_value((*sc)["checks"], a), a);
        co_return structured_result(std::move(out), true);
    }
    try {
        d.manager.start(rec);
    } catch (const std::invalid_argument& e) {
        co_return text_result(std::string("Cannot start stream ") + rec.name + ": " + e.what(), true);
    }
    if (flag(args, "wait_for_snapshot") && rec.snapshot != "never")
        co_await follow_copy(d, rec.name, *call, [](const stream_status& st) {
            return st.state != "starting" && st.state != "snapshot";
        });
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("started", true, a);
    out.AddMember("stream", status_json(*d.connections.context.find_stream(rec.name), d.manager, d.connections.context, a), a);
    out.AddMember("checks", json_value((*sc)["checks"], a), a);
    co_return structured_result(std::move(out));
}

boost::asio::awaitable<json_doc> stop_tool(stream_deps d, json_doc args, std::shared_ptr<call_context>) {
    const std::string name = name_of(args);
    auto rec = d.connections.context.find_stream(name);
    if (!rec) co_return text_result("No stream named " + name + " (see list_streams).", true);
    bool stopped = co_await d.manager.stop(name, "stopped");
    bool dropped = false;
    if (auto* ds = member(args, "drop_slot"); ds && ds->IsBool() && ds->GetBool()) {
        co_await d.drop_slot(*rec);
        dropped = true;
    }
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("name", str(name, a), a);
    out.AddMember("stopped", stopped, a);
    out.AddMember("slot_dropped", dropped, a);
    co_return structured_result(std::move(out));
}

boost::asio::awaitable<json_doc> pause_tool(stream_deps d, json_doc args, std::shared_ptr<call_context>) {
    const std::string name = name_of(args);
    if (!d.connections.context.find_stream(name)) co_return text_result("No stream named " + name + " (see list_streams).", true);
    bool paused = co_await d.manager.stop(name, "paused");
    json_doc out(rapidjson::kObjectType);
    out.AddMember("name", str(name, out.GetAllocator()), out.GetAllocator());
    out.AddMember("paused", paused, out.GetAllocator());
    co_return structured_result(std::move(out));
}

boost::asio::awaitable<json_doc> resume_tool(stream_deps d, json_doc args, std::shared_ptr<call_context>) {
    const std::string name = name_of(args);
    auto rec = d.connections.context.find_stream(name);
    if (!rec) co_return text_result("No stream named " + name + " (see list_streams).", true);
    const json_value* again = member(args, "resnapshot");
    const bool start_over = again && again->IsBool() && again->GetBool();
    if (start_over && d.manager.running(name))
        co_return text_result("Stream " + name + " is running: stop_stream it first, then resume_stream with resnapshot: "
                              "true (or re-copy single tables with resnapshot_table while it runs).",
                              true);
    if (!d.manager.running(name)) {
        try {
            d.manager.start(*rec, start_over);
        } catch (const std::invalid_argument& e) {
            co_return text_result(std::string("Cannot resume stream ") + name + ": " + e.what(), true);
        }
    }
    co_return structured_result(one_stream(d, *d.connections.context.find_stream(name)));
}

boost::asio::awaitable<json_doc> resnapshot_tool(stream_deps d, json_doc args, std::shared_ptr<call_context> call) {
    const std::string name = name_of(args);
    const std::string table = qualified_table(*string_member(args, "table"));
    if (!d.connections.context.find_stream(name)) co_return text_result("No stream named " + name + " (see list_streams).", true);
    const auto asked = std::chrono::system_clock::now();
    if (auto why = d.manager.resnapshot(name, table); !why.empty())
        co_return text_result("Cannot re-snapshot " + table + " of stream " + name + ": " + why + ".", true);
    std::optional<engines::stream::resnapshot_record> finished;
    auto done = [&](const stream_status& st) {
        if (std::find(st.pending_resnapshots.begin(), st.pending_resnapshots.end(), table) != st.pending_resnapshots.end())
            return false;
        for (auto it = st.resnapshots.rbegin(); it != st.resnapshots.rend(); ++it)
            if (it->table == table && it->finished_at >= asked) {
                finished = *it;
                return true;
            }
        return false;
    };
    if (flag(args, "wait")) {
        co_await follow_copy(d, name, *call, done);
        if (!finished) {
            auto st = d.manager.status(name);
            co_return text_result("The re-snapshot of " + table + " did not finish: stream " + name + " is " +
                                      (st ? st->state : std::string("stopped")) +
                                      (st && !st->last_error.empty() ? " (" + st->last_error + ")" : std::string()) +
                                      ". See stream_status.",
                                  true);
        }
    }
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("name", str(name, a), a);
    out.AddMember("table", str(table, a), a);
    out.AddMember("queued", true, a);
    out.AddMember("finished", finished.has_value(), a);
    if (finished) {
        out.AddMember("rows", finished->rows, a);
        out.AddMember("seconds", std::round(finished->seconds * 1000) / 1000, a);
    }
    auto st = d.manager.status(name);
    out.AddMember("state", str(st ? st->state : std::string("stopped"), a), a);
    if (st && st->snapshot.active) out.AddMember("snapshot_progress", progress_json(st->snapshot, a), a);
    co_return structured_result(std::move(out));
}

boost::asio::awaitable<json_doc> list_tool(stream_deps d, json_doc, std::shared_ptr<call_context>) {
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    json_value arr(rapidjson::kArrayType);
    for (const auto& rec : d.connections.context.list_streams()) arr.PushBack(status_json(rec, d.manager, d.connections.context, a), a);
    out.AddMember("streams", arr, a);
    co_return structured_result(std::move(out));
}

boost::asio::awaitable<json_doc> status_tool(stream_deps d, json_doc args, std::shared_ptr<call_context>) {
    const std::string name = name_of(args);
    auto rec = d.connections.context.find_stream(name);
    if (!rec) co_return text_result("No stream named " + name + " (see list_streams).", true);
    co_return structured_result(one_stream(d, *rec));
}

}  // namespace

void register_stream_tools(mcp_server& server, stream_deps deps) {
    auto add = [&](const char* file, boost::asio::awaitable<json_doc> (*fn)(stream_deps, json_doc, std::shared_ptr<call_context>)) {
        server.add_tool(mcp_schema::tool_file(file), [deps, fn](json_doc args, std::shared_ptr<call_context> c) {
            return fn(deps, std::move(args), std::move(c));
        });
    };
    add("start_stream.json", &start_tool);
    add("stop_stream.json", &stop_tool);
    add("pause_stream.json", &pause_tool);
    add("resume_stream.json", &resume_tool);
    add("list_streams.json", &list_tool);
    add("stream_status.json", &status_tool);
    add("resnapshot_table.json", &resnapshot_tool);

    resource_provider res;
    res.list = [deps](json_value& out, json_alloc& a) {
        push_json_resource(out, a, std::string(streams_uri), "streams", "Streams",
                           "Every saved stream with its state, throughput and latency");
        for (const auto& r : deps.connections.context.list_streams())
            push_json_resource(out, a, std::string(streams_uri) + "/" + r.name, "stream " + r.name, "",
                               "Stream " + r.name + " from " + r.source + " to " + r.target);
    };
    res.templates = [](json_value& out, json_alloc& a) {
        push_json_template(out, a, std::string(streams_uri) + "/{name}", "stream", "One stream",
                           "A stream's live status by name");
    };
    res.read = [deps](const std::string& uri, json_value& out, json_alloc& a) {
        json_doc d(rapidjson::kObjectType);
        auto& da = d.GetAllocator();
        if (uri == streams_uri) {
            json_value arr(rapidjson::kArrayType);
            for (const auto& r : deps.connections.context.list_streams())
                arr.PushBack(status_json(r, deps.manager, deps.connections.context, da), da);
            d.AddMember("streams", arr, da);
        } else if (uri.starts_with(std::string(streams_uri) + "/")) {
            auto rec = deps.connections.context.find_stream(uri.substr(streams_uri.size() + 1));
            if (!rec) return false;
            d.AddMember("stream", status_json(*rec, deps.manager, deps.connections.context, da), da);
        } else {
            return false;
        }
        push_json_contents(out, a, uri, to_json(d));
        return true;
    };
    server.add_resources(std::move(res));

    prompt_definition first;
    first.definition.Parse(R"json({"name":"first-stream","title":"Set up a first stream",
      "description":"Walks a user from a database connection to a running change data capture stream: add the source and the target, check the source's prerequisites, fix what fails, start the stream and watch it.",
      "arguments":[{"name":"source_url","description":"The PostgreSQL source URL without password, e.g. postgresql://replicator@db:5432/shop","required":false},
                   {"name":"tables","description":"Comma-separated tables to stream, e.g. public.orders,public.inventory","required":false},
                   {"name":"target","description":"Where the changes go: sqlite:/path/file.db, jsonl:/path/file.jsonl or a saved connection name","required":false}]})json");
    first.get = [](const json_value& args, std::string&) -> std::optional<json_doc> {
        auto arg = [&](const char* k, const char* fallback) {
            auto v = string_member(args, k);
            return v && !v->empty() ? std::string(*v) : std::string(fallback);
        };
        std::string text =
            "Help me stream changes from PostgreSQL with Datavor, step by step.\n"
            "1. Source: call list_connections. If there is no PostgreSQL source yet, ask me for its URL (" +
            arg("source_url", "postgresql://user@host:5432/db") +
            ") and add it with add_connection; the password goes in `password` or `password_env`, never in chat "
            "history you repeat.\n"
            "2. Target: " + arg("target", "ask me where the changes should go (sqlite:/path/file.db, jsonl:/path/file.jsonl, or a PostgreSQL connection)") +
            "; add it with add_connection if it is not saved yet.\n"
            "3. Check: call test_connection on the source with tables " + arg("tables", "(ask me which tables)") +
            ". For every check that fails, show me its `fix` exactly as returned and wait until I say it is applied; "
            "then test again.\n"
            "4. Start: call start_stream with a short name, the source, the target and the tables (snapshot initial "
            "unless I only want new changes).\n"
            "5. Watch: call stream_status until the state is streaming, then tell me the rows copied, changes per "
            "second and latency, and that pause_stream, resume_stream and stop_stream are available.";
        return prompt_text_result("Set up a first stream", text);
    };
    server.add_prompt(std::move(first));

    auto* store = &deps.connections.context;
    server.add_completion([store](const json_value& ref, std::string_view arg, std::string_view value,
                                  const json_value*) -> std::vector<std::string> {
        std::vector<std::string> out;
        if (string_member(ref, "type") == "ref/resource" && string_member(ref, "uri") == std::string(streams_uri) + "/{name}" &&
            arg == "name")
            for (const auto& r : store->list_streams())
                if (r.name.starts_with(value)) out.push_back(r.name);
        return out;
    });
}

}  // namespace datavor::server
