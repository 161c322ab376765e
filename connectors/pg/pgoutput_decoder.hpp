#pragma once
// Decodes pgoutput, PostgreSQL's logical replication output plugin (docs:
// "Logical Replication Message Formats"), protocol versions 1 and 2. Sans-I/O:
// one message's bytes in (an XLogData payload, or one row of
// pg_logical_slot_get_binary_changes), one event out. Every read is
// bounds-checked; a truncated or hostile message is an error, never UB.
//
// Version 2 adds streamed in-progress transactions: between Stream Start and
// Stream Stop, Relation, Type, Insert, Update, Delete, Truncate and Message
// carry the (sub)transaction id, exposed here as `xid`.
//
// Values stay PostgreSQL's text output ('t') or raw bytes ('b'); a TOASTed
// value the log did not carry is value::unchanged. column_def::type_name is
// left empty: the source fills it from the catalog (format_type).
#include "connectors/common/change.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

namespace datavor::connectors::pg {

enum class pgoutput_error {
    truncated = 1,          // the message ends before a field it must carry
    trailing_data,          // bytes left after a complete message
    unknown_message,        // a tag this protocol version does not define
    unknown_relation,       // a change for a relation id no Relation message described
    column_count_mismatch,  // a tuple whose column count differs from its relation's
    bad_tuple_kind,         // a tuple column kind other than n, u, t, b
    bad_tuple_marker,       // not 'N', 'K' or 'O' where a tuple must start
    bad_value,              // a negative count or length, an unknown replica identity
    stream_state,           // S inside a stream; E, c or A where they cannot be; B or C inside a stream
};

const boost::system::error_category& pgoutput_category();
inline boost::system::error_code make_error_code(pgoutput_error e) {
    return {static_cast<int>(e), pgoutput_category()};
}

// Times are unix microseconds (the wire's 2000-01-01 epoch is converted).
struct begin_msg {
    lsn final_lsn;  // the commit record's LSN
    std::int64_t commit_time_us = 0;
    std::uint32_t xid = 0;
};

struct commit_msg {
    std::uint8_t flags = 0;  // unused by PostgreSQL so far
    lsn commit_lsn;
    lsn end_lsn;  // the position to confirm once the transaction is applied
    std::int64_t commit_time_us = 0;
};

// The transaction came from another node (sent when the slot's origin filter allows it).
struct origin_msg {
    lsn origin_lsn;
    std::string name;
};

// A relation's definition. `table` is the cached schema that later changes
// point to; `changed` is false when the server re-sent an identical definition
// (it does so in every session and after cache invalidations).
struct relation_msg {
    std::optional<std::uint32_t> xid;
    std::shared_ptr<const table_schema> table;
    bool changed = true;
};

// A non-builtin type used by a following Relation (enum, domain, composite...).
struct type_msg {
    std::optional<std::uint32_t> xid;
    std::uint32_t oid = 0;
    std::string schema;
    std::string name;
};

struct insert_msg {
    std::optional<std::uint32_t> xid;
    std::shared_ptr<const table_schema> table;
    row new_row;
};

// old_kind is 'K' (replica identity key columns, the rest null), 'O' (the
// whole old row, REPLICA IDENTITY FULL) or 0 when no old row was sent.
struct update_msg {
    std::optional<std::uint32_t> xid;
    std::shared_ptr<const table_schema> table;
    char old_kind = 0;
    std::optional<row> old_row;
    row new_row;
};

struct erase_msg {
    std::optional<std::uint32_t> xid;
    std::shared_ptr<const table_schema> table;
    char old_kind = 'K';  // 'K' or 'O', as in update_msg
    row old_row;
};

struct truncate_msg {
    std::optional<std::uint32_t> xid;
    std::vector<std::shared_ptr<const table_schema>> tables;
    bool cascade = false;
    bool restart_identity = false;
};

// pg_logical_emit_message (sent only with the plugin option messages 'true').
struct message_msg {
    std::optional<std::uint32_t> xid;
    bool transactional = false;
    lsn message_lsn;
    std::string prefix;
    std::string content;
};

struct stream_start_msg {
    std::uint32_t xid = 0;
    bool first_segment = false;
};

struct stream_stop_msg {};

struct stream_commit_msg {
    std::uint32_t xid = 0;
    std::uint8_t flags = 0;
    lsn commit_lsn;
    lsn end_lsn;
    std::int64_t commit_time_us = 0;
};

// Discards the streamed changes of `subxid` (== xid: the whole transaction).
struct stream_abort_msg {
    std::uint32_t xid = 0;
    std::uint32_t subxid = 0;
};

using pgoutput_message =
    std::variant<begin_msg, commit_msg, origin_msg, relation_msg, type_msg, insert_msg, update_msg, erase_msg,
                 truncate_msg, message_msg, stream_start_msg, stream_stop_msg, stream_commit_msg, stream_abort_msg>;

// Decodes the messages of one replication session in order, keeping what the
// protocol makes stateful: the relation cache (Relation messages by relation
// id) and whether a stream block is open.
//
// A Relation message takes effect at once, also inside a stream block: each
// change is decoded with the latest definition received before it. pgoutput
// re-sends a definition in every context (each streamed transaction, the
// regular flow) before the first change that needs it and after every
// invalidation, so this holds even when a streamed transaction's DDL makes
// its definition differ from the regular flow's; the version then goes up
// each time the definitions alternate.
//
// Lifecycle: one per replication session; after a reconnect call
// reset_stream() (the server starts outside a stream and re-sends every
// relation before use; keeping the cache keeps versions counting). Not
// thread-safe: it lives on its stream's strand. No I/O, so nothing to cancel.
// A failed decode leaves the state as it was.
class pgoutput_decoder {
public:
    // protocol_version is the proto_version the slot was started with: 1 or 2.
    explicit pgoutput_decoder(int protocol_version = 1);

    boost::system::result<pgoutput_message> decode(std::string_view message);

    // The cached definition of a relation id, or nullptr.
    std::shared_ptr<const table_schema> relation(std::uint32_t relation_id) const;
    bool in_stream() const { return in_stream_; }
    void reset_stream() { in_stream_ = false; }
    int protocol_version() const { return protocol_version_; }
    // Fills in what a Relation message does not carry (type names,
    // nullability) when a definition is new; see pg_source.
    void set_enricher(std::function<void(table_schema&)> enrich) { enrich_ = std::move(enrich); }

private:
    // Caches a decoded definition: identical to the cached one keeps that
    // (same pointer, same version); otherwise it replaces it with version + 1.
    // Holders of the previous shared_ptr keep a valid, unchanged schema.
    relation_msg remember(std::optional<std::uint32_t> xid, table_schema decoded);

    int protocol_version_;
    bool in_stream_ = false;
    std::unordered_map<std::uint32_t, std::shared_ptr<const table_schema>> relations_;
    std::function<void(table_schema&)> enrich_;
};

}  // namespace datavor::connectors::pg

template <>
struct boost::system::is_error_code_enum<datavor::connectors::pg::pgoutput_error> : std::true_type {};
