#include "engines/rules/rule_set.hpp"

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <algorithm>
#include <charconv>

namespace datavor::engines::rules {

using connectors::change_event;
using connectors::change_op;
using connectors::table_schema;
using connectors::value;

std::string salted_sha256(const std::string& salt, std::string_view v) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), salt.data(), static_cast<int>(salt.size()), reinterpret_cast<const unsigned char*>(v.data()),
         v.size(), md, &n);
    static const char* digits = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (unsigned i = 0; i < n; ++i) {
        out.push_back(digits[md[i] >> 4]);
        out.push_back(digits[md[i] & 15]);
    }
    return out;
}

keyed_hmac::keyed_hmac(const std::string& key) : key_(key) {
    auto* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    mac_ = mac;
    if (mac) ctx_ = EVP_MAC_CTX_new(mac);
}

keyed_hmac::~keyed_hmac() {
    EVP_MAC_CTX_free(static_cast<EVP_MAC_CTX*>(ctx_));
    EVP_MAC_free(static_cast<EVP_MAC*>(mac_));
}

std::string keyed_hmac::hex(std::string_view value) {
    auto* ctx = static_cast<EVP_MAC_CTX*>(ctx_);
    if (!ctx) return salted_sha256(key_, value);
    bool ok;
    if (!keyed_) {
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
        ok = EVP_MAC_init(ctx, reinterpret_cast<const unsigned char*>(key_.data()), key_.size(), params) == 1;
        keyed_ = ok;
    } else {
        ok = EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1;  // the same key again
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    std::size_t n = 0;
    if (!ok || EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(value.data()), value.size()) != 1 ||
        EVP_MAC_final(ctx, md, &n, sizeof md) != 1)
        return salted_sha256(key_, value);
    static const char* digits = "0123456789abcdef";
    std::string out(n * 2, '0');
    for (std::size_t i = 0; i < n; ++i) {
        out[2 * i] = digits[md[i] >> 4];
        out[2 * i + 1] = digits[md[i] & 15];
    }
    return out;
}

namespace {

std::optional<std::size_t> keep_last_of(const std::string& method) {
    if (!method.starts_with("keep_last:")) return std::nullopt;
    std::size_t n = 0;
    const auto t = std::string_view(method).substr(10);
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (ec != std::errc() || p != t.data() + t.size() || n < 1 || n > 64) return std::nullopt;
    return n;
}

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

std::string keep_last(std::string_view s, std::size_t n) {
    std::size_t chars = 0;
    for (char c : s) chars += !continuation(c);
    if (chars <= n) return std::string(chars, '*');  // too short to show anything safely
    std::size_t skip = chars - n, i = 0;
    std::string out(skip, '*');
    for (; i < s.size() && skip; ++i)
        if (i + 1 >= s.size() || !continuation(s[i + 1])) --skip;
    out.append(s.substr(i));
    return out;
}

// Parses and binds an expression of a rule, or says in `warnings` why it does not apply.
std::optional<program> bind_text(const std::string& text, const table_schema& t, const std::string& who,
                                 std::vector<std::string>& warnings) {
    auto p = expression::parse(text);
    if (auto* e = std::get_if<expr_error>(&p)) {
        warnings.push_back(who + e->message + ": the rule is not applied");
        return std::nullopt;
    }
    auto b = program::bind(std::get<expression>(p), t);
    if (auto* e = std::get_if<expr_error>(&b)) {
        warnings.push_back(who + e->message + ": the rule is not applied");
        return std::nullopt;
    }
    return std::move(std::get<program>(b));
}

std::optional<std::size_t> column_index(const table_schema& t, const std::string& name) {
    for (std::size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i].name == name) return i;
    return std::nullopt;
}

}  // namespace

