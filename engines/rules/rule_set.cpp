#include "engines/rules/rule_set.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

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
    return "unknown rule kind '" + r.kind + "' (filter, mask or drop)";
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
    for (std::size_t i = 0; i < cols.size(); ++i) cols[i].source = i;
    for (const auto& r : rules_) {
        if (!table_matches(r.table, *t)) continue;
        const std::string who = "rule " + std::to_string(r.id) + " (" + r.kind + ") on " + t->qualified() + ": ";
        if (r.kind == "filter") {
            auto p = expression::parse(r.condition);
            if (auto* e = std::get_if<expr_error>(&p)) {
                out.warnings_.push_back(who + e->message);
                continue;
            }
            auto b = program::bind(std::get<expression>(p), *t);
            if (auto* e = std::get_if<expr_error>(&b)) {
                out.warnings_.push_back(who + e->message + ": the rule is not applied");
                continue;
            }
            out.filters_.push_back(std::move(std::get<program>(b)));
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
        } else if (r.kind == "mask") {
            auto& m = cols[*at];
            if (r.method == "sha256") m.h = table_rules::column_map::how::sha256;
            else if (r.method == "redact") m.h = table_rules::column_map::how::redact;
            else {
                m.h = table_rules::column_map::how::keep_last;
                m.keep = keep_last_of(r.method).value_or(4);
            }
        }
        out.identity_ = false;
    }
    if (out.identity_) {
        out.target_ = t;
        return out;
    }
    auto target = std::make_shared<table_schema>(*t);
    target->columns.clear();
    for (std::size_t i = 0; i < cols.size(); ++i) {
        if (dropped[i]) continue;
        auto c = t->columns[i];
        if (cols[i].h != table_rules::column_map::how::keep) {
            c.type_oid = 25;  // text: what a mask writes
            c.type_mod = -1;
            c.type_name = "text";
        }
        target->columns.push_back(std::move(c));
        out.columns_.push_back(cols[i]);
    }
    // A distinct version per rule generation, so a sink prepares the table again when the rules change.
    target->version = t->version * 1000003 + generation_ + 1;
    out.target_ = std::move(target);
    return out;
}

void table_rules::map_row(connectors::row& r, const std::string& salt) const {
    connectors::row out;
    out.reserve(columns_.size());
    for (const auto& m : columns_) {
        value v = m.source < r.size() ? std::move(r[m.source]) : value::null_value();
        if (m.h != column_map::how::keep && (v.st == value::state::text || v.st == value::state::binary)) {
            switch (m.h) {
            case column_map::how::sha256: v = value::text_value(salted_sha256(salt, v.data)); break;
            case column_map::how::redact: v = value::text_value("[redacted]"); break;
            case column_map::how::keep_last: v = value::text_value(keep_last(v.data, m.keep)); break;
            case column_map::how::keep: break;
            }
        }
        out.push_back(std::move(v));
    }
    r = std::move(out);
}

bool table_rules::apply(change_event& c, evaluator& ev, const std::string& salt) const {
    if (identity_) return true;
    if (c.op == change_op::insert || c.op == change_op::update || c.op == change_op::read)
        for (const auto& f : filters_)
            if (!f.evaluate(c, ev).truthy()) return false;
    if (!c.after.empty()) map_row(c.after, salt);
    if (c.before) map_row(*c.before, salt);
    c.table = target_;
    return true;
}

bool rule_set::apply(change_event& c) {
    if (rules_.empty() || !c.table) return true;
    return for_table(c.table).apply(c, ev_, salt_);
}

}  // namespace datavor::engines::rules
