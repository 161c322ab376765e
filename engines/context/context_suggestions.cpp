// context_store: suggestions, the values a pending new column keeps aside,
// learned patterns and the streams' autopilot (schema version 7).
#include "engines/context/context_store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>
#include <set>

namespace datavor::engines::context {

namespace {

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

constexpr const char* suggestion_columns =
    "SELECT id, stream, table_name, kind, column_name, old_type, new_type, position, schema_version, action, "
    "action_type, message, status, decided_by, pattern_id, rule_id, kept_rows, backfilled, note, detected_at, "
    "decided_at, error_code FROM suggestions";

suggestion_record read_suggestion(SQLite::Statement& q) {
    suggestion_record s;
    int i = 0;
    s.id = q.getColumn(i++).getInt64();
    s.stream = q.getColumn(i++).getString();
    s.table = q.getColumn(i++).getString();
    s.kind = q.getColumn(i++).getString();
    s.column = q.getColumn(i++).getString();
    s.old_type = q.getColumn(i++).getString();
    s.new_type = q.getColumn(i++).getString();
    s.position = q.getColumn(i++).getString();
    s.schema_version = q.getColumn(i++).getInt64();
    s.action = q.getColumn(i++).getString();
    s.action_type = q.getColumn(i++).getString();
    s.message = q.getColumn(i++).getString();
    s.status = q.getColumn(i++).getString();
    s.decided_by = q.getColumn(i++).getString();
    s.pattern_id = q.getColumn(i++).getInt64();
    s.rule_id = q.getColumn(i++).getInt64();
    s.kept_rows = q.getColumn(i++).getInt64();
    s.backfilled = q.getColumn(i++).getInt64();
    s.note = q.getColumn(i++).getString();
    s.detected_at = q.getColumn(i++).getInt64();
    s.decided_at = q.getColumn(i++).getInt64();
    s.error_code = q.getColumn(i++).getString();
    return s;
}

}  // namespace

suggestion_record context_store::add_suggestion(suggestion_record s) {
    std::lock_guard lock(mu_);
    s.detected_at = now_s();
    if (s.status != "pending") s.decided_at = s.detected_at;
    SQLite::Statement q(*db_, "INSERT INTO suggestions(stream, table_name, kind, column_name, old_type, new_type, "
                              "position, schema_version, action, action_type, message, status, decided_by, pattern_id, "
                              "rule_id, note, detected_at, decided_at, error_code) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    int i = 1;
    q.bind(i++, s.stream);
    q.bind(i++, s.table);
    q.bind(i++, s.kind);
    q.bind(i++, s.column);
    q.bind(i++, s.old_type);
    q.bind(i++, s.new_type);
    q.bind(i++, s.position);
    q.bind(i++, s.schema_version);
    q.bind(i++, s.action);
    q.bind(i++, s.action_type);
    q.bind(i++, s.message);
    q.bind(i++, s.status);
    q.bind(i++, s.decided_by);
    q.bind(i++, s.pattern_id);
    q.bind(i++, s.rule_id);
    q.bind(i++, s.note);
    q.bind(i++, s.detected_at);
    q.bind(i++, s.decided_at);
    q.bind(i++, s.error_code);
    q.exec();
    s.id = db_->getLastInsertRowid();
    return s;
}

std::optional<suggestion_record> context_store::find_suggestion(std::int64_t id) const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, std::string(suggestion_columns) + " WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep()) return std::nullopt;
    return read_suggestion(q);
}

std::vector<suggestion_record> context_store::list_suggestions(const std::string& stream, const std::string& status) const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, std::string(suggestion_columns) +
                                  " WHERE (?1 = '' OR stream = ?1) AND (?2 = '' OR status = ?2) ORDER BY id DESC");
    q.bind(1, stream);
    q.bind(2, status);
    std::vector<suggestion_record> out;
    while (q.executeStep()) out.push_back(read_suggestion(q));
    return out;
}

