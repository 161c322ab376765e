// libFuzzer target: the pgoutput decoder and the replication CopyBoth framing.
// Input: one mode byte, then messages separated by "@@@@" (so sequences reach
// the stateful paths: relation redefinition, stream blocks).
//   mode bit 0: protocol version 2 (else 1)
//   mode bit 1: prime the decoder with two Relation messages first, so that
//               Insert/Update/Delete/Truncate get past the relation lookup
//   mode bit 2: each message is a server CopyData payload ('w'/'k'); the
//               payload of an XLogData goes to the decoder
// Invariants: no crash, no sanitizer report; decoded rows have their
// relation's column count; a relation's version never goes down; a
// standby status update is always 34 bytes.
#include "connectors/pg/pgoutput_decoder.hpp"
#include "connectors/pg/replication_protocol.hpp"

#include <cstdlib>

using namespace datavor::connectors;
using namespace datavor::connectors::pg;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

std::string relation_with_columns(std::uint32_t relid, int ncols) {
    std::string s = "R";
    put_u32(s, relid);
    s += std::string("public\0items\0d", 14);
    put_u8(s, 0);
    put_u8(s, static_cast<std::uint8_t>(ncols));
    for (int i = 0; i < ncols; ++i) {
        put_u8(s, i == 0 ? 1 : 0);
        s += "c" + std::to_string(i);
        s.push_back('\0');
        put_u32(s, i == 0 ? 23 : 25);
        put_u32(s, 0xffffffff);
    }
    return s;
}

void check_rows(const pgoutput_message& m) {
    auto width = [](const std::shared_ptr<const table_schema>& t) { return t->columns.size(); };
    if (const auto* i = std::get_if<insert_msg>(&m)) check(i->new_row.size() == width(i->table));
    if (const auto* u = std::get_if<update_msg>(&m)) {
        check(u->new_row.size() == width(u->table));
        check(!u->old_row || u->old_row->size() == width(u->table));
        check((u->old_kind == 0) == !u->old_row);
    }
    if (const auto* d = std::get_if<erase_msg>(&m)) check(d->old_row.size() == width(d->table));
    if (const auto* t = std::get_if<truncate_msg>(&m))
        for (const auto& table : t->tables) check(table != nullptr);
}

void decode_one(pgoutput_decoder& d, std::string_view bytes) {
    std::uint64_t before = 0;
    if (!bytes.empty() && bytes[0] == 'R')
        if (auto t = d.relation(16384)) before = t->version;
    auto r = d.decode(bytes);
    if (!r) return;
    check_rows(*r);
    if (const auto* rel = std::get_if<relation_msg>(&*r)) {
        check(rel->table != nullptr && d.relation(rel->table->relation_id) == rel->table);
        if (rel->table->relation_id == 16384) check(rel->table->version >= before);
    }
}

void frame_one(pgoutput_decoder& d, std::string_view bytes) {
    auto r = parse_server_copy_data(bytes);
    if (!r) return;
    if (const auto* x = std::get_if<xlog_data>(&*r)) {
        decode_one(d, x->payload);
    } else {
        const auto& k = std::get<primary_keepalive>(*r);
        auto reply = build_standby_status_update({k.wal_end, k.wal_end, k.wal_end, k.send_time_us, k.reply_requested});
        check(reply.size() == 34);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t mode = data[0];
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    pgoutput_decoder d((mode & 1) ? 2 : 1);
    if (mode & 2) {
        check(d.decode(relation_with_columns(16384, 3)).has_value());
        check(d.decode(relation_with_columns(1, 0)).has_value());
    }
    constexpr std::string_view separator = "@@@@";
    while (true) {
        const auto at = input.find(separator);
        const auto chunk = input.substr(0, at);
        if (mode & 4)
            frame_one(d, chunk);
        else
            decode_one(d, chunk);
        if (at == std::string_view::npos) break;
        input.remove_prefix(at + separator.size());
    }
    return 0;
}
