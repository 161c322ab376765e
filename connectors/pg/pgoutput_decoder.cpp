#include "connectors/pg/pgoutput_decoder.hpp"

#include "connectors/pg/replication_protocol.hpp"

#include <algorithm>
#include <cassert>

namespace datavor::connectors::pg {
namespace {

using boost::system::result;
using relation_map = std::unordered_map<std::uint32_t, std::shared_ptr<const table_schema>>;

class pgoutput_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "datavor.pg.pgoutput"; }
    std::string message(int ev) const override {
        switch (static_cast<pgoutput_error>(ev)) {
            case pgoutput_error::truncated: return "pgoutput message is truncated";
            case pgoutput_error::trailing_data: return "pgoutput message has unexpected trailing bytes";
            case pgoutput_error::unknown_message: return "unknown pgoutput message type for this protocol version";
            case pgoutput_error::unknown_relation: return "change for a relation id without a Relation message";
            case pgoutput_error::column_count_mismatch: return "tuple column count differs from its relation's";
            case pgoutput_error::bad_tuple_kind: return "unknown tuple column kind";
            case pgoutput_error::bad_tuple_marker: return "expected a tuple marker ('N', 'K' or 'O')";
            case pgoutput_error::bad_value: return "invalid count, length or replica identity";
            case pgoutput_error::stream_state: return "stream message out of order";
        }
        return "unknown pgoutput error";
    }
};

// Relation, Type, Insert, Update, Delete, Truncate and Message lead with the
// transaction id when sent inside a stream block.
bool carries_stream_xid(char tag) {
    switch (tag) {
        case 'R': case 'Y': case 'I': case 'U': case 'D': case 'T': case 'M': return true;
        default: return false;
    }
}

// PostgreSQL writes an empty namespace for pg_catalog (logicalrep_write_namespace).
std::string namespace_name(std::string_view wire) {
    return wire.empty() ? std::string("pg_catalog") : std::string(wire);
}

result<std::shared_ptr<const table_schema>> find_relation(const relation_map& relations, std::uint32_t id) {
    auto it = relations.find(id);
    if (it == relations.end()) return pgoutput_error::unknown_relation;
    return it->second;
}

// TupleData: Int16 column count, then per column a kind byte and, for 't' and
// 'b', an Int32 length and the bytes.
result<row> read_tuple(wire_reader& r, const table_schema& table) {
    const std::int16_t ncols = r.i16();
    if (!r.ok()) return pgoutput_error::truncated;
    if (ncols < 0) return pgoutput_error::bad_value;
    if (static_cast<std::size_t>(ncols) != table.columns.size()) return pgoutput_error::column_count_mismatch;
    row out;
    // Each column takes at least one byte: never reserve more than the input can hold.
    out.reserve(std::min<std::size_t>(static_cast<std::size_t>(ncols), r.remaining()));
    for (std::int16_t i = 0; i < ncols; ++i) {
        const auto kind = static_cast<char>(r.u8());
        if (!r.ok()) return pgoutput_error::truncated;
        switch (kind) {
            case 'n': out.push_back(value::null_value()); break;
            case 'u': out.push_back(value::unchanged_value()); break;
            case 't':
            case 'b': {
                const std::int32_t len = r.i32();
                if (!r.ok()) return pgoutput_error::truncated;
                if (len < 0) return pgoutput_error::bad_value;
                const auto data = r.bytes(static_cast<std::size_t>(len));
                if (!r.ok()) return pgoutput_error::truncated;
                out.push_back(value{kind == 't' ? value::state::text : value::state::binary, std::string(data)});
                break;
            }
            default: return pgoutput_error::bad_tuple_kind;
        }
    }
    return out;
}

// A tuple introduced by its marker byte, which must be one of `allowed`.
result<row> read_marked_tuple(wire_reader& r, const table_schema& table, std::string_view allowed, char& marker) {
    marker = static_cast<char>(r.u8());
    if (!r.ok()) return pgoutput_error::truncated;
    if (allowed.find(marker) == std::string_view::npos) return pgoutput_error::bad_tuple_marker;
    return read_tuple(r, table);
}

result<pgoutput_message> read_begin(wire_reader& r) {
    begin_msg m;
    m.final_lsn = lsn{r.u64()};
    m.commit_time_us = pg_to_unix_us(r.i64());
    m.xid = r.u32();
    if (!r.ok()) return pgoutput_error::truncated;
    return m;
}

result<pgoutput_message> read_commit(wire_reader& r) {
    commit_msg m;
    m.flags = r.u8();
    m.commit_lsn = lsn{r.u64()};
    m.end_lsn = lsn{r.u64()};
    m.commit_time_us = pg_to_unix_us(r.i64());
    if (!r.ok()) return pgoutput_error::truncated;
    return m;
}

result<pgoutput_message> read_origin(wire_reader& r) {
    origin_msg m;
    m.origin_lsn = lsn{r.u64()};
    m.name = std::string(r.cstring());
    if (!r.ok()) return pgoutput_error::truncated;
    return m;
}

