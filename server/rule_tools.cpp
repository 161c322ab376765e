#include "server/rule_tools.hpp"

#include "mcp-schema/embedded.hpp"
#include "server/json.hpp"
#include "server/mcp_session.hpp"
#include "server/ledger_tools.hpp"

namespace datavor::server {

namespace {

namespace rl = engines::rules;

json_value rule_json(const rl::rule& r, json_alloc& a) {
    json_value o(rapidjson::kObjectType);
    o.AddMember("id", r.id, a);
    o.AddMember("stream", str(r.stream, a), a);
    o.AddMember("table", str(r.table, a), a);
    o.AddMember("kind", str(r.kind, a), a);
    if (!r.column.empty()) o.AddMember("column", str(r.column, a), a);
    if (!r.condition.empty()) o.AddMember("condition", str(r.condition, a), a);
    if (!r.method.empty()) o.AddMember("method", str(r.method, a), a);
    if (!r.to.empty()) o.AddMember("to", str(r.to, a), a);
    if (!r.expression.empty()) o.AddMember("expression", str(r.expression, a), a);
    if (!r.on_fail.empty()) o.AddMember("on_fail", str(r.on_fail, a), a);
    if (!r.options.empty()) {
        json_doc w;
        w.Parse(r.options.c_str());
        if (!w.HasParseError() && w.IsObject()) o.AddMember("window", json_value(w, a), a);
    }
    o.AddMember("provenance", str(r.provenance, a), a);
    if (!r.note.empty()) o.AddMember("note", str(r.note, a), a);
    o.AddMember("created_at", str(utc_iso_us(r.created_at * 1000000), a), a);
    return o;
}

std::string describe(const rl::rule& r) {
    std::string d = r.kind + " on " + r.table;
    if (r.kind == "filter") d += " where " + r.condition;
    if (r.kind == "mask") d += ": " + r.column + " by " + r.method;
    if (r.kind == "drop") d += ": " + r.column;
    if (r.kind == "cast") d += ": " + r.column + " to " + r.to + (r.on_fail == "set_aside" ? " (set aside what fails)" : "");
    if (r.kind == "rename") d += ": " + (r.column.empty() ? std::string("the table") : r.column) + " to " + r.to;
    if (r.kind == "derive") d += ": " + r.column + " = " + r.expression;
    if (r.kind == "alert") d += " when " + r.condition + (r.options.empty() ? "" : " over " + r.options);
    return d;
}

void record(rule_deps& d, const rl::rule& r, const char* op) {
    engines::ledger::entry e;
    e.stream = r.stream;
    e.kind = engines::ledger::kind_lifecycle;
    e.op = op;
    e.message = "rule " + std::to_string(r.id) + " " + (std::string_view(op) == "rule_added" ? "added" : "removed") +
                ": " + describe(r);
    json_doc body(rapidjson::kObjectType);
    body.AddMember("rule", rule_json(r, body.GetAllocator()), body.GetAllocator());
    e.body = to_json(body);
    d.ledger.append(std::move(e));
}

std::string opt(const json_value& args, const char* key) { return std::string(string_member(args, key).value_or("")); }

// A rule from add_rule's arguments (or test_rule's `rule` object).
rl::rule rule_of(const json_value& args, std::string stream, std::string table) {
    rl::rule r;
    r.stream = std::move(stream);
    r.table = std::move(table);
    r.kind = opt(args, "kind");
    r.column = opt(args, "column");
    r.condition = opt(args, "condition");
    r.method = opt(args, "method");
    if (r.kind == "mask" && r.method.empty()) r.method = "sha256";
    if (r.kind != "mask") r.method.clear();
    r.note = opt(args, "note");
    r.to = opt(args, "to");
    r.expression = opt(args, "expression");
    r.on_fail = r.kind == "cast" ? opt(args, "on_fail") : "";
    if (r.kind == "alert") {
        // The tool's window and webhook → the stored options (window_minutes, by, …, webhook).
        json_doc o(rapidjson::kObjectType);
        auto& al = o.GetAllocator();
        if (const auto* w = member(args, "window"); w && w->IsObject())
            for (auto it = w->MemberBegin(); it != w->MemberEnd(); ++it) {
                const std::string k = it->name.GetString();
                json_value v(it->value, al);
                o.AddMember(str(k == "minutes" ? "window_minutes" : k, al), v, al);
            }
        if (auto hook = string_member(args, "webhook")) o.AddMember("webhook", str(std::string(*hook), al), al);
        if (const auto* t = member(args, "to_target"); t && t->IsBool() && t->GetBool()) o.AddMember("to_target", true, al);
        if (o.MemberCount() > 0) r.options = to_json(o);
    }
    if (r.kind == "cast" && r.on_fail.empty()) r.on_fail = "null";
    return r;
}

boost::asio::awaitable<json_doc> add_tool(rule_deps d, json_doc args, std::shared_ptr<call_context>) {
    rl::rule r = rule_of(args, opt(args, "stream"), opt(args, "table"));
    const std::string why = rl::validate(r);
    if (!why.empty()) {
        const std::string text = "Cannot add the rule: " + why + ".";
        co_return text_result(text, true);
    }
    // Rules may come before their stream (so that a mask covers the first
    // snapshot): they apply when a stream of that name starts.
    auto rec = d.context.find_stream(r.stream);
    bool matches = !rec;
    std::vector<std::string> tables;
    if (rec) tables = rec->tables;
    for (const auto& t : tables) {
        connectors::table_schema s;
        const auto dot = t.find('.');
        s.schema = dot == std::string::npos ? "public" : t.substr(0, dot);
        s.name = dot == std::string::npos ? t : t.substr(dot + 1);
        matches |= rl::table_matches(r.table, s);
    }
    if (!matches) {
        std::string names;
        for (const auto& t : tables) names += (names.empty() ? "" : ", ") + t;
        co_return text_result("Table " + r.table + " matches none of stream " + r.stream + "'s tables (" + names + ").", true);
    }
    r = d.context.add_rule(std::move(r));
    record(d, r, "rule_added");
    d.manager.reload_rules(r.stream);
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("rule", rule_json(r, a), a);
    out.AddMember("applied_to_running_stream", d.manager.running(r.stream), a);
    co_return structured_result(std::move(out));
}

boost::asio::awaitable<json_doc> list_tool(rule_deps d, json_doc args, std::shared_ptr<call_context>) {
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    json_value arr(rapidjson::kArrayType);
    for (const auto& r : d.context.list_rules(opt(args, "stream"))) arr.PushBack(rule_json(r, a), a);
    out.AddMember("rules", arr, a);
    co_return structured_result(std::move(out));
}

json_doc alerts_json(rule_deps& d, const std::string& stream, std::size_t limit) {
    engines::ledger::query q;
    q.stream = stream;
    q.kind = engines::ledger::kind_alert;
    q.newest_first = true;
    q.limit = limit;
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    json_value arr(rapidjson::kArrayType);
    for (const auto& e : d.ledger.find(q)) {
        json_value o(rapidjson::kObjectType);
        o.AddMember("seq", e.seq, a);
        o.AddMember("at", str(utc_iso_us(e.at_us), a), a);
        o.AddMember("stream", str(e.stream, a), a);
        o.AddMember("table", str(e.table, a), a);
        o.AddMember("rule_id", static_cast<std::int64_t>(std::strtoll(e.op.c_str() + (e.op.size() > 5 ? 5 : 0), nullptr, 10)), a);
        o.AddMember("key", str(e.row_key, a), a);
        o.AddMember("message", str(e.message, a), a);
        json_doc details;
        details.Parse(e.body.c_str());
        if (!details.HasParseError() && details.IsObject()) o.AddMember("details", json_value(details, a), a);
        arr.PushBack(o, a);
    }
    out.AddMember("alerts", arr, a);
    return out;
}

boost::asio::awaitable<json_doc> alerts_tool(rule_deps d, json_doc args, std::shared_ptr<call_context>) {
    const auto* lim = member(args, "limit");
    co_return structured_result(
        alerts_json(d, opt(args, "stream"), lim && lim->IsInt64() ? static_cast<std::size_t>(lim->GetInt64()) : 50));
}

// A type name as the schema history spells it → an OID the rules engine
// computes with (numbers and booleans; everything else as text).
std::uint32_t oid_of(const std::string& type) {
    if (type == "integer") return 23;
    if (type == "bigint") return 20;
    if (type == "smallint") return 21;
    if (type == "real") return 700;
    if (type == "double precision") return 701;
    if (type.starts_with("numeric")) return 1700;
    if (type == "boolean") return 16;
    return 25;
}

json_value row_json(const connectors::table_schema& t, const connectors::row& r, json_alloc& a) {
    json_value o(rapidjson::kObjectType);
    for (std::size_t i = 0; i < t.columns.size() && i < r.size(); ++i) {
        if (r[i].is_unchanged()) continue;
        json_value v = r[i].is_null() ? json_value() : str(r[i].data, a);
        o.AddMember(str(t.columns[i].name, a), v, a);
    }
    return o;
}

// A row from {column: value}: strings as they are, numbers and booleans in
// PostgreSQL's text form, null as NULL; columns not given are NULL.
connectors::row row_of(const connectors::table_schema& t, const json_value& values) {
    connectors::row r(t.columns.size());
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
        const auto* v = values.IsObject() ? member(values, t.columns[i].name.c_str()) : nullptr;
        if (!v || v->IsNull()) continue;
        if (v->IsString()) r[i] = connectors::value::text_value(v->GetString());
        else if (v->IsBool()) r[i] = connectors::value::text_value(v->GetBool() ? "t" : "f");
        else {
            json_doc copy;
            copy.CopyFrom(*v, copy.GetAllocator());
            r[i] = connectors::value::text_value(to_json(copy));
        }
    }
    return r;
}

const char* op_name(connectors::change_op op) {
    switch (op) {
    case connectors::change_op::insert: return "insert";
    case connectors::change_op::update: return "update";
    case connectors::change_op::erase: return "delete";
    case connectors::change_op::truncate: return "truncate";
    case connectors::change_op::read: return "snapshot";
    }
    return "?";
}

// A dry run's result: the target's shape for `source`, then each change as
// the rules leave it (kept, filtered, set aside), a second apart (windows).
json_doc dry_run(rl::rule_set& set, const std::shared_ptr<const connectors::table_schema>& source,
                 std::vector<connectors::change_event> changes, const char* kind) {
    const auto& compiled = set.for_table(source);
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    json_value warnings(rapidjson::kArrayType);
    for (const auto& w : compiled.warnings()) warnings.PushBack(str(w, a), a);
    out.AddMember("warnings", warnings, a);
    out.AddMember("target_table", str(compiled.target()->qualified(), a), a);
    json_value target_cols(rapidjson::kArrayType);
    for (const auto& c : compiled.target()->columns) {
        json_value o(rapidjson::kObjectType);
        o.AddMember("name", str(c.name, a), a);
        o.AddMember("type", str(c.type_name.empty() ? std::string("text") : c.type_name, a), a);
        target_cols.PushBack(o, a);
    }
    out.AddMember("target_columns", target_cols, a);
    json_value results(rapidjson::kArrayType);
    std::int64_t time_us = 1;
    for (auto& c : changes) {
        json_value res(rapidjson::kObjectType);
        res.AddMember("op", str(op_name(c.op), a), a);
        std::string why;
        const auto outcome = set.apply(c, why, time_us += 1000000);
        const std::string outcome_name = outcome == rl::table_rules::outcome::keep       ? "kept"
                                         : outcome == rl::table_rules::outcome::filtered ? "filtered"
                                                                                         : "set_aside";
        res.AddMember("outcome", str(outcome_name, a), a);
        if (!why.empty()) res.AddMember("reason", str(why, a), a);
        if (outcome != rl::table_rules::outcome::filtered) {
            if (!c.after.empty()) res.AddMember("after", row_json(*c.table, c.after, a), a);
            if (c.before) res.AddMember("before", row_json(*c.table, *c.before, a), a);
        }
        json_value fired(rapidjson::kArrayType);
        for (const auto& e : set.take_alerts()) fired.PushBack(str(e.message, a), a);
        if (!fired.Empty()) res.AddMember("alerts", fired, a);
        results.PushBack(res, a);
    }
    out.AddMember("results", results, a);
    out.AddMember("source", str(kind, a), a);
    return out;
}

// test_rule without rows: the rule, after the stream's saved rules, on the
// stream's latest changes of the table. What the target would get, so the
// saved masks apply: no raw masked value is shown.
json_doc test_on_recent(rule_deps& d, const std::string& stream, const std::string& table, rl::rule r) {
    auto recent = d.manager.recent_changes(stream, table);
    if (!recent)
        return text_result("Stream " + stream + " is not running in this server, so it has no recent changes to try the rule "
                           "on: pass sample rows (rows), or start the stream.",
                           true);
    if (recent->empty())
        return text_result("Stream " + stream + " has streamed no change to " + table +
                               " since it started: pass sample rows (rows), or try again once it has.",
                           true);
    auto saved = d.context.list_rules(stream);
    if (d.withholds_of)
        for (auto& w : d.withholds_of(stream)) saved.push_back(std::move(w));
    std::int64_t id = 1;
    for (const auto& s : saved) id = std::max(id, s.id + 1);
    r.id = id;
    saved.push_back(r);
    rl::rule_set set(std::move(saved), d.salt_of ? d.salt_of(stream) : std::string(), 0);
    const auto source = recent->back().table;
    return structured_result(dry_run(set, source, std::move(*recent), "recent"));
}

boost::asio::awaitable<json_doc> test_tool(rule_deps d, json_doc args, std::shared_ptr<call_context>) {
    const std::string stream = opt(args, "stream");
    std::string table = opt(args, "table");
    if (table.find('.') == std::string::npos) table = "public." + table;
    rl::rule r = rule_of(*member(args, "rule"), stream, table);
    r.id = 1;
    if (const std::string why = rl::validate(r); !why.empty()) {
        const std::string text = "The rule is not valid: " + why + ".";
        co_return text_result(text, true);
    }
    if (!member(args, "rows")) co_return test_on_recent(d, stream, table, std::move(r));
    const auto history = d.context.schema_history(stream, table);
    if (history.empty()) {
        const std::string text = "No definition of " + table + " known for stream " + stream +
                                 " yet (it is recorded when the stream opens): start the stream, then test the rule.";
        co_return text_result(text, true);
    }
    auto t = std::make_shared<connectors::table_schema>();
    const auto dot = table.find('.');
    t->schema = table.substr(0, dot);
    t->name = table.substr(dot + 1);
    t->relation_id = 1;
    t->version = 1;
    t->replica_identity = history.back().replica_identity.empty() ? 'd' : history.back().replica_identity[0];
    json_doc cols;
    cols.Parse(history.back().columns_json.c_str());
    if (cols.IsArray())
        for (const auto& c : cols.GetArray()) {
            connectors::column_def def;
            def.name = c["name"].GetString();
            def.type_name = c["type"].GetString();
            def.type_oid = oid_of(def.type_name);
            def.nullable = c["nullable"].GetBool();
            def.key = c["key"].GetBool();
            t->columns.push_back(std::move(def));
        }
    rl::rule_set set({r}, d.salt_of ? d.salt_of(stream) : std::string(), 0);
    std::vector<connectors::change_event> changes;
    for (const auto& sample : member(args, "rows")->GetArray()) {
        connectors::change_event c;
        c.table = t;
        const std::string op = sample.IsObject() ? opt(sample, "op") : "";
        c.op = op == "update" ? connectors::change_op::update : op == "delete" ? connectors::change_op::erase : connectors::change_op::insert;
        const json_value* values = sample.IsObject() ? member(sample, "values") : nullptr;
        const json_value* old = sample.IsObject() ? member(sample, "old") : nullptr;
        const json_value empty(rapidjson::kObjectType);
        if (c.op != connectors::change_op::erase) c.after = row_of(*t, values ? *values : empty);
        if (old) c.before = row_of(*t, *old);
        else if (c.op == connectors::change_op::erase && values) c.before = row_of(*t, *values);
        changes.push_back(std::move(c));
    }
    co_return structured_result(dry_run(set, t, std::move(changes), "sample"));
}

boost::asio::awaitable<json_doc> remove_tool(rule_deps d, json_doc args, std::shared_ptr<call_context>) {
    const auto* id = member(args, "id");
    auto removed = d.context.remove_rule(id->GetInt64());
    if (!removed) co_return text_result("No rule with id " + std::to_string(id->GetInt64()) + " (see list_rules).", true);
    record(d, *removed, "rule_removed");
    d.manager.reload_rules(removed->stream);
    json_doc out(rapidjson::kObjectType);
    auto& a = out.GetAllocator();
    out.AddMember("removed", rule_json(*removed, a), a);
    co_return structured_result(std::move(out));
}

}  // namespace

void register_rule_tools(mcp_server& server, rule_deps deps) {
    auto add = [&](const char* file, auto fn) {
        server.add_tool(mcp_schema::tool_file(file), [deps, fn](json_doc args, std::shared_ptr<call_context> c) {
            return fn(deps, std::move(args), std::move(c));
        });
    };
    add("add_rule.json", &add_tool);
    add("list_rules.json", &list_tool);
    add("remove_rule.json", &remove_tool);
    add("list_alerts.json", &alerts_tool);
    add("test_rule.json", &test_tool);

    resource_provider res;
    res.list = [](json_value& out, json_alloc& a) {
        push_json_resource(out, a, "datavor://alerts", "alerts", "Alerts", "The latest 50 alerts raised by alert rules");
    };
    res.templates = [](json_value&, json_alloc&) {};
    res.read = [deps](const std::string& uri, json_value& out, json_alloc& a) mutable {
        if (uri != "datavor://alerts") return false;
        push_json_contents(out, a, uri, to_json(alerts_json(deps, "", 50)));
        return true;
    };
    server.add_resources(std::move(res));
}

}  // namespace datavor::server
