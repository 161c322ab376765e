// context_store: the rules table (schema version 3).
#include "engines/context/context_store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>

namespace datavor::engines::context {

namespace {
constexpr const char* rule_columns =
    "SELECT id, stream, table_name, kind, column_name, condition, method, provenance, note, created_at, to_value, "
    "expression, on_fail, options FROM rules";

rules::rule read_rule(SQLite::Statement& q) {
    rules::rule r;
    r.id = q.getColumn(0).getInt64();
    r.stream = q.getColumn(1).getString();
    r.table = q.getColumn(2).getString();
    r.kind = q.getColumn(3).getString();
    r.column = q.getColumn(4).getString();
    r.condition = q.getColumn(5).getString();
    r.method = q.getColumn(6).getString();
    r.provenance = q.getColumn(7).getString();
    r.note = q.getColumn(8).getString();
    r.created_at = q.getColumn(9).getInt64();
    r.to = q.getColumn(10).getString();
    r.expression = q.getColumn(11).getString();
    r.on_fail = q.getColumn(12).getString();
    r.options = q.getColumn(13).getString();
    return r;
}
}  // namespace

rules::rule context_store::add_rule(rules::rule r) {
    std::lock_guard lock(mu_);
    r.created_at = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    SQLite::Statement q(*db_, "INSERT INTO rules(stream, table_name, kind, column_name, condition, method, provenance, "
                              "note, created_at, to_value, expression, on_fail, options) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    q.bind(1, r.stream);
    q.bind(2, r.table);
    q.bind(3, r.kind);
    q.bind(4, r.column);
    q.bind(5, r.condition);
    q.bind(6, r.method);
    q.bind(7, r.provenance);
    q.bind(8, r.note);
    q.bind(9, r.created_at);
    q.bind(10, r.to);
    q.bind(11, r.expression);
    q.bind(12, r.on_fail);
    q.bind(13, r.options);
    q.exec();
    r.id = db_->getLastInsertRowid();
    return r;
}

std::vector<rules::rule> context_store::list_rules(const std::string& stream) const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, std::string(rule_columns) + (stream.empty() ? " ORDER BY id" : " WHERE stream = ? ORDER BY id"));
    if (!stream.empty()) q.bind(1, stream);
    std::vector<rules::rule> out;
    while (q.executeStep()) out.push_back(read_rule(q));
    return out;
}

std::optional<rules::rule> context_store::remove_rule(std::int64_t id) {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, std::string(rule_columns) + " WHERE id = ?");
    q.bind(1, id);
    if (!q.executeStep()) return std::nullopt;
    auto r = read_rule(q);
    SQLite::Statement d(*db_, "DELETE FROM rules WHERE id = ?");
    d.bind(1, id);
    d.exec();
    return r;
}

}  // namespace datavor::engines::context