result<pgoutput_message> read_relation(wire_reader& r, std::optional<std::uint32_t> xid) {
    auto t = std::make_shared<table_schema>();
    t->relation_id = r.u32();
    t->schema = namespace_name(r.cstring());
    t->name = std::string(r.cstring());
    t->replica_identity = static_cast<char>(r.u8());
    const std::int16_t ncols = r.i16();
    if (!r.ok()) return pgoutput_error::truncated;
    if (std::string_view("dnfi").find(t->replica_identity) == std::string_view::npos) return pgoutput_error::bad_value;
    if (ncols < 0) return pgoutput_error::bad_value;
    // A column takes at least 10 bytes (flags, NUL, oid, typmod).
    t->columns.reserve(std::min<std::size_t>(static_cast<std::size_t>(ncols), r.remaining() / 10));
    for (std::int16_t i = 0; i < ncols; ++i) {
        column_def c;
        c.key = (r.u8() & 1) != 0;  // LOGICALREP_IS_REPLICA_IDENTITY
        c.name = std::string(r.cstring());
        c.type_oid = r.u32();
        c.type_mod = r.i32();
        if (!r.ok()) return pgoutput_error::truncated;
        t->columns.push_back(std::move(c));
    }
    return relation_msg{xid, std::move(t), true};
}

result<pgoutput_message> read_type(wire_reader& r, std::optional<std::uint32_t> xid) {
    type_msg m;
    m.xid = xid;
    m.oid = r.u32();
    m.schema = namespace_name(r.cstring());
    m.name = std::string(r.cstring());
    if (!r.ok()) return pgoutput_error::truncated;
    return m;
}

result<pgoutput_message> read_insert(wire_reader& r, std::optional<std::uint32_t> xid, const relation_map& rels) {
    const std::uint32_t relid = r.u32();
    if (!r.ok()) return pgoutput_error::truncated;
    auto table = find_relation(rels, relid);
    if (!table) return table.error();
    char marker = 0;
    auto tuple = read_marked_tuple(r, **table, "N", marker);
    if (!tuple) return tuple.error();
    return insert_msg{xid, std::move(*table), std::move(*tuple)};
}

result<pgoutput_message> read_update(wire_reader& r, std::optional<std::uint32_t> xid, const relation_map& rels) {
    const std::uint32_t relid = r.u32();
    if (!r.ok()) return pgoutput_error::truncated;
    auto table = find_relation(rels, relid);
    if (!table) return table.error();
    update_msg m;
    m.xid = xid;
    m.table = std::move(*table);
    char marker = 0;
    auto first = read_marked_tuple(r, *m.table, "KON", marker);
    if (!first) return first.error();
    if (marker == 'N') {
        m.new_row = std::move(*first);
        return m;
    }
    m.old_kind = marker;
    m.old_row = std::move(*first);
    auto second = read_marked_tuple(r, *m.table, "N", marker);
    if (!second) return second.error();
    m.new_row = std::move(*second);
    return m;
}

result<pgoutput_message> read_delete(wire_reader& r, std::optional<std::uint32_t> xid, const relation_map& rels) {
    const std::uint32_t relid = r.u32();
    if (!r.ok()) return pgoutput_error::truncated;
    auto table = find_relation(rels, relid);
    if (!table) return table.error();
    erase_msg m;
    m.xid = xid;
    m.table = std::move(*table);
    auto old = read_marked_tuple(r, *m.table, "KO", m.old_kind);
    if (!old) return old.error();
    m.old_row = std::move(*old);
    return m;
}

result<pgoutput_message> read_truncate(wire_reader& r, std::optional<std::uint32_t> xid, const relation_map& rels) {
    truncate_msg m;
    m.xid = xid;
    const std::uint32_t nrels = r.u32();
    const std::uint8_t options = r.u8();
    if (!r.ok()) return pgoutput_error::truncated;
    // Check the count against the input before allocating for it.
    if (std::uint64_t(nrels) * 4 > r.remaining()) return pgoutput_error::truncated;
    m.cascade = (options & 1) != 0;           // TRUNCATE_CASCADE
    m.restart_identity = (options & 2) != 0;  // TRUNCATE_RESTART_SEQS
    m.tables.reserve(nrels);
    for (std::uint32_t i = 0; i < nrels; ++i) {
        auto table = find_relation(rels, r.u32());
        if (!table) return table.error();
        m.tables.push_back(std::move(*table));
    }
    return m;
}

result<pgoutput_message> read_message(wire_reader& r, std::optional<std::uint32_t> xid) {
    message_msg m;
    m.xid = xid;
    m.transactional = (r.u8() & 1) != 0;  // MESSAGE_TRANSACTIONAL
    m.message_lsn = lsn{r.u64()};
    m.prefix = std::string(r.cstring());
    const std::uint32_t len = r.u32();
    m.content = std::string(r.bytes(len));
    if (!r.ok()) return pgoutput_error::truncated;
    return m;
}

