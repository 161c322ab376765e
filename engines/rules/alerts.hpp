#pragma once
// Alert rules: a condition on each streamed change, optionally over a time
// window per key, that raises an alert once per crossing.
//
//   threshold  "stock < 10": fires when a row starts matching (its key did
//              not match before, or was not seen), once per crossing; a row
//              that keeps matching does not fire again until it stopped.
//   velocity   the matching changes of the last N minutes grouped by a column
//              (`by`, e.g. card_id): fires when their count reaches
//              min_count and (optionally) their distinct values of another
//              column reach min_distinct and/or their sum reaches min_sum;
//              again only after it fell below.
//
// Time is the source's commit time. Snapshot rows never alert. State is
// bounded: at most `max_keys` keys per rule (the oldest forgotten first) and
// `max_events` events per key; it is in memory, so a restarted stream starts
// its windows empty.
//
// Not thread-safe: the stream's strand owns it.
#include "connectors/common/change.hpp"
#include "engines/rules/expr.hpp"

#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace datavor::engines::rules {

struct window_spec {
    int minutes = 0;  // 0: no window (a threshold alert)
    std::string by;   // the column that groups the window (its key)
    std::int64_t min_count = 1;
    std::string distinct;  // optional: a column whose distinct values are counted
    std::int64_t min_distinct = 0;
    std::string sum;  // optional: a column summed
    double min_sum = 0;
    std::string webhook;  // optional: http:// URL that gets each alert as a JSON POST
    bool to_target = false;  // optional: a row in the target's _datavor_alerts table too
};

// Parses the alert options JSON ({"window_minutes":8,"by":"card_id","min_count":11,
// "distinct":"country","min_distinct":3,"sum":"amount","min_sum":1000}); "" when
// valid, else what to fix.
std::string parse_window(const std::string& options_json, window_spec& out);

struct alert_event {
    std::int64_t rule_id = 0;
    std::string table;
    std::string key;      // the row key or the window's `by` value, as JSON
    std::string message;  // what fired, for people
    std::string details;  // JSON object: the values that made it fire
    std::int64_t commit_time_us = 0;
    std::string webhook;  // where to POST it, if anywhere
    bool to_target = false;  // written to the target's _datavor_alerts table with the batch
};

// One alert rule bound to one table version.
class alert_rule {
public:
    static std::variant<alert_rule, std::string> bind(std::int64_t rule_id, const std::string& name,
                                                      const expression& condition, const window_spec& w,
                                                      const connectors::table_schema& table);
    // Feeds one change; returns an alert when it fires.
    std::optional<alert_event> feed(const connectors::change_event& c, std::int64_t commit_time_us, evaluator& ev);

    static constexpr std::size_t max_keys = 100000;
    static constexpr std::size_t max_events = 10000;

private:
    struct window_state {
        std::deque<std::tuple<std::int64_t, std::string, double>> events;  // time, distinct value, summed value
        bool firing = false;
        std::list<std::string>::iterator age;
    };
    std::int64_t rule_id_ = 0;
    std::string name_;
    std::string condition_text_;
    std::shared_ptr<program> condition_;
    window_spec window_;
    std::vector<std::size_t> key_columns_;
    std::optional<std::size_t> by_, distinct_, sum_;
    std::string table_;
    std::vector<std::string> column_names_;
    std::unordered_map<std::string, window_state> state_;
    std::list<std::string> ages_;  // least recently touched first

    window_state& touch(const std::string& key);
};

}  // namespace datavor::engines::rules
