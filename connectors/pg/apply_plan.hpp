#pragma once
// The sans-I/O half of pg_sink: turns changes into writes (apply_action), in
// commit order, groups consecutive writes of one shape into runs that the
// target can take in one statement, and builds the SQL and the COPY text for
// them. Values never enter SQL text: they travel as COPY text or as bound
// parameters in PostgreSQL's text form; identifiers are always quoted.
//
// A run is a stretch of consecutive actions on one table and of one kind:
// upserts, updates of the same columns, or deletes. Within a run only the
// last write of a key counts (the merge keeps it), and deletes commute with
// each other, so a run applied as one statement leaves the table as the same
// actions applied one by one would. Runs never reorder anything across
// tables or kinds.
#include "connectors/common/change.hpp"

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace datavor::connectors::pg {

struct apply_action {
    // upsert: a whole row. update: the columns a partial update carried
    // (unchanged TOAST left out), an UPDATE only: a row the target lacks
    // cannot be rebuilt from them. move: a partial update that changed the key.
    enum class kind : std::uint8_t { upsert, update, erase, truncate, move };
    const table_schema* table = nullptr;
    kind k = kind::upsert;
    bool insert = false;          // an insert or snapshot row: a plain COPY into the table may take it
    bool solo = false;            // never in a run: a truncate, a move, a NULL in the key (no join matches NULL)
    const row* values = nullptr;  // upsert, update, move: the new row; erase: the key's source
    const std::vector<std::size_t>* columns = nullptr;  // update, move: the columns written
    const row* old_key = nullptr;                       // move: where the old key is read
};

// Appends the writes of one change, as the SQLite sink applies it (one
// semantic for every target): an insert or a full update upserts; a partial
// update (unchanged TOAST) updates the carried columns; a key change deletes
// the old key first, or, when partial, moves the row (see table_sql::move_*);
// a delete deletes by key; a truncate empties the table. `plans` keeps the
// partial updates' rows alive while the actions point at them.
void add_actions(const change_event& c, const std::vector<std::size_t>& keys, std::vector<apply_action>& out,
                 std::deque<update_plan>& plans);

// How many actions from the first one form its run (at least 1).
std::size_t run_length(std::span<const apply_action> actions);

// One field of a COPY text row: \N for NULL, backslash escapes for the
// backslash, tab, newline and carriage return; the rest as is.
void append_copy_field(std::string& out, const value& v);

// The SQL of one table definition (target table named as the source's).
class table_sql {
public:
    explicit table_sql(const table_schema& t);

    const std::string& target() const { return target_; }  // "schema"."name"
    const std::vector<std::size_t>& keys() const { return keys_; }
    std::size_t column_count() const { return names_.size(); }

    // INSERT … VALUES ($1, …) ON CONFLICT (key) DO UPDATE (or NOTHING when
    // every column is in the key); parameters: every column, in order.
    std::string upsert() const;
    // A key condition: `null_keys` has '1' at i when key i is NULL (then
    // "k IS NULL"), '0' otherwise ("k = $n", n counting from `first_param`).
    std::string key_condition(std::string_view null_keys, std::size_t first_param) const;
    // DELETE … WHERE key; parameters: the non-NULL keys, in key order.
    std::string erase(std::string_view null_keys) const;
    // UPDATE … SET the columns WHERE key; parameters: the columns, then the
    // key's non-NULL values.
    std::string update(const std::vector<std::size_t>& columns, std::string_view null_keys) const;
    std::string truncate() const { return "TRUNCATE " + target_; }
    // A move is three statements, harmless when replayed over a copy that is
    // ahead (a re-snapshot): delete the old row if the new key is there
    // already (parameters: old key, then new key); update the new key's row
    // (update()); update the old key's row, which moves it (update()).
    std::string move_erase_old(std::string_view old_null_keys, std::string_view new_null_keys) const;
    // COPY straight into the table, every column.
    std::string copy_into_target() const;

    // Staging (a temporary table per table definition, its columns typed as
    // the target's: seq, c0, c1, …, emptied at commit): create, COPY into it
    // (`columns`: nullptr = every column), and the merges that write the last
    // row of each key into the target: an upsert of whole rows, or an UPDATE
    // of the carried columns.
    std::string create_upsert_stage(std::string_view stage) const;
    std::string copy_into_upsert_stage(std::string_view stage, const std::vector<std::size_t>* columns) const;
    std::string merge_upsert_stage(std::string_view stage) const;
    std::string merge_update_stage(std::string_view stage, const std::vector<std::size_t>& columns) const;
    // The same for deletes: key columns only (c0, c1, … in key order).
    std::string create_erase_stage(std::string_view stage) const;
    std::string copy_into_erase_stage(std::string_view stage) const;
    std::string merge_erase_stage(std::string_view stage) const;

private:
    std::string list(const std::vector<std::size_t>* columns) const;
    std::string target_;
    std::vector<std::string> names_;  // quoted
    std::vector<std::size_t> keys_;
};

}  // namespace datavor::connectors::pg
