// context_store: schema history (schema version 6).
#include "engines/context/context_store.hpp"

#include "connectors/common/sql_quote.hpp"

#include <SQLiteCpp/SQLiteCpp.h>

#include <chrono>

namespace datavor::engines::context {

namespace {
std::string columns_json(const connectors::table_schema& t) {
    std::string out = "[";
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
        const auto& c = t.columns[i];
        out += (i ? "," : "") + std::string("{\"name\":") + connectors::json_quote(c.name) +
               ",\"type\":" + connectors::json_quote(c.type_name.empty() ? "oid " + std::to_string(c.type_oid) : c.type_name) +
               ",\"nullable\":" + (c.nullable ? "true" : "false") + ",\"key\":" + (c.key ? "true" : "false") + "}";
    }
    return out + "]";
}
}  // namespace

std::int64_t context_store::record_schema(const std::string& stream, const connectors::table_schema& t,
                                          const std::string& position, const std::string& origin) {
    std::lock_guard lock(mu_);
    const auto cols = columns_json(t);
    const std::string identity(1, t.replica_identity);
    SQLite::Statement last(*db_, "SELECT version, columns, replica_identity FROM schema_versions WHERE stream = ? AND "
                                 "table_name = ? ORDER BY version DESC LIMIT 1");
    last.bind(1, stream);
    last.bind(2, t.qualified());
    std::int64_t version = 0;
    if (last.executeStep()) {
        version = last.getColumn(0).getInt64();
        if (last.getColumn(1).getString() == cols && last.getColumn(2).getString() == identity) return 0;
    }
    SQLite::Statement ins(*db_, "INSERT INTO schema_versions(stream, table_name, version, columns, replica_identity, "
                                "position, origin, seen_at) VALUES (?,?,?,?,?,?,?,?)");
    ins.bind(1, stream);
    ins.bind(2, t.qualified());
    ins.bind(3, version + 1);
    ins.bind(4, cols);
    ins.bind(5, identity);
    ins.bind(6, position);
    ins.bind(7, origin);
    ins.bind(8, static_cast<std::int64_t>(
                    std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()));
    ins.exec();
    return version + 1;
}

std::vector<context_store::schema_version_record> context_store::schema_history(const std::string& stream,
                                                                               const std::string& table) const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "SELECT stream, table_name, version, columns, replica_identity, position, origin, seen_at "
                              "FROM schema_versions WHERE stream = ? AND table_name = ? ORDER BY version");
    q.bind(1, stream);
    q.bind(2, table);
    std::vector<schema_version_record> out;
    while (q.executeStep()) {
        schema_version_record r;
        r.stream = q.getColumn(0).getString();
        r.table = q.getColumn(1).getString();
        r.version = q.getColumn(2).getInt64();
        r.columns_json = q.getColumn(3).getString();
        r.replica_identity = q.getColumn(4).getString();
        r.position = q.getColumn(5).getString();
        r.origin = q.getColumn(6).getString();
        r.seen_at = q.getColumn(7).getInt64();
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace datavor::engines::context