std::string validate(const rule& r) {
    if (r.table.empty()) return "name the table (schema.table, schema.* or *)";
    if (r.kind == "filter") {
        if (r.condition.empty()) return "a filter needs a condition, e.g. \"status <> 'test'\"";
        auto p = expression::parse(r.condition);
        if (auto* e = std::get_if<expr_error>(&p)) return "condition: " + e->describe(r.condition);
        return {};
    }
    if (r.kind == "mask") {
        if (r.column.empty()) return "a mask needs the column to mask";
        if (r.method != "sha256" && r.method != "redact" && !keep_last_of(r.method))
            return "mask method must be sha256, redact or keep_last:N (N from 1 to 64), not '" + r.method + "'";
        return {};
    }
    if (r.kind == "drop") return r.column.empty() ? "a drop needs the column to leave out" : "";
    if (r.kind == "cast") {
        if (r.column.empty()) return "a cast needs the column to convert";
        if (!cast_type_of(r.to))
            return "cast to: integer, bigint, smallint, numeric, double, real, text, boolean, date, timestamp or "
                   "timestamptz, not '" + r.to + "'";
        if (!r.on_fail.empty() && r.on_fail != "null" && r.on_fail != "set_aside")
            return "on_fail must be null or set_aside, not '" + r.on_fail + "'";
        return {};
    }
    if (r.kind == "rename") {
        if (r.to.empty()) return "a rename needs the new name (to)";
        if (r.to.size() > 63) return "names are at most 63 characters";
        return {};
    }
    if (r.kind == "derive") {
        if (r.column.empty()) return "a derive needs the new column's name";
        if (r.expression.empty()) return "a derive needs the expression that computes it, e.g. \"quantity * price\"";
        auto p = expression::parse(r.expression);
        if (auto* e = std::get_if<expr_error>(&p)) return "expression: " + e->describe(r.expression);
        if (!r.to.empty() && !cast_type_of(r.to)) return "derive type (to) '" + r.to + "' is not one a cast knows";
        return {};
    }
    if (r.kind == "alert") {
        if (r.condition.empty()) return "an alert needs a condition, e.g. \"stock < 10\"";
        auto p = expression::parse(r.condition);
        if (auto* e = std::get_if<expr_error>(&p)) return "condition: " + e->describe(r.condition);
        window_spec w;
        if (auto why = parse_window(r.options, w); !why.empty()) return "window: " + why;
        return {};
    }
    return "unknown rule kind '" + r.kind + "' (filter, mask, drop, cast, rename, derive or alert)";
}

bool table_matches(const std::string& pattern, const table_schema& t) {
    if (pattern == "*") return true;
    const auto dot = pattern.find('.');
    const std::string schema = dot == std::string::npos ? "public" : pattern.substr(0, dot);
    const std::string name = dot == std::string::npos ? pattern : pattern.substr(dot + 1);
    return schema == t.schema && (name == "*" || name == t.name);
}

rule_set::rule_set(std::vector<rule> rules, std::string salt, std::uint64_t generation)
    : rules_(std::move(rules)), salt_(std::move(salt)), generation_(generation) {}

