#include "engines/context/context_store.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdlib>
#include <sys/stat.h>

namespace datavor::engines::context {
namespace {

class category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "datavor.context"; }
    std::string message(int ev) const override {
        switch (static_cast<context_error>(ev)) {
            case context_error::connection_exists:
                return "a connection with this name exists; remove it first or pass replace: true";
            case context_error::connection_not_found: return "no connection with this name; see list_connections";
            case context_error::bad_name: return "invalid name";
            case context_error::stream_exists:
                return "a stream with this name exists; stop it first or choose another name";
        }
        return "context error";
    }
};

std::int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Each entry moves the schema from version i to i+1. Append only.
constexpr const char* migrations[] = {
    R"sql(
CREATE TABLE connections (
  name        TEXT PRIMARY KEY,
  url         TEXT NOT NULL,   -- redacted: never holds a password
  secret_ref  TEXT NOT NULL,   -- none | secrets_file | env:VAR | pgpass
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
)sql",
    R"sql(
CREATE TABLE streams (
  name        TEXT PRIMARY KEY,
  source      TEXT NOT NULL,   -- connection name or URL without password
  target      TEXT NOT NULL,
  tables      TEXT NOT NULL,   -- JSON array of "schema.table"
  snapshot    TEXT NOT NULL,
  state       TEXT NOT NULL,   -- running | paused | stopped | failed
  last_error  TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) STRICT;
)sql",
    R"sql(
CREATE TABLE rules (
  id          INTEGER PRIMARY KEY,
  stream      TEXT NOT NULL,
  table_name  TEXT NOT NULL,   -- schema.table, schema.* or *
  kind        TEXT NOT NULL,   -- filter | mask | drop (cast, rename, derive, alert next)
  column_name TEXT NOT NULL DEFAULT '',
  condition   TEXT NOT NULL DEFAULT '',
  method      TEXT NOT NULL DEFAULT '',
  provenance  TEXT NOT NULL,   -- user | suggestion | pattern
  note        TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX rules_stream ON rules(stream, id);
)sql",
    R"sql(
ALTER TABLE rules ADD COLUMN to_value TEXT NOT NULL DEFAULT '';    -- cast/derive: a type; rename: the new name
ALTER TABLE rules ADD COLUMN expression TEXT NOT NULL DEFAULT '';  -- derive
ALTER TABLE rules ADD COLUMN on_fail TEXT NOT NULL DEFAULT '';     -- cast: null | set_aside
)sql",
    R"sql(
ALTER TABLE rules ADD COLUMN options TEXT NOT NULL DEFAULT '';     -- alert: the window (JSON)
)sql",
    R"sql(
CREATE TABLE schema_versions (
  stream      TEXT NOT NULL,
  table_name  TEXT NOT NULL,     -- schema.table at the source
  version     INTEGER NOT NULL,  -- 1, 2, … per stream and table: a new one whenever the definition changes
  columns     TEXT NOT NULL,     -- JSON array of {name, type, nullable, key}
  replica_identity TEXT NOT NULL,
  position    TEXT NOT NULL,     -- source position from which it holds
  origin      TEXT NOT NULL,     -- snapshot (the catalog when the stream opened) | relation (the log said so)
  seen_at     INTEGER NOT NULL,  -- unix seconds
  PRIMARY KEY (stream, table_name, version)
) STRICT;
)sql",
    R"sql(
CREATE TABLE suggestions (
  id            INTEGER PRIMARY KEY,
  stream        TEXT NOT NULL,
  table_name    TEXT NOT NULL,     -- schema.table at the source
  kind          TEXT NOT NULL,     -- new_column | dropped_column | type_change | nullability_change | key_change
  column_name   TEXT NOT NULL DEFAULT '',
  old_type      TEXT NOT NULL DEFAULT '',
  new_type      TEXT NOT NULL DEFAULT '',
  position      TEXT NOT NULL,     -- source position from which the new definition holds
  schema_version INTEGER NOT NULL, -- schema_versions.version that brought it
  action        TEXT NOT NULL,     -- what accepting does: add_column | keep_target_column | alter_target_type | acknowledge
  action_type   TEXT NOT NULL DEFAULT '',  -- add_column / alter_target_type: the target type
  message       TEXT NOT NULL,     -- the explanation shown to the user
  status        TEXT NOT NULL,     -- pending | accepted | rejected | auto_accepted | auto_rejected
  decided_by    TEXT NOT NULL DEFAULT '',  -- user | pattern | autopilot
  pattern_id    INTEGER NOT NULL DEFAULT 0,
  rule_id       INTEGER NOT NULL DEFAULT 0, -- the rule a decision saved (cast, drop), 0 none
  kept_rows     INTEGER NOT NULL DEFAULT 0, -- rows whose new-column value waits in suggestion_values
  backfilled    INTEGER NOT NULL DEFAULT -1, -- rows written to the target after an accept; -1 not yet
  note          TEXT NOT NULL DEFAULT '',
  detected_at   INTEGER NOT NULL,
  decided_at    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX suggestions_stream ON suggestions(stream, status);
CREATE TABLE suggestion_values (
  suggestion_id INTEGER NOT NULL,
  row_key       TEXT NOT NULL,     -- the row's key as JSON ({"id":"7"})
  image         TEXT NOT NULL,     -- the key and the new column's value (a change image, see engines/stream/row_json)
  PRIMARY KEY (suggestion_id, row_key)
) STRICT, WITHOUT ROWID;
CREATE TABLE patterns (
  id            INTEGER PRIMARY KEY,
  kind          TEXT NOT NULL,     -- the drift kind it answers
  table_pattern TEXT NOT NULL,     -- schema.* (the schema of the table it was learned on)
  old_type      TEXT NOT NULL DEFAULT '',
  new_type      TEXT NOT NULL DEFAULT '',
  decision      TEXT NOT NULL,     -- accept | reject
  action_type   TEXT NOT NULL DEFAULT '',
  description   TEXT NOT NULL,
  from_suggestion INTEGER NOT NULL,
  stream        TEXT NOT NULL,     -- where it was learned (it applies to every stream)
  uses          INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL,
  last_used_at  INTEGER NOT NULL DEFAULT 0
) STRICT;
ALTER TABLE streams ADD COLUMN autopilot TEXT NOT NULL DEFAULT 'suggest';  -- suggest | learned | all
)sql",
    R"sql(
