#include "engines/rules/alerts.hpp"
#include "connectors/common/sql_quote.hpp"
#include "engines/notify/webhook.hpp"

#include <rapidjson/document.h>

#include <charconv>
#include <cmath>
#include <unordered_set>

namespace datavor::engines::rules {

using connectors::change_event;
using connectors::change_op;
using connectors::json_quote;
using connectors::value;

namespace {

std::optional<std::size_t> column_of(const connectors::table_schema& t, const std::string& name) {
    for (std::size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i].name == name) return i;
    return std::nullopt;
}

const value* cell(const change_event& c, std::size_t i) {
    const auto& r = c.op == change_op::erase && c.before ? *c.before : c.after;
    if (i >= r.size() || (r[i].st != value::state::text && r[i].st != value::state::binary)) return nullptr;
    return &r[i];
}

std::string fmt(double d) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d);
    return std::string(buf, r.ptr);
}

}  // namespace

std::string parse_window(const std::string& options_json, window_spec& w) {
    w = {};
    if (options_json.empty() || options_json == "{}") return {};
    rapidjson::Document d;
    d.Parse(options_json.c_str());
    if (d.HasParseError() || !d.IsObject()) return "options must be a JSON object";
    auto int_of = [&](const char* k, std::int64_t& out, std::int64_t lo, std::int64_t hi) -> std::string {
        if (!d.HasMember(k)) return {};
        if (!d[k].IsInt64() || d[k].GetInt64() < lo || d[k].GetInt64() > hi)
            return std::string(k) + " must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
        out = d[k].GetInt64();
        return {};
    };
    auto str_of = [&](const char* k, std::string& out) -> std::string {
        if (!d.HasMember(k)) return {};
        if (!d[k].IsString() || d[k].GetStringLength() == 0) return std::string(k) + " must be a column name";
        out = d[k].GetString();
        return {};
    };
    std::int64_t minutes = 0;
    if (d.HasMember("webhook")) {
        if (!d["webhook"].IsString()) return "webhook must be an http:// URL";
        std::string why;
        if (!notify::parse_http_url(d["webhook"].GetString(), why)) return why;
        w.webhook = d["webhook"].GetString();
    }
    if (d.HasMember("to_target")) {
        if (!d["to_target"].IsBool()) return "to_target must be true or false";
        w.to_target = d["to_target"].GetBool();
    }
    for (auto e : {int_of("window_minutes", minutes, 1, 24 * 60), str_of("by", w.by), int_of("min_count", w.min_count, 1, 1000000),
                   str_of("distinct", w.distinct), int_of("min_distinct", w.min_distinct, 1, 1000000), str_of("sum", w.sum)})
        if (!e.empty()) return e;
    w.minutes = static_cast<int>(minutes);
    if (d.HasMember("min_sum")) {
        if (!d["min_sum"].IsNumber()) return "min_sum must be a number";
        w.min_sum = d["min_sum"].GetDouble();
    }
    if (w.minutes == 0 && (!w.by.empty() || !w.distinct.empty() || !w.sum.empty()))
        return "a window needs window_minutes (1 to 1440)";
    if (w.minutes > 0 && w.by.empty()) return "a window needs `by`: the column that groups it (e.g. card_id)";
    if (!w.distinct.empty() && w.min_distinct == 0) return "distinct needs min_distinct";
    if (!w.sum.empty() && !d.HasMember("min_sum")) return "sum needs min_sum";
    for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
        const std::string k = it->name.GetString();
        if (k != "window_minutes" && k != "by" && k != "min_count" && k != "distinct" && k != "min_distinct" && k != "sum" &&
            k != "min_sum" && k != "webhook" && k != "to_target")
            return "unknown option " + k +
                   " (window_minutes, by, min_count, distinct, min_distinct, sum, min_sum, webhook, to_target)";
    }
    return {};
}

std::variant<alert_rule, std::string> alert_rule::bind(std::int64_t rule_id, const std::string& name,
                                                       const expression& condition, const window_spec& w,
                                                       const connectors::table_schema& table) {
    alert_rule a;
    a.rule_id_ = rule_id;
    a.name_ = name;
    a.condition_text_ = condition.source();
    auto b = program::bind(condition, table);
    if (auto* e = std::get_if<expr_error>(&b)) return e->message;
    a.condition_ = std::make_shared<program>(std::move(std::get<program>(b)));
    a.window_ = w;
    a.key_columns_ = table.key_columns();
    a.table_ = table.qualified();
    for (const auto& c : table.columns) a.column_names_.push_back(c.name);
    if (w.minutes > 0) {
        a.by_ = column_of(table, w.by);
        if (!a.by_) return "no column " + w.by + " (by)";
        if (!w.distinct.empty() && !(a.distinct_ = column_of(table, w.distinct))) return "no column " + w.distinct + " (distinct)";
        if (!w.sum.empty() && !(a.sum_ = column_of(table, w.sum))) return "no column " + w.sum + " (sum)";
    }
    return a;
}