const table_rules& rule_set::for_table(const std::shared_ptr<const table_schema>& t) {
    auto& slot = compiled_[{t->relation_id, t->version}];
    if (slot) return *slot;
    slot = std::make_unique<table_rules>();
    auto& out = *slot;
    std::vector<table_rules::column_map> cols(t->columns.size());
    std::vector<bool> dropped(t->columns.size(), false);
    std::vector<std::string> names(t->columns.size());
    for (std::size_t i = 0; i < cols.size(); ++i) cols[i].source = i, names[i] = t->columns[i].name;
    std::string table_name;  // a table rename
    std::vector<std::pair<std::string, std::optional<cast_type>>> derived_cols;
    for (const auto& r : rules_) {
        if (!table_matches(r.table, *t)) continue;
        const std::string who = "rule " + std::to_string(r.id) + " (" + r.kind + ") on " + t->qualified() + ": ";
        if (r.kind == "rename" && r.column.empty()) {
            table_name = r.to;
            out.rule_ids_.push_back(r.id);
            out.identity_ = false;
            continue;
        }
        if (r.kind == "derive") {
            auto b = bind_text(r.expression, *t, who, out.warnings_);
            if (!b) continue;
            bool taken = false;
            for (std::size_t k = 0; k < names.size(); ++k) taken |= !dropped[k] && names[k] == r.column;
            for (const auto& d : derived_cols) taken |= d.first == r.column;
            if (taken) {
                out.warnings_.push_back(who + "column " + r.column + " exists already: the rule is not applied");
                continue;
            }
            std::optional<cast_type> type;
            if (!r.to.empty()) type = cast_type_of(r.to);
            if (type && type->oid == 25) type.reset();
            out.derived_.push_back({std::move(*b), type});
            derived_cols.emplace_back(r.column, type);
            out.rule_ids_.push_back(r.id);
            out.identity_ = false;
            continue;
        }
        if (r.kind == "alert") {
            auto p = expression::parse(r.condition);
            window_spec w;
            std::string why = std::holds_alternative<expr_error>(p) ? std::get<expr_error>(p).message : parse_window(r.options, w);
            if (why.empty()) {
                auto a = alert_rule::bind(r.id, r.note.empty() ? "rule " + std::to_string(r.id) : r.note,
                                          std::get<expression>(p), w, *t);
                if (auto* e = std::get_if<std::string>(&a)) why = *e;
                else out.alerts_.push_back(std::move(std::get<alert_rule>(a)));
            }
            if (!why.empty()) out.warnings_.push_back(who + why + ": the alert is not watched");
            continue;
        }
        if (r.kind == "withhold") {
            // A pending new column (engines/suggest): out of the target until
            // decided; the stream keeps its values aside meanwhile.
            const auto at = column_index(*t, r.column);
            if (!at || t->columns[*at].key) continue;
            dropped[*at] = true;
            out.withheld_.push_back({*at, -r.id});
            out.identity_ = false;
            continue;
        }
        if (r.kind == "filter") {
            auto b = bind_text(r.condition, *t, who, out.warnings_);
            if (!b) continue;
            out.filters_.push_back(std::move(*b));
            out.filter_ids_.push_back(r.id);
            out.identity_ = false;
            continue;
        }
        const auto at = column_index(*t, r.column);
        if (!at) {
            out.warnings_.push_back(who + "no column " + r.column + ": the rule is not applied");
            continue;
        }
        if (r.kind == "drop") {
            if (t->columns[*at].key) {
                out.warnings_.push_back(who + "column " + r.column + " is part of the key and cannot be left out");
                continue;
            }
            dropped[*at] = true;
        } else if (r.kind == "cast") {
            cols[*at].cast = cast_type_of(r.to);
            cols[*at].set_aside_on_fail = r.on_fail == "set_aside";
        } else if (r.kind == "rename") {
            bool taken = false;
            for (std::size_t k = 0; k < names.size(); ++k) taken |= !dropped[k] && k != *at && names[k] == r.to;
            for (const auto& d : derived_cols) taken |= d.first == r.to;
            if (taken) {
                out.warnings_.push_back(who + "the target already has a column " + r.to + ": the rule is not applied");
                continue;
            }
            names[*at] = r.to;
        } else if (r.kind == "mask") {
            auto& m = cols[*at];
            if (r.method == "sha256") m.h = table_rules::column_map::how::sha256;
            else if (r.method == "redact") m.h = table_rules::column_map::how::redact;
            else {
                m.h = table_rules::column_map::how::keep_last;
                m.keep = keep_last_of(r.method).value_or(4);
            }
        }
        out.rule_ids_.push_back(r.id);
        out.identity_ = false;
    }
    if (out.identity_) {
        out.target_ = t;
        return out;
    }
    auto target = std::make_shared<table_schema>(*t);
    target->columns.clear();
    if (!table_name.empty()) {
        const auto dot = table_name.find('.');
        if (dot != std::string::npos) {
            target->schema = table_name.substr(0, dot);
            target->name = table_name.substr(dot + 1);
        } else {
            target->name = table_name;
        }
    }
    for (std::size_t i = 0; i < cols.size(); ++i) {
        if (dropped[i]) continue;
        auto c = t->columns[i];
        c.name = names[i];
        if (cols[i].h != table_rules::column_map::how::keep) {
            c.type_oid = 25;  // text: what a mask writes
            c.type_mod = -1;
            c.type_name = "text";
            cols[i].cast.reset();  // a masked value is text whatever the cast
        } else if (cols[i].cast) {
            c.type_oid = cols[i].cast->oid;
            c.type_mod = -1;
            c.type_name = cols[i].cast->name;
        }
        target->columns.push_back(std::move(c));
        out.columns_.push_back(cols[i]);
    }
    for (std::size_t k = 0; k < derived_cols.size(); ++k) {
        connectors::column_def c;
        c.name = derived_cols[k].first;
        const auto type = derived_cols[k].second.value_or(cast_type{});
        c.type_oid = type.oid;
        c.type_name = type.name;
        c.nullable = true;
        target->columns.push_back(std::move(c));
        table_rules::column_map m;
        m.derived = true;
        m.source = k;
        out.columns_.push_back(m);
    }
    // A distinct version per rule generation, so a sink prepares the table again when the rules change.
    target->version = t->version * 1000003 + generation_ + 1;
    out.target_ = std::move(target);
    return out;
}

