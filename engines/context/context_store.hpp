#pragma once
// context.db: the local knowledge base (connections now; streams, schema
// history, rules, suggestions and error patterns as later migrations add them).
// SQLite in WAL mode, versioned migrations applied on open.
//
// Thread safety: every public call takes an internal mutex; calls are short
// (one indexed statement), so callers may use it from any strand.
// Never stores a password: connections carry a secret_ref that says where the
// password lives (see secret_store).
#include "connectors/common/connection_spec.hpp"
#include "engines/rules/rule_set.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace SQLite {
class Database;
}

namespace datavor::engines::context {

struct connection_record {
    std::string name;
    connectors::connection_spec spec;  // no password inside
    std::string secret_ref;            // "none", "secrets_file", "env:VAR", "pgpass"
    std::int64_t created_at = 0;       // unix seconds
    std::int64_t updated_at = 0;
};

// A stream as saved in context.db: enough to start it again after a restart.
struct stream_record {
    std::string name;
    std::string source;   // connection name or URL without password
    std::string target;   // connection name or URL
    std::vector<std::string> tables;
    std::string snapshot = "initial";  // initial | never | only
    std::string state = "running";     // running | paused | stopped | failed
    std::string last_error;
    std::int64_t created_at = 0;
    std::int64_t updated_at = 0;
    std::string autopilot = "suggest";  // suggest | learned | all (set with set_autopilot)
};

// Schema drift the stream met, and what became of it (engines/suggest).
struct suggestion_record {
    std::int64_t id = 0;
    std::string stream, table, kind, column, old_type, new_type, position;
    std::int64_t schema_version = 0;
    std::string action;       // add_column | keep_target_column | alter_target_type | acknowledge
    std::string action_type;  // the target type for add_column / alter_target_type
    std::string message;
    std::string status = "pending";  // pending | accepted | rejected | auto_accepted | auto_rejected
    std::string decided_by;          // user | pattern | autopilot
    std::int64_t pattern_id = 0, rule_id = 0;
    std::int64_t kept_rows = 0;
    std::int64_t backfilled = -1;    // -1: not (yet) backfilled
    std::string note;
    std::int64_t detected_at = 0, decided_at = 0;
    std::string error_code;  // target_rejects: the code the target answered with
};

// A decision remembered: the next similar drift can be handled by itself.
struct pattern_record {
    std::int64_t id = 0;
    std::string kind, table_pattern, old_type, new_type, decision, action_type, description, stream;
    std::int64_t from_suggestion = 0, uses = 0, created_at = 0, last_used_at = 0;
};

// Changes a target rejected, grouped (schema version 8): what keeps failing.
struct error_pattern_record {
    std::string stream, table, error_class, code, column, message;
    std::int64_t count = 0, first_seen = 0, last_seen = 0;
};

// One kept value of a new column: the row's key and an image (key + value).
struct kept_value {
    std::int64_t suggestion_id = 0;
    std::string row_key, image;
};

enum class context_error { connection_exists = 1, connection_not_found, bad_name, stream_exists };
const boost::system::error_category& context_category();
inline boost::system::error_code make_error_code(context_error e) { return {static_cast<int>(e), context_category()}; }

class context_store {
public:
    // Opens (creating when missing) home/context.db and migrates it.
    explicit context_store(const std::filesystem::path& home);
    ~context_store();

    static constexpr int latest_schema_version = 8;
    int schema_version() const;
    std::filesystem::path path() const { return path_; }

    // Adds a connection; with replace=false an existing name is an error.
    boost::system::result<connection_record> put_connection(const std::string& name,
                                                            const connectors::connection_spec& spec,
                                                            const std::string& secret_ref, bool replace);
    std::vector<connection_record> list_connections() const;
    std::optional<connection_record> find_connection(const std::string& name) const;
    bool remove_connection(const std::string& name);

    // Streams (schema version 2).
    void put_stream(const stream_record& s);
    std::vector<stream_record> list_streams() const;
    std::optional<stream_record> find_stream(const std::string& name) const;
    void set_stream_state(const std::string& name, const std::string& state, const std::string& error = {});
    bool remove_stream(const std::string& name);

    // Rules (schema version 3; context_rules.cpp): saved in order, applied in order.
    rules::rule add_rule(rules::rule r);  // assigns id and created_at
    std::vector<rules::rule> list_rules(const std::string& stream) const;  // "" lists every stream's
    std::optional<rules::rule> remove_rule(std::int64_t id);

    // Schema history (schema version 6; context_schema.cpp): a table's
    // definition as the stream saw it, one row per change of definition.
    struct schema_version_record {
        std::string stream, table;
        std::int64_t version = 0;
        std::string columns_json;  // [{name, type, nullable, key}]
        std::string replica_identity, position, origin;
        std::int64_t seen_at = 0;
    };
    // Records `t` when it differs from the last version recorded for the
    // stream and table; returns the new version, or 0 when nothing changed.
    std::int64_t record_schema(const std::string& stream, const connectors::table_schema& t, const std::string& position,
                               const std::string& origin);
    std::vector<schema_version_record> schema_history(const std::string& stream, const std::string& table) const;

    // Suggestions, kept values and patterns (schema version 7; context_suggestions.cpp).
    suggestion_record add_suggestion(suggestion_record s);  // assigns id and detected_at
    std::optional<suggestion_record> find_suggestion(std::int64_t id) const;
    // "" for every stream / status; newest first.
    std::vector<suggestion_record> list_suggestions(const std::string& stream, const std::string& status) const;
    // Records a decision (status, decided_by, pattern, rule, note, action_type); false when it was not pending.
    bool decide_suggestion(const suggestion_record& decided);
    // Upserts kept values in one transaction and refreshes each suggestion's kept_rows.
    void keep_values(const std::vector<kept_value>& values);
    // A page of a suggestion's kept values in key order, after `after_key`.
    std::vector<kept_value> kept_values(std::int64_t suggestion_id, const std::string& after_key, std::size_t limit) const;
    // The backfill is done: records how many rows it wrote and forgets the kept values.
    void finish_backfill(std::int64_t suggestion_id, std::int64_t rows);
    void drop_kept_values(std::int64_t suggestion_id);
    pattern_record add_pattern(pattern_record p);
    std::vector<pattern_record> list_patterns() const;
    void pattern_used(std::int64_t id);
    // Adds `count` to the error pattern (created when new); returns it as stored.
    error_pattern_record add_error_pattern(const error_pattern_record& e);
    std::vector<error_pattern_record> list_error_patterns(const std::string& stream) const;  // most recent first
    // SQLite's data_version: changes when another process (a `datavor serve`
    // next to a `datavor stream run`) commits to context.db.
    std::int64_t data_version() const;
    // suggest | learned | all; false when there is no such stream.
    bool set_autopilot(const std::string& stream, const std::string& mode);

private:
    void migrate();
    std::filesystem::path path_;
    mutable std::mutex mu_;
    std::unique_ptr<SQLite::Database> db_;
};

// Creates the folder (0700) that holds context.db, ledger.db and secrets.
void ensure_home(const std::filesystem::path& home);
// --home, else DATAVOR_HOME, else ~/.datavor
std::filesystem::path default_home();

}  // namespace datavor::engines::context

template <>
struct boost::system::is_error_code_enum<datavor::engines::context::context_error> : std::true_type {};