bool context_store::decide_suggestion(const suggestion_record& d) {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "UPDATE suggestions SET status = ?, decided_by = ?, pattern_id = ?, rule_id = ?, note = ?, "
                              "action_type = ?, decided_at = ? WHERE id = ? AND status = 'pending'");
    q.bind(1, d.status);
    q.bind(2, d.decided_by);
    q.bind(3, d.pattern_id);
    q.bind(4, d.rule_id);
    q.bind(5, d.note);
    q.bind(6, d.action_type);
    q.bind(7, now_s());
    q.bind(8, d.id);
    return q.exec() > 0;
}

void context_store::keep_values(const std::vector<kept_value>& values) {
    if (values.empty()) return;
    std::lock_guard lock(mu_);
    SQLite::Transaction tx(*db_);
    SQLite::Statement q(*db_, "INSERT INTO suggestion_values(suggestion_id, row_key, image) VALUES (?,?,?) "
                              "ON CONFLICT(suggestion_id, row_key) DO UPDATE SET image = excluded.image");
    std::set<std::int64_t> touched;
    for (const auto& v : values) {
        q.bind(1, v.suggestion_id);
        q.bind(2, v.row_key);
        q.bind(3, v.image);
        q.exec();
        q.reset();
        touched.insert(v.suggestion_id);
    }
    SQLite::Statement count(*db_, "UPDATE suggestions SET kept_rows = (SELECT count(*) FROM suggestion_values WHERE "
                                  "suggestion_id = ?1) WHERE id = ?1");
    for (auto id : touched) {
        count.bind(1, id);
        count.exec();
        count.reset();
    }
    tx.commit();
}

std::vector<kept_value> context_store::kept_values(std::int64_t suggestion_id, const std::string& after_key,
                                                   std::size_t limit) const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "SELECT row_key, image FROM suggestion_values WHERE suggestion_id = ? AND row_key > ? "
                              "ORDER BY row_key LIMIT ?");
    q.bind(1, suggestion_id);
    q.bind(2, after_key);
    q.bind(3, static_cast<std::int64_t>(limit));
    std::vector<kept_value> out;
    while (q.executeStep()) out.push_back({suggestion_id, q.getColumn(0).getString(), q.getColumn(1).getString()});
    return out;
}

void context_store::finish_backfill(std::int64_t suggestion_id, std::int64_t rows) {
    std::lock_guard lock(mu_);
    SQLite::Transaction tx(*db_);
    SQLite::Statement u(*db_, "UPDATE suggestions SET backfilled = ? WHERE id = ?");
    u.bind(1, rows);
    u.bind(2, suggestion_id);
    u.exec();
    SQLite::Statement d(*db_, "DELETE FROM suggestion_values WHERE suggestion_id = ?");
    d.bind(1, suggestion_id);
    d.exec();
    tx.commit();
}

void context_store::drop_kept_values(std::int64_t suggestion_id) {
    std::lock_guard lock(mu_);
    SQLite::Statement d(*db_, "DELETE FROM suggestion_values WHERE suggestion_id = ?");
    d.bind(1, suggestion_id);
    d.exec();
}

pattern_record context_store::add_pattern(pattern_record p) {
    std::lock_guard lock(mu_);
    p.created_at = now_s();
    SQLite::Statement q(*db_, "INSERT INTO patterns(kind, table_pattern, old_type, new_type, decision, action_type, "
                              "description, from_suggestion, stream, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)");
    int i = 1;
    q.bind(i++, p.kind);
    q.bind(i++, p.table_pattern);
    q.bind(i++, p.old_type);
    q.bind(i++, p.new_type);
    q.bind(i++, p.decision);
    q.bind(i++, p.action_type);
    q.bind(i++, p.description);
    q.bind(i++, p.from_suggestion);
    q.bind(i++, p.stream);
    q.bind(i++, p.created_at);
    q.exec();
    p.id = db_->getLastInsertRowid();
    return p;
}

