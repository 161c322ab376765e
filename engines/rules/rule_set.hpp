#pragma once
// A stream's rules, compiled per source table version and applied to every
// change between the source and the sink, as a pure transformation:
//   filter  apply only the inserts, updates and snapshot rows whose row
//           matches the condition (deletes and truncates always pass: a
//           delete of a row the target never got changes nothing)
//   mask    replace a column's values: sha256 (HMAC-SHA256 with the stream's
//           secret salt, hex: equal values stay equal, so keys still join),
//           redact, or keep_last:N characters; the target column becomes text
//   drop    leave a (non-key) column out of the target
//   cast    convert a column to a type (`to`); a value that is not one becomes
//           null (on_fail null) or sets the change aside in the ledger
//           (on_fail set_aside)
//   rename  give a column (or, without a column, the table) another name in
//           the target (`to`)
//   derive  add a column (`column`) computed by `expression`, of type `to`
//           (text by default), from the source row
//   withhold (internal, never saved) a new column waiting for a decision
//           (engines/suggest): left out like a drop; the stream keeps its
//           values aside (withheld())
// Order: filters on the source row, then derived values (also from the
// source row), then masks, casts, drops and renames.
//
// Lifecycle: built from the saved rules when a stream opens and again when
// they change (the stream reloads between batches). Not thread-safe: one
// stream's strand uses it.
#include "connectors/common/change.hpp"
#include "engines/rules/alerts.hpp"
#include "engines/rules/cast.hpp"
#include "engines/rules/expr.hpp"

#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace datavor::engines::rules {

// HMAC-SHA256 keyed once (the stream's salt), then applied per value: the
// key's pads are computed once, not for every value (OpenSSL's one-shot
// HMAC() costs about 4x more per short value). Not thread-safe.
class keyed_hmac {
public:
    explicit keyed_hmac(const std::string& key);
    ~keyed_hmac();
    keyed_hmac(const keyed_hmac&) = delete;
    keyed_hmac& operator=(const keyed_hmac&) = delete;
    // Lowercase hex of HMAC-SHA256(key, value); the same as salted_sha256.
    std::string hex(std::string_view value);

private:
    void* mac_ = nullptr;  // EVP_MAC, EVP_MAC_CTX: OpenSSL's headers stay in the .cpp
    void* ctx_ = nullptr;
    bool keyed_ = false;
    std::string key_;
};

struct rule {
    std::int64_t id = 0;
    std::string stream;
    std::string table = "*";  // schema.table, schema.* or * (a bare name means public.name)
    std::string kind;         // filter | mask | drop | cast | rename | derive
    std::string column;       // mask, drop, cast, rename (optional: the table), derive (the new column)
    std::string condition;    // filter
    std::string method;       // mask: sha256 | redact | keep_last:N
    std::string to;           // cast, derive: a type; rename: the new name
    std::string expression;   // derive
    std::string on_fail;      // cast: null (default) | set_aside
    std::string options;      // alert: the window as JSON (see alerts.hpp), "" for a threshold alert
    std::string provenance = "user";  // user | suggestion | pattern
    std::string note;
    std::int64_t created_at = 0;
};

// Checks a rule on its own (kind, fields, the condition's syntax, the mask
// method); "" when valid, else what to fix.
std::string validate(const rule& r);
bool table_matches(const std::string& pattern, const connectors::table_schema& t);

