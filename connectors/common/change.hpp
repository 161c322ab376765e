#pragma once
// The change model every source, engine and sink speaks.
//
// Values keep the source's text form (PostgreSQL's output functions, the
// binlog decoder's canonical text), so nothing loses precision on the way:
// numeric stays decimal text, timestamps keep microseconds and zone. A sink
// converts from text using the column's type. `null` and `unchanged` (a
// TOASTed value the log did not carry) are distinct states: a sink must keep
// the target's current value for `unchanged`, never write NULL over it.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace datavor::connectors {

struct value {
    enum class state : std::uint8_t { null, unchanged, text, binary };
    state st = state::null;
    std::string data;  // text form, or raw bytes when binary

    static value null_value() { return {}; }
    static value unchanged_value() { return {state::unchanged, {}}; }
    static value text_value(std::string s) { return {state::text, std::move(s)}; }
    bool is_null() const { return st == state::null; }
    bool is_unchanged() const { return st == state::unchanged; }
    bool operator==(const value&) const = default;
};

using row = std::vector<value>;

// A PostgreSQL LSN (also used as an opaque, ordered 64-bit position).
struct lsn {
    std::uint64_t v = 0;
    std::string to_string() const;          // "16/B374D848"
    static std::optional<lsn> parse(std::string_view text);
    auto operator<=>(const lsn&) const = default;
};

struct column_def {
    std::string name;
    std::uint32_t type_oid = 0;   // PostgreSQL type OID (0 when unknown)
    std::int32_t type_mod = -1;   // atttypmod
    std::string type_name;        // format_type(), e.g. "numeric(12,2)", "text[]"
    bool key = false;             // part of the replica identity / primary key
    bool nullable = true;
};

struct table_schema {
    std::uint32_t relation_id = 0;  // source identity (PG relation OID)
    std::string schema;
    std::string name;
    char replica_identity = 'd';    // d default(pk), n nothing, f full, i index
    std::vector<column_def> columns;
    std::uint64_t version = 0;      // bumps whenever the definition changes

    std::string qualified() const { return schema + "." + name; }
    std::vector<std::size_t> key_columns() const;
};

enum class change_op : char { insert = 'c', update = 'u', erase = 'd', truncate = 't', read = 'r' };

struct change_event {
    std::shared_ptr<const table_schema> table;
    change_op op = change_op::insert;
    std::optional<row> before;  // key or full old image when the source sent one
    row after;                  // empty for deletes and truncates
};

// How a sink writes an update: whether the key changed (delete the old row
// first), and the new image with every column the log did not carry
// (unchanged TOAST) taken from a FULL old image when there is one. `columns`
// lists what to write; it is every column unless some stayed unchanged, and
// then the target keeps its current values for the rest.
struct update_plan {
    bool key_changed = false;
    bool partial = false;
    row after;
    std::vector<std::size_t> columns;  // filled only when partial
};
update_plan plan_update(const change_event& update, const std::vector<std::size_t>& key_columns);

class change_spool;

// A committed source transaction as the sink applies it. Its changes are in
// `changes`, or, for a transaction too large to hold in memory, on disk in
// `spooled` (then `changes` is empty): the stream engine reads the spool in
// chunks and applies them inside one target transaction.
struct transaction {
    std::uint32_t xid = 0;
    lsn commit_lsn;  // position of the commit record
    lsn end_lsn;     // the position after it: what is confirmed once applied
    std::int64_t commit_time_us = 0;  // unix microseconds
    std::vector<change_event> changes;
    std::shared_ptr<change_spool> spooled;

    bool empty() const;  // no change at all (an idle source's position)
    std::uint64_t change_count() const;
};

}  // namespace datavor::connectors