CREATE TABLE error_patterns (
  stream      TEXT NOT NULL,
  table_name  TEXT NOT NULL,     -- schema.table in the target
  error_class TEXT NOT NULL,     -- data (a target rejection) | rule (a cast rule's set_aside)
  code        TEXT NOT NULL,     -- SQLSTATE, SQLite extended code, rule:cast
  column_name TEXT NOT NULL,     -- when the error names one, else ''
  message     TEXT NOT NULL,     -- the latest error text (masked row images never reach it)
  count       INTEGER NOT NULL,  -- changes set aside with this error
  first_seen  INTEGER NOT NULL,
  last_seen   INTEGER NOT NULL,
  PRIMARY KEY (stream, table_name, error_class, code, column_name)
) STRICT;
ALTER TABLE suggestions ADD COLUMN error_code TEXT NOT NULL DEFAULT '';  -- target_rejects: the SQLSTATE
)sql",
};
static_assert(std::size(migrations) == context_store::latest_schema_version);

connection_record read_row(SQLite::Statement& q) {
    connection_record r;
    r.name = q.getColumn(0).getString();
    auto parsed = connectors::parse_connection_url(q.getColumn(1).getString());
    if (parsed) r.spec = parsed->spec;
    r.secret_ref = q.getColumn(2).getString();
    r.created_at = q.getColumn(3).getInt64();
    r.updated_at = q.getColumn(4).getInt64();
    return r;
}

}  // namespace

const boost::system::error_category& context_category() {
    static const category_impl cat;
    return cat;
}

std::filesystem::path default_home() {
    if (const char* h = std::getenv("DATAVOR_HOME"); h && *h) return h;
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home && *home ? home : ".") / ".datavor";
}

void ensure_home(const std::filesystem::path& home) {
    std::filesystem::create_directories(home);
    ::chmod(home.c_str(), 0700);
}

context_store::context_store(const std::filesystem::path& home) : path_(home / "context.db") {
    ensure_home(home);
    db_ = std::make_unique<SQLite::Database>(path_.string(), SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    ::chmod(path_.c_str(), 0600);
    db_->exec("PRAGMA journal_mode=WAL");
    db_->exec("PRAGMA synchronous=NORMAL");
    db_->exec("PRAGMA foreign_keys=ON");
    // Short: every call runs on the server's io thread, so a context.db held
    // by another process must not freeze the MCP server; a write that times
    // out says so (and stream states are retried, see stream_manager).
    db_->setBusyTimeout(500);
    migrate();
}

context_store::~context_store() = default;

void context_store::migrate() {
    std::lock_guard lock(mu_);
    db_->exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    int current = db_->execAndGet("SELECT coalesce(max(version), 0) FROM schema_migrations").getInt();
    for (int v = current; v < latest_schema_version; ++v) {
        db_->exec(migrations[v]);
        SQLite::Statement ins(*db_, "INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)");
        ins.bind(1, v + 1);
        ins.bind(2, now_seconds());
        ins.exec();
    }
    tx.commit();
}

int context_store::schema_version() const {
    std::lock_guard lock(mu_);
    return db_->execAndGet("SELECT coalesce(max(version), 0) FROM schema_migrations").getInt();
}

boost::system::result<connection_record> context_store::put_connection(const std::string& name,
                                                                       const connectors::connection_spec& spec,
                                                                       const std::string& secret_ref, bool replace) {
    std::lock_guard lock(mu_);
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    std::int64_t created = now_seconds();
    {
        SQLite::Statement q(*db_, "SELECT created_at FROM connections WHERE name = ?");
        q.bind(1, name);
        if (q.executeStep()) {
            if (!replace) return context_error::connection_exists;
            created = q.getColumn(0).getInt64();
        }
    }
    SQLite::Statement up(*db_,
                         "INSERT INTO connections(name, url, secret_ref, created_at, updated_at) VALUES (?,?,?,?,?) "
                         "ON CONFLICT(name) DO UPDATE SET url = excluded.url, secret_ref = excluded.secret_ref, "
                         "updated_at = excluded.updated_at");
    connection_record r{name, spec, secret_ref, created, now_seconds()};
    up.bind(1, name);
    up.bind(2, spec.redacted_url());
    up.bind(3, secret_ref);
    up.bind(4, r.created_at);
    up.bind(5, r.updated_at);
    up.exec();
    tx.commit();
    return r;
}

std::vector<connection_record> context_store::list_connections() const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "SELECT name, url, secret_ref, created_at, updated_at FROM connections ORDER BY name");
    std::vector<connection_record> out;
    while (q.executeStep()) out.push_back(read_row(q));
    return out;
}