result<pgoutput_message> read_stream_start(wire_reader& r) {
    stream_start_msg m;
    m.xid = r.u32();
    m.first_segment = r.u8() == 1;
    if (!r.ok()) return pgoutput_error::truncated;
    return m;
}

result<pgoutput_message> read_stream_commit(wire_reader& r) {
    stream_commit_msg m;
    m.xid = r.u32();
    m.flags = r.u8();
    m.commit_lsn = lsn{r.u64()};
    m.end_lsn = lsn{r.u64()};
    m.commit_time_us = pg_to_unix_us(r.i64());
    if (!r.ok()) return pgoutput_error::truncated;
    return m;
}

result<pgoutput_message> read_stream_abort(wire_reader& r) {
    stream_abort_msg m;
    m.xid = r.u32();
    m.subxid = r.u32();
    if (!r.ok()) return pgoutput_error::truncated;
    return m;
}

bool same_definition(const table_schema& a, const table_schema& b) {
    if (a.relation_id != b.relation_id || a.schema != b.schema || a.name != b.name ||
        a.replica_identity != b.replica_identity || a.columns.size() != b.columns.size())
        return false;
    for (std::size_t i = 0; i < a.columns.size(); ++i) {
        const auto& x = a.columns[i];
        const auto& y = b.columns[i];
        if (x.name != y.name || x.type_oid != y.type_oid || x.type_mod != y.type_mod || x.key != y.key) return false;
    }
    return true;
}

}  // namespace

const boost::system::error_category& pgoutput_category() {
    static const pgoutput_category_impl c;
    return c;
}

pgoutput_decoder::pgoutput_decoder(int protocol_version) : protocol_version_(protocol_version) {
    assert(protocol_version == 1 || protocol_version == 2);
}

std::shared_ptr<const table_schema> pgoutput_decoder::relation(std::uint32_t relation_id) const {
    auto it = relations_.find(relation_id);
    return it == relations_.end() ? nullptr : it->second;
}

relation_msg pgoutput_decoder::remember(std::optional<std::uint32_t> xid, table_schema decoded) {
    auto& slot = relations_[decoded.relation_id];
    if (slot && same_definition(*slot, decoded)) return relation_msg{xid, slot, false};
    decoded.version = slot ? slot->version + 1 : 1;
    if (enrich_) enrich_(decoded);
    // A new object, never a mutation: changes already decoded keep pointing
    // at the definition their rows were written with.
    slot = std::make_shared<const table_schema>(std::move(decoded));
    return relation_msg{xid, slot, true};
}

boost::system::result<pgoutput_message> pgoutput_decoder::decode(std::string_view message) {
    wire_reader r(message);
    const auto tag = static_cast<char>(r.u8());
    if (!r.ok()) return pgoutput_error::truncated;

    const bool streaming = protocol_version_ >= 2;
    std::optional<std::uint32_t> xid;
    if (in_stream_ && carries_stream_xid(tag)) {
        xid = r.u32();
        if (!r.ok()) return pgoutput_error::truncated;
    }

    result<pgoutput_message> out = pgoutput_error::unknown_message;
    switch (tag) {
        case 'B': out = in_stream_ ? pgoutput_error::stream_state : read_begin(r); break;
        case 'C': out = in_stream_ ? pgoutput_error::stream_state : read_commit(r); break;
        case 'O': out = read_origin(r); break;  // also right after Stream Start
        case 'R': out = read_relation(r, xid); break;
        case 'Y': out = read_type(r, xid); break;
        case 'I': out = read_insert(r, xid, relations_); break;
        case 'U': out = read_update(r, xid, relations_); break;
        case 'D': out = read_delete(r, xid, relations_); break;
        case 'T': out = read_truncate(r, xid, relations_); break;
        case 'M': out = read_message(r, xid); break;
        case 'S':
            if (streaming) out = in_stream_ ? pgoutput_error::stream_state : read_stream_start(r);
            break;
        case 'E':
            if (streaming) out = in_stream_ ? result<pgoutput_message>(stream_stop_msg{}) : pgoutput_error::stream_state;
            break;
        case 'c':
            if (streaming) out = in_stream_ ? pgoutput_error::stream_state : read_stream_commit(r);
            break;
        case 'A':
            if (streaming) out = in_stream_ ? pgoutput_error::stream_state : read_stream_abort(r);
            break;
        default: break;
    }
    if (!out) return out;
    if (!r.at_end()) return pgoutput_error::trailing_data;

    // Only a complete, valid message changes the decoder's state.
    if (auto* rel = std::get_if<relation_msg>(&*out)) *out = remember(rel->xid, *rel->table);
    if (std::holds_alternative<stream_start_msg>(*out)) in_stream_ = true;
    if (std::holds_alternative<stream_stop_msg>(*out)) in_stream_ = false;
    return out;
}

}  // namespace datavor::connectors::pg