alert_rule::window_state& alert_rule::touch(const std::string& key) {
    auto it = state_.find(key);
    if (it != state_.end()) {
        ages_.splice(ages_.end(), ages_, it->second.age);
        return it->second;
    }
    if (state_.size() >= max_keys) {  // forget the key touched longest ago
        state_.erase(ages_.front());
        ages_.pop_front();
    }
    ages_.push_back(key);
    auto& s = state_[key];
    s.age = std::prev(ages_.end());
    return s;
}

std::optional<alert_event> alert_rule::feed(const change_event& c, std::int64_t commit_time_us, evaluator& ev) {
    if (c.op == change_op::read || c.op == change_op::truncate) return std::nullopt;
    // Built only when needed: most changes neither match nor clear a firing key.
    auto make_key = [&] {
        std::string row_key = "{";
        for (std::size_t k = 0; k < key_columns_.size(); ++k) {
            const auto* v = cell(c, key_columns_[k]);
            row_key += (k ? "," : "") + json_quote(column_names_[key_columns_[k]]) + ":" + (v ? json_quote(v->data) : "null");
        }
        return row_key + "}";
    };
    if (window_.minutes == 0) {
        // State only for the rows that match now (they fired once): a row that
        // stops matching, or is deleted, is forgotten and fires again when it
        // crosses back. A never-firing alert keeps nothing.
        const bool match = c.op != change_op::erase && condition_->evaluate(c, ev).truthy();
        if (!match) {
            if (state_.empty()) return std::nullopt;
            if (auto it = state_.find(make_key()); it != state_.end()) {
                ages_.erase(it->second.age);
                state_.erase(it);
            }
            return std::nullopt;
        }
        auto row_key = make_key();
        if (state_.count(row_key)) {
            touch(row_key);  // still matching: already fired
            return std::nullopt;
        }
        touch(row_key).firing = true;
        alert_event e{rule_id_, table_, row_key, "alert " + name_ + ": " + table_ + " " + row_key + " now matches " + condition_text_,
                      "{\"row\":" + row_key + "}", commit_time_us, window_.webhook, window_.to_target};
        return e;
    }
    if (c.op == change_op::erase || !condition_->evaluate(c, ev).truthy()) return std::nullopt;
    const auto* by = cell(c, *by_);
    if (!by) return std::nullopt;
    auto& st = touch(by->data);
    std::string distinct_value;
    double summed = 0;
    if (distinct_)
        if (const auto* v = cell(c, *distinct_)) distinct_value = v->data;
    if (sum_)
        if (const auto* v = cell(c, *sum_)) summed = std::strtod(v->data.c_str(), nullptr);
    st.events.emplace_back(commit_time_us, distinct_value, summed);
    const std::int64_t horizon = commit_time_us - static_cast<std::int64_t>(window_.minutes) * 60 * 1000000;
    while (!st.events.empty() && (std::get<0>(st.events.front()) <= horizon || st.events.size() > max_events))
        st.events.pop_front();
    const auto count = static_cast<std::int64_t>(st.events.size());
    std::unordered_set<std::string> distinct;
    double sum = 0;
    for (const auto& [t, d, s] : st.events) {
        if (distinct_ && !d.empty()) distinct.insert(d);
        sum += s;
    }
    const bool met = count >= window_.min_count && (!distinct_ || static_cast<std::int64_t>(distinct.size()) >= window_.min_distinct) &&
                     (!sum_ || sum >= window_.min_sum);
    if (!met) {
        st.firing = false;
        return std::nullopt;
    }
    if (st.firing) return std::nullopt;
    st.firing = true;
    std::string what = std::to_string(count) + " changes in " + std::to_string(window_.minutes) + " minutes";
    std::string details = "{\"by\":" + json_quote(window_.by) + ",\"value\":" + json_quote(by->data) +
                          ",\"count\":" + std::to_string(count) + ",\"window_minutes\":" + std::to_string(window_.minutes);
    if (distinct_) {
        what += ", " + std::to_string(distinct.size()) + " distinct " + window_.distinct;
        details += ",\"distinct\":" + std::to_string(distinct.size());
    }
    if (sum_) {
        what += ", " + window_.sum + " summing " + fmt(sum);
        details += ",\"sum\":" + fmt(sum);
    }
    alert_event e{rule_id_, table_, "{" + json_quote(window_.by) + ":" + json_quote(by->data) + "}",
                  "alert " + name_ + ": " + table_ + " " + window_.by + " " + by->data + ": " + what, details + ",\"row\":" + make_key() + "}",
                  commit_time_us, window_.webhook, window_.to_target};
    return e;
}

}  // namespace datavor::engines::rules