// The rules of one source table version, compiled.
class table_rules {
public:
    // The table as the target gets it (masked columns as text, dropped ones left out).
    const std::shared_ptr<const connectors::table_schema>& target() const { return target_; }
    enum class outcome { keep, filtered, rejected };
    // Transforms `c` in place for the target. `rejected`: a cast with
    // on_fail set_aside failed; `why` says which value, and `c` is
    // transformed all the same (masked) for the ledger.
    // `touched` counts, per rule id, the changes each rule changed or filtered out.
    // `backfill`: a partial image written over rows already in the target (a
    // new column's kept values): filters do not apply, derived columns stay.
    outcome apply(connectors::change_event& c, evaluator& ev, keyed_hmac& hmac, std::string& why,
                  std::map<std::int64_t, std::int64_t>& touched, bool backfill = false) const;
    // Feeds the table's alert rules (source values, before any transformation).
    void feed_alerts(const connectors::change_event& c, std::int64_t commit_time_us, evaluator& ev,
                     std::vector<alert_event>& out);
    bool identity() const { return identity_; }  // no rule applies: changes pass untouched
    // Source columns kept out of the target while a suggestion is pending:
    // (column index, suggestion id).
    const std::vector<std::pair<std::size_t, std::int64_t>>& withheld() const { return withheld_; }
    const std::vector<std::string>& warnings() const { return warnings_; }

private:
    friend class rule_set;
    struct column_map {
        std::size_t source = 0;  // a source column, or (derived) an index into derived_
        bool derived = false;
        enum class how { keep, sha256, redact, keep_last } h = how::keep;
        std::size_t keep = 0;
        std::optional<cast_type> cast;
        bool set_aside_on_fail = false;
    };
    struct derived_column {
        program p;
        std::optional<cast_type> type;  // nullopt: text
    };
    std::shared_ptr<const connectors::table_schema> target_;
    std::vector<program> filters_;
    std::vector<std::int64_t> filter_ids_;  // parallel to filters_
    std::vector<std::int64_t> rule_ids_;    // the other rules that apply to this table
    std::vector<derived_column> derived_;
    std::vector<alert_rule> alerts_;
    std::vector<column_map> columns_;  // one per target column
    std::vector<std::pair<std::size_t, std::int64_t>> withheld_;
    bool identity_ = true;
    std::vector<std::string> warnings_;
    // Fails (returns the column) only for a set_aside cast.
    std::optional<std::size_t> map_row(connectors::row& r, keyed_hmac& hmac, std::vector<connectors::value>& derived,
                                       bool old_image) const;
};

class rule_set {
public:
    rule_set() = default;
    rule_set(std::vector<rule> rules, std::string salt, std::uint64_t generation);

    // The compiled rules for a table version (compiled on first use). A rule
    // that does not bind (an unknown column) is left out, with a warning.
    const table_rules& for_table(const std::shared_ptr<const connectors::table_schema>& t);
    bool compiled(const std::shared_ptr<const connectors::table_schema>& t) const {
        return compiled_.count({t->relation_id, t->version}) > 0;
    }
    // Applies the table's rules to `c` (see table_rules::apply); with
    // `commit_time_us`, alert rules are fed first (pass 0 not to feed them).
    table_rules::outcome apply(connectors::change_event& c, std::string& why, std::int64_t commit_time_us = 0,
                               bool backfill = false);
    // Alerts raised since the last call.
    std::vector<alert_event> take_alerts() { return std::exchange(alerts_out_, {}); }
    const std::vector<alert_event>& pending_alerts() const { return alerts_out_; }
    // Alerts raised under the rules this set replaces mid-batch, emitted with its own.
    void adopt_alerts(std::vector<alert_event> earlier) {
        earlier.insert(earlier.end(), std::make_move_iterator(alerts_out_.begin()), std::make_move_iterator(alerts_out_.end()));
        alerts_out_ = std::move(earlier);
    }
    const std::vector<rule>& rules() const { return rules_; }
    // Changes each rule touched since the last call, as JSON members
    // ("rules":{"<id>":n,…}), or "" when none; resets the counts.
    std::string take_counts();
    bool empty() const { return rules_.empty(); }

private:
    std::vector<rule> rules_;
    std::string salt_;
    std::unique_ptr<keyed_hmac> hmac_;  // keyed with salt_ on first use
    std::uint64_t generation_ = 0;
    evaluator ev_;
    std::map<std::int64_t, std::int64_t> touched_;
    std::vector<alert_event> alerts_out_;
    std::map<std::pair<std::uint32_t, std::uint64_t>, std::unique_ptr<table_rules>> compiled_;
};

// HMAC-SHA256(salt, value) as lowercase hex.
std::string salted_sha256(const std::string& salt, std::string_view value);

}  // namespace datavor::engines::rules
