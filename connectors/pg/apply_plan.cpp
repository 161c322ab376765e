#include "connectors/pg/apply_plan.hpp"

#include "connectors/common/sql_quote.hpp"

#include <algorithm>

namespace datavor::connectors::pg {

void add_actions(const change_event& c, const std::vector<std::size_t>& keys, std::vector<apply_action>& out,
                 std::deque<update_plan>& plans) {
    apply_action a;
    a.table = c.table.get();
    const auto null_key = [&](const row& r) {
        return std::any_of(keys.begin(), keys.end(), [&](std::size_t k) { return r[k].is_null(); });
    };
    switch (c.op) {
        case change_op::insert:
        case change_op::read:
            a.insert = true;
            a.values = &c.after;
            out.push_back(a);
            break;
        case change_op::update: {
            // plan_update's decisions, without copying the row when every
            // column was carried (the common case).
            const bool partial =
                std::any_of(c.after.begin(), c.after.end(), [](const value& v) { return v.is_unchanged(); });
            bool key_changed = false;
            if (c.before)
                for (auto k : keys)
                    if (!(*c.before)[k].is_unchanged() && (*c.before)[k] != c.after[k]) key_changed = true;
            if (!partial) {
                if (key_changed) {
                    apply_action d = a;
                    d.k = apply_action::kind::erase;
                    d.values = &*c.before;
                    d.solo = null_key(*c.before);
                    out.push_back(d);
                }
                a.values = &c.after;
                out.push_back(a);
                break;
            }
            plans.push_back(plan_update(c, keys));
            a.values = &plans.back().after;
            a.columns = &plans.back().columns;
            a.k = key_changed ? apply_action::kind::move : apply_action::kind::update;
            a.solo = key_changed || null_key(*a.values);
            if (key_changed) a.old_key = &*c.before;
            out.push_back(a);
            break;
        }
        case change_op::erase: {
            const row& k = c.before ? *c.before : c.after;
            a.k = apply_action::kind::erase;
            a.values = &k;
            a.solo = null_key(k);
            out.push_back(a);
            break;
        }
        case change_op::truncate:
            a.k = apply_action::kind::truncate;
            a.solo = true;
            out.push_back(a);
            break;
    }
}

namespace {
bool same_table(const table_schema* a, const table_schema* b) {
    return a == b || (a->relation_id == b->relation_id && a->version == b->version && a->schema == b->schema &&
                      a->name == b->name);
}
bool same_columns(const std::vector<std::size_t>* a, const std::vector<std::size_t>* b) {
    return a == b || (a && b && *a == *b);
}
}  // namespace

std::size_t run_length(std::span<const apply_action> actions) {
    if (actions.empty()) return 0;
    const auto& first = actions.front();
    if (first.solo) return 1;
    std::size_t n = 1;
    while (n < actions.size()) {
        const auto& a = actions[n];
        if (a.solo || a.k != first.k || !same_table(a.table, first.table) || !same_columns(a.columns, first.columns))
            break;
        ++n;
    }
    return n;
}

void append_copy_field(std::string& out, const value& v) {
    if (v.is_null()) {
        out += "\\N";
        return;
    }
    const std::string& d = v.data;
    std::size_t from = 0;
    for (std::size_t i = 0; i < d.size(); ++i) {
        const char ch = d[i];
        const char* esc = ch == '\\' ? "\\\\" : ch == '\t' ? "\\t" : ch == '\n' ? "\\n" : ch == '\r' ? "\\r" : nullptr;
        if (!esc) continue;
        out.append(d, from, i - from);
        out += esc;
        from = i + 1;
    }
    out.append(d, from, d.size() - from);
}

table_sql::table_sql(const table_schema& t)
    : target_(quote_pg_ident(t.schema) + "." + quote_pg_ident(t.name)), keys_(t.key_columns()) {
    for (const auto& c : t.columns) names_.push_back(quote_pg_ident(c.name));
}

std::string table_sql::list(const std::vector<std::size_t>* columns) const {
    std::string out;
    const std::size_t n = columns ? columns->size() : names_.size();
    for (std::size_t i = 0; i < n; ++i) out += (i ? ", " : "") + names_[columns ? (*columns)[i] : i];
    return out;
}

namespace {
// Positional staging column names (c0, c1, …): no source name can clash with seq.
std::string stage_col(std::size_t i) { return "c" + std::to_string(i); }
std::string stage_name(std::string_view stage) { return "pg_temp." + quote_pg_ident(stage); }
}  // namespace

std::string table_sql::upsert() const {
    std::string values, sets, keys;
    for (std::size_t i = 0; i < names_.size(); ++i) {
        values += (i ? ", $" : "$") + std::to_string(i + 1);
        if (std::find(keys_.begin(), keys_.end(), i) == keys_.end())
            sets += (sets.empty() ? "" : ", ") + names_[i] + " = EXCLUDED." + names_[i];
    }
    for (auto k : keys_) keys += (keys.empty() ? "" : ", ") + names_[k];
    return "INSERT INTO " + target_ + " (" + list(nullptr) + ") VALUES (" + values + ") ON CONFLICT (" + keys +
           ") DO " + (sets.empty() ? "NOTHING" : "UPDATE SET " + sets);
}

std::string table_sql::key_condition(std::string_view null_keys, std::size_t first_param) const {
    std::string conds;
    std::size_t param = first_param;
    for (std::size_t i = 0; i < keys_.size(); ++i) {
        conds += (i ? " AND " : "") + names_[keys_[i]];
        const bool null = i < null_keys.size() && null_keys[i] == '1';
        conds += null ? std::string(" IS NULL") : " = $" + std::to_string(param++);
    }
    return conds;
}

std::string table_sql::erase(std::string_view null_keys) const {
    return "DELETE FROM " + target_ + " WHERE " + key_condition(null_keys, 1);
}

std::string table_sql::update(const std::vector<std::size_t>& columns, std::string_view null_keys) const {
    std::string sets;
    for (std::size_t i = 0; i < columns.size(); ++i)
        sets += (i ? ", " : "") + names_[columns[i]] + " = $" + std::to_string(i + 1);
    return "UPDATE " + target_ + " SET " + sets + " WHERE " + key_condition(null_keys, columns.size() + 1);
}

std::string table_sql::move_erase_old(std::string_view old_null_keys, std::string_view new_null_keys) const {
    const auto old_params = static_cast<std::size_t>(std::count(old_null_keys.begin(), old_null_keys.end(), '0'));
    return "DELETE FROM " + target_ + " WHERE " + key_condition(old_null_keys, 1) + " AND EXISTS (SELECT FROM " +
           target_ + " WHERE " + key_condition(new_null_keys, old_params + 1) + ")";
}

std::string table_sql::copy_into_target() const { return "COPY " + target_ + " (" + list(nullptr) + ") FROM STDIN"; }

std::string table_sql::create_upsert_stage(std::string_view stage) const {
    std::string cols = "NULL::bigint AS seq";
    for (std::size_t i = 0; i < names_.size(); ++i) cols += ", x." + names_[i] + " AS " + stage_col(i);
    return "CREATE TEMPORARY TABLE IF NOT EXISTS " + quote_pg_ident(stage) + " ON COMMIT DELETE ROWS AS SELECT " +
           cols + " FROM " + target_ + " AS x WITH NO DATA";
}

std::string table_sql::copy_into_upsert_stage(std::string_view stage, const std::vector<std::size_t>* columns) const {
    std::string cols = "seq";
    const std::size_t n = columns ? columns->size() : names_.size();
    for (std::size_t i = 0; i < n; ++i) cols += ", " + stage_col(columns ? (*columns)[i] : i);
    return "COPY " + stage_name(stage) + " (" + cols + ") FROM STDIN";
}

namespace {
// The last staged row of each key (highest seq): a key written twice in one
// run ends as the second write left it.
std::string last_of_each_key(std::string_view stage, const std::vector<std::size_t>& keys,
                             const std::vector<std::size_t>* columns, std::size_t all) {
    std::string select, order;
    for (auto k : keys) order += (order.empty() ? "" : ", ") + stage_col(k);
    std::vector<std::size_t> cols = columns ? *columns : std::vector<std::size_t>{};
    if (!columns)
        for (std::size_t i = 0; i < all; ++i) cols.push_back(i);
    for (auto k : keys)
        if (std::find(cols.begin(), cols.end(), k) == cols.end()) cols.push_back(k);
    for (std::size_t i = 0; i < cols.size(); ++i) select += (i ? ", " : "") + stage_col(cols[i]);
    return "SELECT DISTINCT ON (" + order + ") " + select + " FROM " + stage_name(stage) + " ORDER BY " + order +
           ", seq DESC";
}
}  // namespace

std::string table_sql::merge_upsert_stage(std::string_view stage) const {
    std::string sets, keys;
    for (std::size_t i = 0; i < names_.size(); ++i)
        if (std::find(keys_.begin(), keys_.end(), i) == keys_.end())
            sets += (sets.empty() ? "" : ", ") + names_[i] + " = EXCLUDED." + names_[i];
    for (auto k : keys_) keys += (keys.empty() ? "" : ", ") + names_[k];
    return "INSERT INTO " + target_ + " (" + list(nullptr) + ") " +
           last_of_each_key(stage, keys_, nullptr, names_.size()) + " ON CONFLICT (" + keys + ") DO " +
           (sets.empty() ? "NOTHING" : "UPDATE SET " + sets);
}

std::string table_sql::merge_update_stage(std::string_view stage, const std::vector<std::size_t>& columns) const {
    std::string sets, conds;
    for (std::size_t i = 0; i < columns.size(); ++i)
        sets += (i ? ", " : "") + names_[columns[i]] + " = s." + stage_col(columns[i]);
    for (std::size_t i = 0; i < keys_.size(); ++i)
        conds += (i ? " AND x." : "x.") + names_[keys_[i]] + " = s." + stage_col(keys_[i]);
    return "UPDATE " + target_ + " AS x SET " + sets + " FROM (" +
           last_of_each_key(stage, keys_, &columns, names_.size()) + ") AS s WHERE " + conds;
}

std::string table_sql::create_erase_stage(std::string_view stage) const {
    std::string cols;
    for (std::size_t i = 0; i < keys_.size(); ++i)
        cols += (i ? ", x." : "x.") + names_[keys_[i]] + " AS " + stage_col(i);
    return "CREATE TEMPORARY TABLE IF NOT EXISTS " + quote_pg_ident(stage) + " ON COMMIT DELETE ROWS AS SELECT " +
           cols + " FROM " + target_ + " AS x WITH NO DATA";
}

std::string table_sql::copy_into_erase_stage(std::string_view stage) const {
    std::string cols;
    for (std::size_t i = 0; i < keys_.size(); ++i) cols += (i ? ", " : "") + stage_col(i);
    return "COPY " + stage_name(stage) + " (" + cols + ") FROM STDIN";
}

std::string table_sql::merge_erase_stage(std::string_view stage) const {
    std::string conds;
    for (std::size_t i = 0; i < keys_.size(); ++i)
        conds += (i ? " AND x." : "x.") + names_[keys_[i]] + " = s." + stage_col(i);
    return "DELETE FROM " + target_ + " AS x USING " + stage_name(stage) + " AS s WHERE " + conds;
}

}  // namespace datavor::connectors::pg
