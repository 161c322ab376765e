#pragma once
// The Suggestion Engine: schema drift on a live stream becomes a suggestion
// with a concrete action; a decision (accept, reject) is applied, saved as a
// rule where one is needed, recorded in the ledger and remembered as a
// pattern; under a stream's autopilot, a drift that matches a pattern (or
// every drift, with `all`) is decided by itself.
//
//   stream meets a definition ─▶ on_schema: schema history (context.db)
//       └ drift vs the previous version ─▶ suggestion (pending, or decided by autopilot)
//   pending new column ─▶ withholds(): a rule that keeps it out of the target;
//       the stream keeps its values aside by row key (context.db suggestion_values)
//   accept ─▶ the stream adds the column and backfills the kept values (to_apply, backfilled)
//
// Thread safety: every member may be called from any strand (context_store
// and the ledger are thread-safe); a stream calls on_schema on its strand.
#include "engines/context/context_store.hpp"
#include "engines/rules/rule_set.hpp"

#include <optional>
#include <string>
#include <vector>

namespace datavor::engines::ledger {
class ledger;
}

namespace datavor::engines::suggest {

struct drift_outcome {
    std::int64_t version = 0;  // the schema version recorded, 0 when the definition is unchanged
    std::vector<context::suggestion_record> created;  // pending or decided by autopilot
    bool rules_changed = false;  // the stream must reload its rules before the next change
};

// Changes the target rejected in one committed batch, grouped.
struct reject_group {
    std::string table;         // schema.table in the target
    std::string source_table;  // schema.table at the source ("" when unknown)
    std::string error_class, code, message;
    std::int64_t count = 0;
};

struct decision {
    std::optional<context::suggestion_record> suggestion;  // as decided
    std::optional<context::pattern_record> pattern;        // learned from it (a user's decision)
    std::optional<rules::rule> rule;                       // saved by it (a cast, a drop)
    std::string error;                                     // why it could not be decided
};

class suggest_engine {
public:
    suggest_engine(context::context_store& ctx, ledger::ledger* ledger);

    // The stream met this definition of `t` (origin snapshot: the catalog at
    // open; relation: the log). Records it in the schema history and turns
    // drift against the previous version into suggestions.
    // `autopilot`: suggest | learned | all; "" takes the saved stream's (suggest when it has no record).
    drift_outcome on_schema(const std::string& stream, const connectors::table_schema& t, const std::string& position,
                            const std::string& origin, const std::string& autopilot = {});
    // Rows set aside: counted in the error patterns; a value the target's
    // column is too narrow for (SQLSTATE 22001, 22003) becomes a
    // target_rejects suggestion (widen the target's columns, then retry),
    // once per stream, table and code while one is pending or was rejected.
    std::vector<context::suggestion_record> on_rejects(const std::string& stream, const std::vector<reject_group>& groups,
                                                       const std::string& autopilot = {});
    // Rules (kind "withhold", id = -suggestion id) that keep each pending new
    // column out of the target while its values are kept aside.
    std::vector<rules::rule> withholds(const std::string& stream) const;
    // Accepted drift the stream still has to carry out in the target (a
    // backfill, a column type), oldest first.
    std::vector<context::suggestion_record> to_apply(const std::string& stream) const;

    // `type` (new_column): the target type, when not the source's (saved as a cast rule).
    decision accept(std::int64_t id, const std::string& type, const std::string& note);
    decision reject(std::int64_t id, const std::string& note);
    // The stream carried out an accepted suggestion: `rows` written (backfill).
    void applied(const context::suggestion_record& s, std::int64_t rows, const std::string& detail);

    context::context_store& context() { return ctx_; }

private:
    // Applies a decision (user, or autopilot with a pattern) and records it.
    decision decide(context::suggestion_record s, bool accept, const std::string& type, const std::string& note,
                    const std::string& by, const context::pattern_record* pattern);
    std::optional<context::pattern_record> matching_pattern(const context::suggestion_record& s) const;
    std::string autopilot_of(const std::string& stream, const std::string& given) const;
    void record(const std::string& stream, const std::string& op, const std::string& message, const std::string& body,
                const std::string& table, const std::string& position);
    context::context_store& ctx_;
    ledger::ledger* ledger_;
};

// What a pattern says, in words ("new text columns on public.* tables: add as text").
std::string describe(const context::pattern_record& p);

}  // namespace datavor::engines::suggest