std::vector<pattern_record> context_store::list_patterns() const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "SELECT id, kind, table_pattern, old_type, new_type, decision, action_type, description, "
                              "from_suggestion, stream, uses, created_at, last_used_at FROM patterns ORDER BY id DESC");
    std::vector<pattern_record> out;
    while (q.executeStep()) {
        pattern_record p;
        int i = 0;
        p.id = q.getColumn(i++).getInt64();
        p.kind = q.getColumn(i++).getString();
        p.table_pattern = q.getColumn(i++).getString();
        p.old_type = q.getColumn(i++).getString();
        p.new_type = q.getColumn(i++).getString();
        p.decision = q.getColumn(i++).getString();
        p.action_type = q.getColumn(i++).getString();
        p.description = q.getColumn(i++).getString();
        p.from_suggestion = q.getColumn(i++).getInt64();
        p.stream = q.getColumn(i++).getString();
        p.uses = q.getColumn(i++).getInt64();
        p.created_at = q.getColumn(i++).getInt64();
        p.last_used_at = q.getColumn(i++).getInt64();
        out.push_back(std::move(p));
    }
    return out;
}

void context_store::pattern_used(std::int64_t id) {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "UPDATE patterns SET uses = uses + 1, last_used_at = ? WHERE id = ?");
    q.bind(1, now_s());
    q.bind(2, id);
    q.exec();
}

error_pattern_record context_store::add_error_pattern(const error_pattern_record& e) {
    std::lock_guard lock(mu_);
    const auto now = now_s();
    SQLite::Statement q(*db_, "INSERT INTO error_patterns(stream, table_name, error_class, code, column_name, message, count, "
                              "first_seen, last_seen) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?8) ON CONFLICT(stream, table_name, "
                              "error_class, code, column_name) DO UPDATE SET count = count + excluded.count, message = "
                              "excluded.message, last_seen = excluded.last_seen "
                              "RETURNING count, first_seen, last_seen");
    q.bind(1, e.stream);
    q.bind(2, e.table);
    q.bind(3, e.error_class);
    q.bind(4, e.code);
    q.bind(5, e.column);
    q.bind(6, e.message);
    q.bind(7, e.count);
    q.bind(8, now);
    error_pattern_record out = e;
    if (q.executeStep()) {
        out.count = q.getColumn(0).getInt64();
        out.first_seen = q.getColumn(1).getInt64();
        out.last_seen = q.getColumn(2).getInt64();
    }
    return out;
}

std::vector<error_pattern_record> context_store::list_error_patterns(const std::string& stream) const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "SELECT stream, table_name, error_class, code, column_name, message, count, first_seen, "
                              "last_seen FROM error_patterns WHERE ?1 = '' OR stream = ?1 ORDER BY last_seen DESC, count DESC");
    q.bind(1, stream);
    std::vector<error_pattern_record> out;
    while (q.executeStep()) {
        error_pattern_record e;
        int i = 0;
        e.stream = q.getColumn(i++).getString();
        e.table = q.getColumn(i++).getString();
        e.error_class = q.getColumn(i++).getString();
        e.code = q.getColumn(i++).getString();
        e.column = q.getColumn(i++).getString();
        e.message = q.getColumn(i++).getString();
        e.count = q.getColumn(i++).getInt64();
        e.first_seen = q.getColumn(i++).getInt64();
        e.last_seen = q.getColumn(i++).getInt64();
        out.push_back(std::move(e));
    }
    return out;
}

std::int64_t context_store::data_version() const {
    std::lock_guard lock(mu_);
    return db_->execAndGet("PRAGMA data_version").getInt64();
}

bool context_store::set_autopilot(const std::string& stream, const std::string& mode) {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "UPDATE streams SET autopilot = ? WHERE name = ?");
    q.bind(1, mode);
    q.bind(2, stream);
    return q.exec() > 0;
}

}  // namespace datavor::engines::context
