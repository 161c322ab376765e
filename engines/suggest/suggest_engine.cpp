#include "engines/suggest/suggest_engine.hpp"

#include "connectors/common/sql_quote.hpp"
#include "engines/ledger/ledger.hpp"
#include "engines/rules/cast.hpp"
#include "engines/suggest/drift.hpp"

namespace datavor::engines::suggest {

using context::pattern_record;
using context::suggestion_record;
using connectors::json_quote;

namespace {

std::string schema_of(const std::string& table) {
    const auto dot = table.find('.');
    return dot == std::string::npos ? "public" : table.substr(0, dot);
}

connectors::table_schema table_named(const std::string& qualified) {
    connectors::table_schema t;
    const auto dot = qualified.find('.');
    t.schema = schema_of(qualified);
    t.name = dot == std::string::npos ? qualified : qualified.substr(dot + 1);
    return t;
}

// The suggestion for one drift: what changed, where, and what accepting does.
suggestion_record suggestion_of(const std::string& stream, const std::string& table, const drift& d,
                                const std::string& position, std::int64_t version) {
    suggestion_record s;
    s.stream = stream;
    s.table = table;
    s.kind = name_of(d.kind);
    s.column = d.column;
    s.old_type = d.old_type;
    s.new_type = d.new_type;
    s.position = position;
    s.schema_version = version;
    const std::string col = table + "." + d.column;
    const std::string at = " at " + position + " (version " + std::to_string(version) + " of " + table + ")";
    switch (d.kind) {
    case drift_kind::new_column:
        s.action = "add_column";
        s.action_type = d.new_type;
        s.message = "New column " + col + " (" + d.new_type + ")" + at +
                    ". Rows keep streaming without it and its values are kept aside by row key until you decide. "
                    "Accept: add it to the target as " + d.new_type +
                    " (or another type, saved as a cast rule) and backfill the kept values. Reject: leave it out "
                    "(saved as a drop rule).";
        break;
    case drift_kind::dropped_column:
        s.action = "keep_target_column";
        s.message = "Column " + col + " (" + d.old_type + ") was dropped at the source" + at +
                    ". The target keeps the column and its past values; new rows get NULL there. Accept to keep it "
                    "that way (Datavor never drops a target column by itself).";
        break;
    case drift_kind::type_change:
        s.action = "alter_target_type";
        s.action_type = d.new_type;
        s.message = "Column " + col + " changed type from " + d.old_type + " to " + d.new_type + at +
                    ". Rows keep streaming; a value the target column's old type cannot hold is set aside in the "
                    "ledger, not lost. Accept: alter the target column to " + d.new_type +
                    " and retry the rows set aside. Reject: keep the target's type.";
        break;
    case drift_kind::nullability_change:
        s.action = "acknowledge";
        s.message = "Column " + col + " is now " + (d.nullable ? "nullable" : "NOT NULL") + at +
                    ". Target columns are nullable, so nothing needs to change; accept to acknowledge.";
        break;
    case drift_kind::key_change:
        s.action = "acknowledge";
        s.message = "The key of " + table + " changed from (" + d.old_type + ") to (" + d.column + ")" + at +
                    ". Changes are matched by the new key's values; the target table keeps its primary key. Accept "
                    "to acknowledge; re-create the target table if it must follow the new key.";
        break;
    }
    return s;
}

// The rule a decision on a new column saves: a cast to `to`, or a drop.
rules::rule rule_for(const suggestion_record& s, const char* kind, const std::string& to, const std::string& provenance,
                     const std::string& why) {
    rules::rule r;
    r.stream = s.stream;
    r.table = s.table;
    r.kind = kind;
    r.column = s.column;
    r.to = to;
    if (r.kind == "cast") r.on_fail = "null";
    r.provenance = provenance;
    r.note = "from " + why;
    return r;
}

std::string suggestion_json(const suggestion_record& s) {
    return "{\"suggestion\":" + std::to_string(s.id) + ",\"kind\":" + json_quote(s.kind) + ",\"table\":" + json_quote(s.table) +
           ",\"column\":" + json_quote(s.column) + ",\"old_type\":" + json_quote(s.old_type) +
           ",\"new_type\":" + json_quote(s.new_type) + ",\"action\":" + json_quote(s.action) +
           ",\"action_type\":" + json_quote(s.action_type) + ",\"status\":" + json_quote(s.status) + "}";
}

}  // namespace

std::string describe(const pattern_record& p) {
    const std::string on = " on " + p.table_pattern + " tables: ";
    const bool yes = p.decision == "accept";
    if (p.kind == "new_column")
        return "new " + p.new_type + " columns" + on + (yes ? "add as " + p.action_type : std::string("leave out"));
    if (p.kind == "type_change")
        return p.old_type + " to " + p.new_type + " type changes" + on +
               (yes ? "alter the target column" : "keep the target type");
    if (p.kind == "dropped_column") return "dropped columns" + on + "keep the target column";
    if (p.kind == "target_rejects")
        return "values too wide for the target (" + p.new_type + ")" + on +
               (yes ? "widen the target's columns and retry" : "leave them set aside");
    return p.kind + on + (yes ? "acknowledge" : "reject");
}

suggest_engine::suggest_engine(context::context_store& ctx, ledger::ledger* ledger) : ctx_(ctx), ledger_(ledger) {}

void suggest_engine::record(const std::string& stream, const std::string& op, const std::string& message,
                            const std::string& body, const std::string& table, const std::string& position) {
    if (!ledger_) return;
    ledger::entry e;
    e.stream = stream;
    e.kind = ledger::kind_lifecycle;
    e.op = op;
    e.table = table;
    e.message = message;
    e.body = body;
    e.position = position;
    ledger_->append(std::move(e));
}

std::optional<pattern_record> suggest_engine::matching_pattern(const suggestion_record& s) const {
    const auto t = table_named(s.table);
    for (const auto& p : ctx_.list_patterns()) {  // newest first: the latest decision wins
        if (p.kind != s.kind || !rules::table_matches(p.table_pattern, t)) continue;
        if ((s.kind == "new_column" || s.kind == "type_change") && p.new_type != s.new_type) continue;
        if (s.kind == "target_rejects" && p.new_type != s.error_code) continue;
        if (s.kind == "type_change" && p.old_type != s.old_type) continue;
        return p;
    }
    return std::nullopt;
}

std::string suggest_engine::autopilot_of(const std::string& stream, const std::string& given) const {
    if (!given.empty()) return given;
    const auto rec = ctx_.find_stream(stream);
    return rec ? rec->autopilot : "suggest";
}

drift_outcome suggest_engine::on_schema(const std::string& stream, const connectors::table_schema& t,
                                        const std::string& position, const std::string& origin,
                                        const std::string& given_autopilot) {
    drift_outcome out;
    out.version = ctx_.record_schema(stream, t, position, origin);
    if (out.version <= 1) return out;
    std::vector<column_info> before;
    for (const auto& v : ctx_.schema_history(stream, t.qualified()))
        if (v.version == out.version - 1) before = columns_of_json(v.columns_json);
    if (before.empty()) return out;
    const std::string autopilot = autopilot_of(stream, given_autopilot);
    for (const auto& d : diff(before, columns_of(t))) {
        auto s = suggestion_of(stream, t.qualified(), d, position, out.version);
        const auto pattern = matching_pattern(s);
        if (pattern)
            s.message += " Similar past decision: pattern " + std::to_string(pattern->id) + " (" + describe(*pattern) +
                         "), learned from suggestion " + std::to_string(pattern->from_suggestion) + ".";
        s = ctx_.add_suggestion(s);
        record(stream, "suggestion", "suggestion " + std::to_string(s.id) + ": " + s.message, suggestion_json(s),
               s.table, position);
        const bool automatic = (autopilot == "learned" && pattern) || autopilot == "all";
        if (automatic) {
            const bool accept = pattern ? pattern->decision == "accept" : true;
            auto decided = decide(s, accept, "", "", pattern ? "pattern" : "autopilot", pattern ? &*pattern : nullptr);
            if (decided.suggestion) {
                s = *decided.suggestion;
                // Decided before any value was withheld: nothing to backfill.
                if (s.kind == "new_column") {
                    ctx_.finish_backfill(s.id, 0);
                    s.backfilled = 0;
                }
            }
            if (decided.rule) out.rules_changed = true;
        } else if (s.kind == "new_column") {
            out.rules_changed = true;  // withheld from now on
        }
        out.created.push_back(std::move(s));
    }
    return out;
}

namespace {
// The column an error names, when it does: PostgreSQL's `column "x"`,
// SQLite's `constraint failed: t.x`.
std::string column_named(const std::string& message) {
    if (auto at = message.find("column \""); at != std::string::npos) {
        at += 8;
        const auto end = message.find('"', at);
        if (end != std::string::npos) return message.substr(at, end - at);
    }
    if (auto at = message.find("constraint failed: "); at != std::string::npos) {
        auto name = message.substr(at + 19);
        name = name.substr(0, name.find_first_of(", "));
        const auto dot = name.rfind('.');
        return dot == std::string::npos ? name : name.substr(dot + 1);
    }
    return {};
}
}  // namespace

std::vector<suggestion_record> suggest_engine::on_rejects(const std::string& stream, const std::vector<reject_group>& groups,
                                                         const std::string& given_autopilot) {
    std::vector<suggestion_record> out;
    const std::string autopilot = autopilot_of(stream, given_autopilot);
    for (auto g : groups) {
        if (g.error_class == "held" || g.count <= 0) continue;
        // libpq's "ERROR:  …\n" → the first line, without the severity.
        if (g.message.starts_with("ERROR:")) g.message.erase(0, g.message.find_first_not_of(' ', 6));
        g.message = g.message.substr(0, g.message.find('\n'));
        context::error_pattern_record e;
        e.stream = stream;
        e.table = g.table;
        e.error_class = g.code.starts_with("rule:") ? "rule" : g.error_class;
        e.code = g.code;
        e.column = column_named(g.message);
        e.message = g.message.substr(0, 500);
        e.count = g.count;
        const auto stored = ctx_.add_error_pattern(e);
        if (g.code != "22001" && g.code != "22003") continue;
        bool known = false;
        for (const auto& s : ctx_.list_suggestions(stream, ""))
            known |= s.kind == "target_rejects" && s.table == g.source_table && s.error_code == g.code &&
                     (s.status == "pending" || s.status == "rejected" || s.status == "auto_rejected");
        if (known || g.source_table.empty()) continue;
        suggestion_record s;
        s.stream = stream;
        s.table = g.source_table;
        s.kind = "target_rejects";
        s.column = stored.column;
        s.error_code = g.code;
        s.action = "widen_target_columns";
        s.position = "";
        s.message = std::to_string(stored.count) + " change(s) to " + g.table + " were rejected by the target: " +
                    g.message.substr(0, 200) + " (SQLSTATE " + g.code +
                    "). A target column is narrower than the source's (a table made before the stream, or by hand); "
                    "the rows are set aside in the ledger, not lost. Accept: widen the target's columns to the "
                    "source's types and retry the rows set aside. Reject: leave them set aside (retry_failed or "
                    "dismiss_failed later).";
        const auto pattern = matching_pattern(s);
        if (pattern)
            s.message += " Similar past decision: pattern " + std::to_string(pattern->id) + " (" + describe(*pattern) + ").";
        s = ctx_.add_suggestion(s);
        record(stream, "suggestion", "suggestion " + std::to_string(s.id) + ": " + s.message, suggestion_json(s), s.table, "");
        if ((autopilot == "learned" && pattern) || autopilot == "all") {
            auto decided = decide(s, pattern ? pattern->decision == "accept" : true, "", "", pattern ? "pattern" : "autopilot",
                                  pattern ? &*pattern : nullptr);
            if (decided.suggestion) s = *decided.suggestion;
        }
        out.push_back(std::move(s));
    }
    return out;
}

std::vector<rules::rule> suggest_engine::withholds(const std::string& stream) const {
    std::vector<rules::rule> out;
    for (const auto& s : ctx_.list_suggestions(stream, "pending")) {
        if (s.kind != "new_column") continue;
        rules::rule r;
        r.id = -s.id;
        r.stream = stream;
        r.table = s.table;
        r.kind = "withhold";
        r.column = s.column;
        r.provenance = "suggestion";
        out.push_back(std::move(r));
    }
    return out;
}

std::vector<suggestion_record> suggest_engine::to_apply(const std::string& stream) const {
    std::vector<suggestion_record> out;
    for (const auto& s : ctx_.list_suggestions(stream, "")) {
        if (s.backfilled >= 0) continue;
        if (s.status != "accepted" && s.status != "auto_accepted") continue;
        if (s.kind == "new_column" || s.kind == "type_change" || s.kind == "target_rejects")
            out.insert(out.begin(), s);  // oldest first
    }
    return out;
}

decision suggest_engine::accept(std::int64_t id, const std::string& type, const std::string& note) {
    auto s = ctx_.find_suggestion(id);
    if (!s) return {.error = "no suggestion " + std::to_string(id) + " (see list_suggestions)"};
    return decide(*s, true, type, note, "user", nullptr);
}

decision suggest_engine::reject(std::int64_t id, const std::string& note) {
    auto s = ctx_.find_suggestion(id);
    if (!s) return {.error = "no suggestion " + std::to_string(id) + " (see list_suggestions)"};
    return decide(*s, false, "", note, "user", nullptr);
}

decision suggest_engine::decide(suggestion_record s, bool accept, const std::string& type, const std::string& note,
                                const std::string& by, const pattern_record* pattern) {
    decision out;
    if (s.status != "pending")
        return {.error = "suggestion " + std::to_string(s.id) + " is already " + s.status + " (decided by " +
                         s.decided_by + ")"};
    const bool user = by == "user";
    s.status = accept ? (user ? "accepted" : "auto_accepted") : (user ? "rejected" : "auto_rejected");
    s.decided_by = by;
    s.note = note;
    s.pattern_id = pattern ? pattern->id : 0;
    const std::string origin = user ? "suggestion" : "pattern";
    const std::string why = user ? "suggestion " + std::to_string(s.id)
                                 : pattern ? "pattern " + std::to_string(pattern->id) + " (from suggestion " +
                                                 std::to_string(pattern->from_suggestion) + ")"
                                           : "autopilot all";
    if (s.kind == "new_column") {
        std::string to = !type.empty() ? type : pattern && accept ? pattern->action_type : s.new_type;
        if (to.empty()) to = s.new_type;
        if (accept && to != s.new_type) {
            if (!rules::cast_type_of(to))
                return {.error = "type " + to + " is not one a cast knows (integer, bigint, smallint, numeric, double, "
                                 "real, text, boolean, date, timestamp, timestamptz); or accept without a type to keep " +
                                 s.new_type};
            out.rule = ctx_.add_rule(rule_for(s, "cast", to, origin, why));
        }
        if (!accept) out.rule = ctx_.add_rule(rule_for(s, "drop", "", origin, why));
        s.action_type = accept ? to : "";
    }
    if (out.rule) s.rule_id = out.rule->id;
    if (!ctx_.decide_suggestion(s)) {
        if (out.rule) ctx_.remove_rule(out.rule->id);
        return {.error = "suggestion " + std::to_string(s.id) + " was decided meanwhile"};
    }
    if (s.kind == "new_column" && !accept) ctx_.drop_kept_values(s.id);
    // Nothing to carry out in the target: done now.
    if (s.kind != "new_column" && !((s.kind == "type_change" || s.kind == "target_rejects") && accept))
        ctx_.finish_backfill(s.id, 0);
    if (pattern) ctx_.pattern_used(pattern->id);
    if (user) {
        pattern_record p;
        p.kind = s.kind;
        p.table_pattern = schema_of(s.table) + ".*";
        p.old_type = s.kind == "type_change" ? s.old_type : "";
        p.new_type = s.kind == "new_column" || s.kind == "type_change" ? s.new_type
                     : s.kind == "target_rejects"                         ? s.error_code
                                                                          : "";
        p.decision = accept ? "accept" : "reject";
        p.action_type = accept && s.kind == "new_column" ? s.action_type : "";
        p.from_suggestion = s.id;
        p.stream = s.stream;
        p.description = describe(p);
        bool known = false;
        for (const auto& q : ctx_.list_patterns())
            known |= q.kind == p.kind && q.table_pattern == p.table_pattern && q.old_type == p.old_type &&
                     q.new_type == p.new_type && q.decision == p.decision && q.action_type == p.action_type;
        if (!known) out.pattern = ctx_.add_pattern(p);
    }
    auto now = ctx_.find_suggestion(s.id);
    out.suggestion = now ? *now : s;
    std::string body = suggestion_json(*out.suggestion);
    body.pop_back();
    body += ",\"decided_by\":" + json_quote(by);
    if (pattern)
        body += ",\"pattern\":{\"id\":" + std::to_string(pattern->id) + ",\"description\":" +
                json_quote(describe(*pattern)) + ",\"from_suggestion\":" + std::to_string(pattern->from_suggestion) + "}";
    if (out.pattern) body += ",\"learned_pattern\":" + std::to_string(out.pattern->id);
    if (out.rule) body += ",\"rule\":" + std::to_string(out.rule->id);
    body += "}";
    const std::string verb = accept ? "accepted" : "rejected";
    const std::string op = user ? "suggestion_" + verb : "suggestion_auto_applied";
    std::string message = "suggestion " + std::to_string(s.id) + " (" + s.kind + " " + s.table +
                          (s.column.empty() ? "" : "." + s.column) + ") " + verb +
                          (user ? " by the user" : " automatically by " + why);
    if (accept && s.kind == "new_column") message += ": add as " + s.action_type;
    record(s.stream, op, message, body, s.table, s.position);
    return out;
}

void suggest_engine::applied(const suggestion_record& s, std::int64_t rows, const std::string& detail) {
    ctx_.finish_backfill(s.id, rows);
    record(s.stream, "suggestion_applied", "suggestion " + std::to_string(s.id) + " carried out in the target: " + detail,
           "{\"suggestion\":" + std::to_string(s.id) + ",\"rows\":" + std::to_string(rows) + "}", s.table, s.position);
}

}  // namespace datavor::engines::suggest