std::optional<std::size_t> table_rules::map_row(connectors::row& r, keyed_hmac& hmac, std::vector<value>& derived,
                                                bool old_image) const {
    connectors::row out;
    out.reserve(columns_.size());
    std::optional<std::size_t> failed;
    for (std::size_t i = 0; i < columns_.size(); ++i) {
        const auto& m = columns_[i];
        if (m.derived) {
            // An old image carries no derived value (it is not a key).
            out.push_back(old_image ? value::unchanged_value() : std::move(derived[m.source]));
            continue;
        }
        value v = m.source < r.size() ? std::move(r[m.source]) : value::null_value();
        const bool has = v.st == value::state::text || v.st == value::state::binary;
        if (has && m.h != column_map::how::keep) {
            switch (m.h) {
            case column_map::how::sha256: v = value::text_value(hmac.hex(v.data)); break;
            case column_map::how::redact: v = value::text_value("[redacted]"); break;
            case column_map::how::keep_last: v = value::text_value(keep_last(v.data, m.keep)); break;
            case column_map::how::keep: break;
            }
        } else if (has && m.cast) {
            if (auto cast = cast_text(v.data, *m.cast)) v = value::text_value(std::move(*cast));
            else if (m.set_aside_on_fail) failed = i;  // kept as it came, for the ledger
            else v = value::null_value();
        }
        out.push_back(std::move(v));
    }
    r = std::move(out);
    return failed;
}

table_rules::outcome table_rules::apply(change_event& c, evaluator& ev, keyed_hmac& hmac, std::string& why,
                                       std::map<std::int64_t, std::int64_t>& touched, bool backfill) const {
    if (identity_) return outcome::keep;
    if (!backfill && (c.op == change_op::insert || c.op == change_op::update || c.op == change_op::read))
        for (std::size_t k = 0; k < filters_.size(); ++k)
            if (!filters_[k].evaluate(c, ev).truthy()) {
                ++touched[filter_ids_[k]];
                return outcome::filtered;
            }
    for (auto id : rule_ids_) ++touched[id];
    std::vector<value> derived;
    if (backfill) {
        derived.assign(derived_.size(), value::unchanged_value());  // computed from columns it does not carry
    } else if (!derived_.empty() && !c.after.empty()) {
        derived.reserve(derived_.size());
        for (const auto& d : derived_) {
            auto text = to_text(d.p.evaluate(c, ev));
            if (text && d.type) text = cast_text(*text, *d.type);
            derived.push_back(text ? value::text_value(std::move(*text)) : value::null_value());
        }
    }
    // A set_aside cast that fails still masks the rest of the row (the
    // ledger gets it as the target would have, less the failed conversion).
    std::optional<std::size_t> failed;
    if (!c.after.empty()) failed = map_row(c.after, hmac, derived, false);
    if (c.before) map_row(*c.before, hmac, derived, true);
    c.table = target_;
    if (failed) {
        const auto& col = target_->columns[*failed];
        const auto& v = c.after[*failed];
        why = "column " + col.name + ": '" + v.data.substr(0, 100) + "' is not a " + col.type_name;
        return outcome::rejected;
    }
    return outcome::keep;
}

void table_rules::feed_alerts(const change_event& c, std::int64_t commit_time_us, evaluator& ev,
                              std::vector<alert_event>& out) {
    for (auto& a : alerts_)
        if (auto e = a.feed(c, commit_time_us, ev)) out.push_back(std::move(*e));
}

table_rules::outcome rule_set::apply(change_event& c, std::string& why, std::int64_t commit_time_us, bool backfill) {
    if (rules_.empty() || !c.table) return table_rules::outcome::keep;
    auto& compiled = const_cast<table_rules&>(for_table(c.table));
    if (commit_time_us && !backfill) compiled.feed_alerts(c, commit_time_us, ev_, alerts_out_);
    if (!hmac_) hmac_ = std::make_unique<keyed_hmac>(salt_);
    return compiled.apply(c, ev_, *hmac_, why, touched_, backfill);
}

std::string rule_set::take_counts() {
    if (touched_.empty()) return {};
    std::string out = "\"rules\":{";
    bool first = true;
    for (const auto& [id, n] : touched_) {
        out += (first ? "\"" : ",\"") + std::to_string(id) + "\":" + std::to_string(n);
        first = false;
    }
    touched_.clear();
    return out + "}";
}

}  // namespace datavor::engines::rules
