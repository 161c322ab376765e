#include "server/ledger_tools.hpp"

#include "engines/ledger/ledger_wait.hpp"

#include "mcp-schema/embedded.hpp"
#include "server/mcp_session.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <ctime>

namespace datavor::server {
namespace {

namespace lg = engines::ledger;
constexpr std::string_view ledger_uri = "datavor://ledger/";

// "2026-11-25T10:00:00Z", optional fraction, Z or +00:00: unix microseconds.
std::optional<std::int64_t> parse_iso(std::string_view s) {
    int y, mo, d, h, mi;
    double sec;
    char rest[16] = {0};
    const std::string text(s);
    const int n = std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%15s", &y, &mo, &d, &h, &mi, &sec, rest);
    if (n < 6) return std::nullopt;
    const std::string zone = n == 7 ? rest : "Z";
    if (zone != "Z" && zone != "+00:00" && zone != "z") return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = 0;
    const std::time_t t = timegm(&tm);
    if (t == -1 || mo < 1 || mo > 12 || d < 1 || d > 31 || sec < 0 || sec >= 61) return std::nullopt;
    return static_cast<std::int64_t>(t) * 1000000 + static_cast<std::int64_t>(sec * 1e6);
}

boost::asio::awaitable<bool> caught_up(lg::ledger& l, std::chrono::milliseconds max) {
    return lg::wait_written(l, max);
}

std::int64_t open_count(lg::ledger& l, const std::string& stream) {
    std::int64_t n = 0;
    for (const auto& c : l.failed_summary(stream)) n += c.open;
    return n;
}

boost::asio::awaitable<json_doc> inspect_tool(ledger_deps d, json_doc args, std::shared_ptr<call_context>) {
    auto sv = [&](const char* k) { return std::string(string_member(args, k).value_or("")); };
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    const json_value* summary = member(args, "summary");
    if (summary && summary->IsBool() && summary->GetBool()) {
        if (sv("stream").empty())
            co_return text_result("summary needs a stream: inspect_ledger {\"stream\": \"…\", \"summary\": true}.", true);
        json_value arr(rapidjson::kArrayType);
        for (const auto& c : d.ledger.failed_summary(sv("stream"))) {
            json_value o(rapidjson::kObjectType);
            o.AddMember("error_class", str(c.error_class, a), a);
            o.AddMember("table", str(c.table, a), a);
            o.AddMember("code", str(c.code, a), a);
            o.AddMember("open", c.open, a);
            o.AddMember("total", c.total, a);
            o.AddMember("first_at", str(utc_iso_us(c.first_us), a), a);
            o.AddMember("last_at", str(utc_iso_us(c.last_us), a), a);
            arr.PushBack(o, a);
        }
        out.AddMember("summary", arr, a);
        out.AddMember("entries", json_value(rapidjson::kArrayType), a);
        co_return structured_result(std::move(out));
    }
    lg::query q;
    q.stream = sv("stream");
    q.table = sv("table");
    if (!q.table.empty() && q.table.find('.') == std::string::npos) q.table = "public." + q.table;
    q.kind = sv("kind");
    q.status = sv("status");
    q.error_class = sv("error_class");
    q.row_key = sv("row_key");
    for (auto [key, field] : {std::pair{"from", &q.from_us}, std::pair{"to", &q.to_us}}) {
        if (auto t = string_member(args, key)) {
            auto us = parse_iso(*t);
            if (!us)
                co_return text_result(std::string("`") + key + "` must be a UTC time like 2026-11-25T10:00:00Z, not " +
                                          std::string(*t) + ".",
                                      true);
            *field = *us;
        }
    }
    if (const json_value* nf = member(args, "newest_first"); nf && nf->IsBool()) q.newest_first = nf->GetBool();
    q.limit = 50;
    if (const json_value* l = member(args, "limit"); l && l->IsInt()) q.limit = static_cast<std::size_t>(l->GetInt());
    if (auto c = string_member(args, "cursor")) {
        if (c->size() < 2 || (*c)[0] != 's')
            co_return text_result("`cursor` is not one this server gave out: pass next_cursor from the previous page.", true);
        try {
            q.after_seq = std::stoll(std::string(c->substr(1)));
        } catch (const std::exception&) {
            co_return text_result("`cursor` is not one this server gave out: pass next_cursor from the previous page.", true);
        }
    }
    auto entries = d.ledger.find(q);
    json_value arr(rapidjson::kArrayType);
    for (const auto& e : entries) arr.PushBack(ledger_entry_json(e, a), a);
    out.AddMember("entries", arr, a);
    if (entries.size() == q.limit) out.AddMember("next_cursor", str("s" + std::to_string(entries.back().seq), a), a);
    co_return structured_result(std::move(out));
}

boost::asio::awaitable<json_doc> retry_tool(ledger_deps d, json_doc args, std::shared_ptr<call_context>) {
    const std::string stream(*string_member(args, "stream"));
    if (!d.context.find_stream(stream)) co_return text_result("No stream named " + stream + " (see list_streams).", true);
    std::vector<std::int64_t> seqs;
    if (const json_value* s = member(args, "seqs"); s && s->IsArray())
        for (const auto& v : s->GetArray()) seqs.push_back(v.GetInt64());
    auto handle = d.manager.retry(stream, seqs);
    if (!handle)
        co_return text_result("Stream " + stream + " is not running: resume_stream it, then retry_failed (retries go "
                              "through the stream so that order per key is kept).",
                              true);
    boost::asio::steady_timer t(co_await boost::asio::this_coro::executor);
    std::optional<engines::stream::retry_outcome> o;
    for (;;) {
        o = d.manager.retry_state(stream, handle);
        if (!o || o->done || !d.manager.running(stream)) break;
        t.expires_after(std::chrono::milliseconds(100));
        co_await t.async_wait(boost::asio::use_awaitable);
    }
    if (!o || !o->done)
        co_return text_result("Stream " + stream + " stopped before the retry ran; see stream_status.", true);
    if (!o->error.empty()) co_return text_result("Cannot retry: " + o->error + ".", true);
    co_return structured_result(retry_outcome_json(stream, *o, open_count(d.ledger, stream)));
}

boost::asio::awaitable<json_doc> dismiss_tool(ledger_deps d, json_doc args, std::shared_ptr<call_context>) {
    const std::string stream(*string_member(args, "stream"));
    const json_value* all = member(args, "all");
    const bool every = all && all->IsBool() && all->GetBool();
    const json_value* s = member(args, "seqs");
    if (!every && !(s && s->IsArray()))
        co_return text_result("Name the failed rows to dismiss with `seqs` (see inspect_ledger), or pass all: true.", true);
    if (!co_await caught_up(d.ledger, std::chrono::seconds(10)))
        co_return text_result("The ledger cannot write right now (" + d.ledger.health() + "); try again once it can.", true);
    lg::query q;
    q.stream = stream;
    q.kind = lg::kind_failed;
    q.status = "open";
    q.limit = 10000;
    std::vector<std::int64_t> chosen;
    for (const auto& e : d.ledger.find(q)) {
        bool wanted = every;
        if (!wanted)
            for (const auto& v : s->GetArray())
                if (v.GetInt64() == e.seq) wanted = true;
        if (wanted) chosen.push_back(e.seq);
    }
    if (!chosen.empty()) {
        lg::entry e;
        e.stream = stream;
        e.kind = lg::kind_dismiss;
        e.message = std::string(string_member(args, "reason").value_or("dismissed by a user"));
        std::string body = "{\"resolved\":[";
        for (std::size_t i = 0; i < chosen.size(); ++i) body += (i ? "," : "") + std::to_string(chosen[i]);
        e.body = body + "]}";
        d.ledger.append(std::move(e));
        if (!co_await caught_up(d.ledger, std::chrono::seconds(10)))
            co_return text_result("The dismissal is queued but the ledger cannot write right now (" + d.ledger.health() +
                                      "); it is written as soon as it can.",
                                  true);
        d.manager.reload_holds(stream);
    }
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("stream", str(stream, a), a);
    json_value arr(rapidjson::kArrayType);
    for (auto x : chosen) arr.PushBack(x, a);
    out.AddMember("dismissed", arr, a);
    out.AddMember("open_left", open_count(d.ledger, stream), a);
    co_return structured_result(std::move(out));
}

}  // namespace

json_doc retry_outcome_json(const std::string& stream, const engines::stream::retry_outcome& o, std::int64_t open_left) {
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("stream", str(stream, a), a);
    json_value applied(rapidjson::kArrayType);
    for (auto s : o.applied) applied.PushBack(s, a);
    out.AddMember("applied", applied, a);
    json_value failing(rapidjson::kArrayType);
    for (const auto& [s, m] : o.failed) {
        json_value f(rapidjson::kObjectType);
        f.AddMember("seq", s, a);
        f.AddMember("message", str(m, a), a);
        failing.PushBack(f, a);
    }
    out.AddMember("still_failing", failing, a);
    out.AddMember("open_left", open_left, a);
    return out;
}

std::string utc_iso_us(std::int64_t us) {
    const std::time_t t = static_cast<std::time_t>(us / 1000000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[40];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>((us / 1000) % 1000));
    return buf;
}

json_value ledger_entry_json(const lg::entry& e, json_alloc& a) {
    json_value o(rapidjson::kObjectType);
    o.AddMember("seq", e.seq, a);
    o.AddMember("at", str(utc_iso_us(e.at_us), a), a);
    o.AddMember("stream", str(e.stream, a), a);
    o.AddMember("kind", str(e.kind, a), a);
    auto opt = [&](const char* k, const std::string& v) {
        if (!v.empty()) o.AddMember(rapidjson::StringRef(k), str(v, a), a);
    };
    opt("table", e.table);
    opt("op", e.op);
    opt("row_key", e.row_key);
    opt("position", e.position);
    opt("error_class", e.error_class);
    opt("code", e.code);
    opt("message", e.message);
    opt("status", e.status);
    json_doc body;
    body.Parse(e.body.c_str());
    if (!body.HasParseError() && body.IsObject()) o.AddMember("details", json_value(body, a), a);
    o.AddMember("hash", str(e.hash, a), a);
    return o;
}

void register_ledger_tools(mcp_server& server, ledger_deps deps) {
    auto add = [&](const char* file, boost::asio::awaitable<json_doc> (*fn)(ledger_deps, json_doc, std::shared_ptr<call_context>)) {
        server.add_tool(mcp_schema::tool_file(file), [deps, fn](json_doc args, std::shared_ptr<call_context> c) {
            return fn(deps, std::move(args), std::move(c));
        });
    };
    add("inspect_ledger.json", &inspect_tool);
    add("retry_failed.json", &retry_tool);
    add("dismiss_failed.json", &dismiss_tool);

    resource_provider res;
    res.list = [deps](json_value& out, json_alloc& a) {
        for (const auto& r : deps.context.list_streams())
            push_json_resource(out, a, std::string(ledger_uri) + r.name, "ledger " + r.name, "",
                               "Stream " + r.name + ": failed rows by error class and the latest ledger entries");
    };
    res.templates = [](json_value& out, json_alloc& a) {
        push_json_template(out, a, std::string(ledger_uri) + "{stream}", "ledger", "A stream's ledger",
                           "Failed rows by error class, and the latest 50 ledger entries of a stream");
    };
    res.read = [deps](const std::string& uri, json_value& out, json_alloc& a) {
        if (!uri.starts_with(ledger_uri)) return false;
        const std::string stream = uri.substr(ledger_uri.size());
        if (!deps.context.find_stream(stream)) return false;
        json_doc d(rapidjson::kObjectType);
        auto& da = d.GetAllocator();
        d.AddMember("stream", str(stream, da), da);
        json_value sum(rapidjson::kArrayType);
        for (const auto& c : deps.ledger.failed_summary(stream)) {
            json_value o(rapidjson::kObjectType);
            o.AddMember("error_class", str(c.error_class, da), da);
            o.AddMember("table", str(c.table, da), da);
            o.AddMember("code", str(c.code, da), da);
            o.AddMember("open", c.open, da);
            o.AddMember("total", c.total, da);
            sum.PushBack(o, da);
        }
        d.AddMember("failed", sum, da);
        lg::query q;
        q.stream = stream;
        q.limit = 50;
        q.newest_first = true;
        json_value recent(rapidjson::kArrayType);
        for (const auto& e : deps.ledger.find(q)) recent.PushBack(ledger_entry_json(e, da), da);
        d.AddMember("recent", recent, da);
        push_json_contents(out, a, uri, to_json(d));
        return true;
    };
    server.add_resources(std::move(res));
}

}  // namespace datavor::server