std::optional<connection_record> context_store::find_connection(const std::string& name) const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "SELECT name, url, secret_ref, created_at, updated_at FROM connections WHERE name = ?");
    q.bind(1, name);
    if (!q.executeStep()) return std::nullopt;
    return read_row(q);
}

bool context_store::remove_connection(const std::string& name) {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "DELETE FROM connections WHERE name = ?");
    q.bind(1, name);
    return q.exec() > 0;
}

namespace {

std::string tables_json(const std::vector<std::string>& tables) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartArray();
    for (const auto& t : tables) w.String(t.data(), static_cast<rapidjson::SizeType>(t.size()));
    w.EndArray();
    return {buf.GetString(), buf.GetSize()};
}

std::vector<std::string> tables_from_json(const std::string& j) {
    rapidjson::Document d;
    d.Parse(j.c_str(), j.size());
    std::vector<std::string> out;
    if (d.HasParseError() || !d.IsArray()) return out;
    for (const auto& v : d.GetArray())
        if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
    return out;
}

stream_record read_stream(SQLite::Statement& q) {
    stream_record r;
    r.name = q.getColumn(0).getString();
    r.source = q.getColumn(1).getString();
    r.target = q.getColumn(2).getString();
    r.tables = tables_from_json(q.getColumn(3).getString());
    r.snapshot = q.getColumn(4).getString();
    r.state = q.getColumn(5).getString();
    r.last_error = q.getColumn(6).getString();
    r.created_at = q.getColumn(7).getInt64();
    r.updated_at = q.getColumn(8).getInt64();
    r.autopilot = q.getColumn(9).getString();
    return r;
}

constexpr const char* stream_columns =
    "SELECT name, source, target, tables, snapshot, state, last_error, created_at, updated_at, autopilot FROM streams";

}  // namespace

void context_store::put_stream(const stream_record& s) {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_,
                        "INSERT INTO streams(name, source, target, tables, snapshot, state, last_error, created_at, "
                        "updated_at, autopilot) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET source = excluded.source, "
                        "target = excluded.target, tables = excluded.tables, snapshot = excluded.snapshot, "
                        "state = excluded.state, last_error = excluded.last_error, updated_at = excluded.updated_at, "
                        "autopilot = excluded.autopilot");
    const auto now = now_seconds();
    q.bind(1, s.name);
    q.bind(2, s.source);
    q.bind(3, s.target);
    q.bind(4, tables_json(s.tables));
    q.bind(5, s.snapshot);
    q.bind(6, s.state);
    q.bind(7, s.last_error);
    q.bind(8, s.created_at ? s.created_at : now);
    q.bind(9, now);
    q.bind(10, s.autopilot.empty() ? std::string("suggest") : s.autopilot);
    q.exec();
}

std::vector<stream_record> context_store::list_streams() const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, std::string(stream_columns) + " ORDER BY name");
    std::vector<stream_record> out;
    while (q.executeStep()) out.push_back(read_stream(q));
    return out;
}

std::optional<stream_record> context_store::find_stream(const std::string& name) const {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, std::string(stream_columns) + " WHERE name = ?");
    q.bind(1, name);
    if (!q.executeStep()) return std::nullopt;
    return read_stream(q);
}

void context_store::set_stream_state(const std::string& name, const std::string& state, const std::string& error) {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "UPDATE streams SET state = ?, last_error = ?, updated_at = ? WHERE name = ?");
    q.bind(1, state);
    q.bind(2, error);
    q.bind(3, now_seconds());
    q.bind(4, name);
    q.exec();
}

bool context_store::remove_stream(const std::string& name) {
    std::lock_guard lock(mu_);
    SQLite::Statement q(*db_, "DELETE FROM streams WHERE name = ?");
    q.bind(1, name);
    return q.exec() > 0;
}

}  // namespace datavor::engines::context
