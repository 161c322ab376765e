// The pgoutput decoder, from hand-built byte fixtures (layouts as in the
// PostgreSQL docs, "Logical Replication Message Formats").
#include "connectors/pg/pgoutput_decoder.hpp"

#include "connectors/pg/replication_protocol.hpp"
#include "tests/connectors/result_string_maker.hpp"

#include <catch2/catch.hpp>

using namespace datavor::connectors;
using namespace datavor::connectors::pg;
using decoded = boost::system::result<pgoutput_message>;

namespace {

constexpr std::uint32_t relid = 16384;
constexpr std::uint32_t other_relid = 16390;

// Big-endian message builder.
struct msg {
    std::string s;
    explicit msg(char tag) { s.push_back(tag); }
    msg& u8(std::uint8_t v) { return put_u8(s, v), *this; }
    msg& u16(std::uint16_t v) { return put_u8(s, v >> 8), put_u8(s, v & 0xff), *this; }
    msg& u32(std::uint32_t v) { return put_u32(s, v), *this; }
    msg& u64(std::uint64_t v) { return put_u64(s, v), *this; }
    msg& str(std::string_view v) { return s.append(v).push_back('\0'), *this; }
    msg& raw(std::string_view v) { return s.append(v), *this; }
    msg& xid(std::optional<std::uint32_t> x) { return x ? u32(*x) : *this; }
    // TupleData: "n", "u", or "t:<text>" / "b:<bytes>".
    msg& tuple(std::initializer_list<std::string_view> cols) {
        u16(static_cast<std::uint16_t>(cols.size()));
        for (auto c : cols) {
            u8(static_cast<std::uint8_t>(c[0]));
            if (c.size() > 1) u32(static_cast<std::uint32_t>(c.size() - 2)).raw(c.substr(2));
        }
        return *this;
    }
    operator std::string_view() const { return s; }
};

// public.items (id int4 key, name text, payload bytea)
std::string relation_fixture(std::optional<std::uint32_t> xid = {}, std::uint32_t id = relid) {
    return msg('R').xid(xid).u32(id).str("public").str("items").u8('d').u16(3)
        .u8(1).str("id").u32(23).u32(0xffffffff)
        .u8(0).str("name").u32(25).u32(0xffffffff)
        .u8(0).str("payload").u32(17).u32(0xffffffff).s;
}

const std::string bytes_with_nul("\x00\x01\xff", 3);

std::string insert_fixture(std::optional<std::uint32_t> xid = {}) {
    return msg('I').xid(xid).u32(relid).u8('N').tuple({"t:42", "n", std::string("b:") + bytes_with_nul}).s;
}
std::string update_fixture(char old_kind, std::optional<std::uint32_t> xid = {}) {
    msg m('U');
    m.xid(xid).u32(relid);
    if (old_kind == 'K') m.u8('K').tuple({"t:41", "n", "n"});
    if (old_kind == 'O') m.u8('O').tuple({"t:41", "t:old", "b:"});
    return m.u8('N').tuple({"t:42", "t:", "u"}).s;
}
std::string delete_fixture(char kind, std::optional<std::uint32_t> xid = {}) {
    return msg('D').xid(xid).u32(relid).u8(static_cast<std::uint8_t>(kind)).tuple({"t:42", "n", "n"}).s;
}
std::string truncate_fixture(std::optional<std::uint32_t> xid = {}) {
    return msg('T').xid(xid).u32(2).u8(3).u32(relid).u32(other_relid).s;
}
std::string message_fixture(std::optional<std::uint32_t> xid = {}) {
    return msg('M').xid(xid).u8(1).u64(0x20).str("audit").u32(3).raw(std::string("a\0b", 3)).s;
}
std::string type_fixture(std::optional<std::uint32_t> xid = {}) {
    return msg('Y').xid(xid).u32(16400).str("public").str("mood").s;
}
std::string begin_fixture() { return msg('B').u64(0x1000).u64(1'000'000).u32(777).s; }
std::string commit_fixture() { return msg('C').u8(0).u64(0x1000).u64(0x1030).u64(1'000'000).s; }
std::string origin_fixture() { return msg('O').u64(0x500).str("node_a").s; }
std::string stream_start_fixture(std::uint32_t xid = 900, bool first = true) {
    return msg('S').u32(xid).u8(first ? 1 : 0).s;
}
std::string stream_stop_fixture() { return msg('E').s; }
std::string stream_commit_fixture() { return msg('c').u32(900).u8(0).u64(0x2000).u64(0x2040).u64(2'000'000).s; }
std::string stream_abort_fixture() { return msg('A').u32(900).u32(901).s; }

template <class T>
const T& as(const decoded& r) {
    REQUIRE(r.has_value());
    REQUIRE(std::holds_alternative<T>(*r));
    return std::get<T>(*r);
}

// A decoder that knows public.items and a second relation.
pgoutput_decoder primed(int version = 1) {
    pgoutput_decoder d(version);
    REQUIRE(d.decode(relation_fixture()).has_value());
    REQUIRE(d.decode(msg('R').u32(other_relid).str("public").str("other").u8('f').u16(0).s).has_value());
    return d;
}

}  // namespace

TEST_CASE("pgoutput decoder decodes Begin and Commit", "[pgoutput]") {
    pgoutput_decoder d;
    auto b = d.decode(begin_fixture());
    CHECK(as<begin_msg>(b).final_lsn.v == 0x1000);
    CHECK(as<begin_msg>(b).commit_time_us == pg_epoch_unix_us + 1'000'000);
    CHECK(as<begin_msg>(b).xid == 777);
    auto c = d.decode(commit_fixture());
    CHECK(as<commit_msg>(c).commit_lsn.v == 0x1000);
    CHECK(as<commit_msg>(c).end_lsn.v == 0x1030);
    CHECK(as<commit_msg>(c).commit_time_us == pg_epoch_unix_us + 1'000'000);
}

TEST_CASE("pgoutput decoder decodes an Origin message", "[pgoutput]") {
    pgoutput_decoder d;
    auto o = d.decode(origin_fixture());
    CHECK(as<origin_msg>(o).origin_lsn.v == 0x500);
    CHECK(as<origin_msg>(o).name == "node_a");
}

TEST_CASE("pgoutput decoder caches a Relation message as a versioned table schema", "[pgoutput]") {
    pgoutput_decoder d;
    auto r = d.decode(relation_fixture());
    const auto& rel = as<relation_msg>(r);
    REQUIRE(rel.table);
    CHECK(rel.changed);
    CHECK_FALSE(rel.xid);
    const table_schema& t = *rel.table;
    CHECK(t.relation_id == relid);
    CHECK(t.qualified() == "public.items");
    CHECK(t.replica_identity == 'd');
    CHECK(t.version == 1);
    REQUIRE(t.columns.size() == 3);
    CHECK(t.columns[0].name == "id");
    CHECK(t.columns[0].type_oid == 23);
    CHECK(t.columns[0].type_mod == -1);
    CHECK(t.columns[0].key);
    CHECK_FALSE(t.columns[1].key);
    CHECK(t.columns[2].type_oid == 17);
    CHECK(t.columns[2].type_name.empty());  // the source fills it from the catalog
    CHECK(d.relation(relid) == rel.table);
    CHECK(d.relation(relid + 1) == nullptr);
}

TEST_CASE("pgoutput decoder decodes a Type message and names pg_catalog for an empty namespace", "[pgoutput]") {
    pgoutput_decoder d;
    auto y = d.decode(type_fixture());
    CHECK(as<type_msg>(y).oid == 16400);
    CHECK(as<type_msg>(y).schema == "public");
    CHECK(as<type_msg>(y).name == "mood");
    auto z = d.decode(msg('Y').u32(16).str("").str("bool").s);
    CHECK(as<type_msg>(z).schema == "pg_catalog");
}

TEST_CASE("pgoutput decoder decodes an Insert with every tuple kind", "[pgoutput]") {
    auto d = primed();
    auto r = d.decode(msg('I').u32(relid).u8('N').tuple({"t:42", "n", std::string("b:") + bytes_with_nul}).s);
    const auto& ins = as<insert_msg>(r);
    CHECK(ins.table == d.relation(relid));
    REQUIRE(ins.new_row.size() == 3);
    CHECK(ins.new_row[0] == value::text_value("42"));
    CHECK(ins.new_row[1].is_null());
    CHECK(ins.new_row[2] == value{value::state::binary, bytes_with_nul});
    auto u = d.decode(update_fixture(0));
    CHECK(as<update_msg>(u).new_row[1] == value::text_value(""));  // empty text is not null
    CHECK(as<update_msg>(u).new_row[2].is_unchanged());
}

TEST_CASE("pgoutput decoder decodes Updates without, with key and with full old rows", "[pgoutput]") {
    auto d = primed();
    auto plain = d.decode(update_fixture(0));
    CHECK(as<update_msg>(plain).old_kind == 0);
    CHECK_FALSE(as<update_msg>(plain).old_row);
    CHECK(as<update_msg>(plain).new_row[0] == value::text_value("42"));

    auto key = d.decode(update_fixture('K'));
    CHECK(as<update_msg>(key).old_kind == 'K');
    REQUIRE(as<update_msg>(key).old_row);
    CHECK(as<update_msg>(key).old_row->at(0) == value::text_value("41"));
    CHECK(as<update_msg>(key).old_row->at(1).is_null());

    auto full = d.decode(update_fixture('O'));
    CHECK(as<update_msg>(full).old_kind == 'O');
    CHECK(as<update_msg>(full).old_row->at(1) == value::text_value("old"));
    CHECK(as<update_msg>(full).old_row->at(2) == value{value::state::binary, ""});
    CHECK(as<update_msg>(full).new_row[2].is_unchanged());
}

TEST_CASE("pgoutput decoder decodes Deletes with key and full old rows", "[pgoutput]") {
    auto d = primed();
    for (char kind : {'K', 'O'}) {
        auto r = d.decode(delete_fixture(kind));
        CHECK(as<erase_msg>(r).old_kind == kind);
        CHECK(as<erase_msg>(r).table->name == "items");
        CHECK(as<erase_msg>(r).old_row == row{value::text_value("42"), value{}, value{}});
    }
}

TEST_CASE("pgoutput decoder decodes a Truncate of several relations with its options", "[pgoutput]") {
    auto d = primed();
    auto r = d.decode(truncate_fixture());
    const auto& t = as<truncate_msg>(r);
    REQUIRE(t.tables.size() == 2);
    CHECK(t.tables[0]->name == "items");
    CHECK(t.tables[1]->name == "other");
    CHECK(t.cascade);
    CHECK(t.restart_identity);
    auto plain = d.decode(msg('T').u32(1).u8(0).u32(relid).s);
    CHECK_FALSE(as<truncate_msg>(plain).cascade);
    CHECK_FALSE(as<truncate_msg>(plain).restart_identity);
    CHECK(as<truncate_msg>(d.decode(msg('T').u32(0).u8(2).s)).restart_identity);
}

TEST_CASE("pgoutput decoder decodes transactional and non-transactional Messages", "[pgoutput]") {
    pgoutput_decoder d;
    auto r = d.decode(message_fixture());
    CHECK(as<message_msg>(r).transactional);
    CHECK(as<message_msg>(r).message_lsn.v == 0x20);
    CHECK(as<message_msg>(r).prefix == "audit");
    CHECK(as<message_msg>(r).content == std::string("a\0b", 3));
    auto n = d.decode(msg('M').u8(0).u64(0x21).str("p").u32(0).s);
    CHECK_FALSE(as<message_msg>(n).transactional);
    CHECK(as<message_msg>(n).content.empty());
}

TEST_CASE("pgoutput decoder decodes a streamed transaction in protocol 2", "[pgoutput]") {
    pgoutput_decoder d(2);
    auto s = d.decode(stream_start_fixture(900, true));
    CHECK(as<stream_start_msg>(s).xid == 900);
    CHECK(as<stream_start_msg>(s).first_segment);
    CHECK(d.in_stream());
    CHECK(d.decode(origin_fixture()).has_value());  // sent right after Stream Start, without xid
    auto y = d.decode(type_fixture(901));
    CHECK(as<type_msg>(y).xid == 901u);
    auto rel = d.decode(relation_fixture(900));
    CHECK(as<relation_msg>(rel).xid == 900u);
    REQUIRE(d.decode(msg('R').xid(900).u32(other_relid).str("public").str("other").u8('n').u16(0).s));
    auto i = d.decode(insert_fixture(901));
    CHECK(as<insert_msg>(i).xid == 901u);
    CHECK(as<insert_msg>(i).new_row[0] == value::text_value("42"));
    CHECK(as<update_msg>(d.decode(update_fixture('O', 900))).xid == 900u);
    CHECK(as<update_msg>(d.decode(update_fixture('O', 900))).old_row->at(1) == value::text_value("old"));
    CHECK(as<erase_msg>(d.decode(delete_fixture('K', 900))).xid == 900u);
    CHECK(as<truncate_msg>(d.decode(truncate_fixture(900))).tables.size() == 2);
    CHECK(as<message_msg>(d.decode(message_fixture(900))).prefix == "audit");
    CHECK(d.decode(stream_stop_fixture()).has_value());
    CHECK_FALSE(d.in_stream());

    auto next = d.decode(stream_start_fixture(900, false));
    CHECK_FALSE(as<stream_start_msg>(next).first_segment);
    REQUIRE(d.decode(stream_stop_fixture()));
    auto c = d.decode(stream_commit_fixture());
    CHECK(as<stream_commit_msg>(c).xid == 900);
    CHECK(as<stream_commit_msg>(c).commit_lsn.v == 0x2000);
    CHECK(as<stream_commit_msg>(c).end_lsn.v == 0x2040);
    CHECK(as<stream_commit_msg>(c).commit_time_us == pg_epoch_unix_us + 2'000'000);
    // Outside a stream the same messages carry no xid again.
    CHECK_FALSE(as<insert_msg>(d.decode(insert_fixture())).xid);
}

TEST_CASE("pgoutput decoder decodes Stream Abort", "[pgoutput]") {
    pgoutput_decoder d(2);
    auto a = d.decode(stream_abort_fixture());
    CHECK(as<stream_abort_msg>(a).xid == 900);
    CHECK(as<stream_abort_msg>(a).subxid == 901);
}

TEST_CASE("pgoutput decoder in protocol 1 rejects streaming messages as unknown", "[pgoutput]") {
    pgoutput_decoder d(1);
    for (const auto& m : {stream_start_fixture(), stream_stop_fixture(), stream_commit_fixture(), stream_abort_fixture()})
        CHECK(d.decode(m).error() == pgoutput_error::unknown_message);
    CHECK_FALSE(d.in_stream());
}

TEST_CASE("pgoutput decoder rejects stream messages out of order", "[pgoutput]") {
    pgoutput_decoder d(2);
    CHECK(d.decode(stream_stop_fixture()).error() == pgoutput_error::stream_state);
    REQUIRE(d.decode(stream_start_fixture()));
    CHECK(d.decode(stream_start_fixture()).error() == pgoutput_error::stream_state);
    CHECK(d.decode(stream_commit_fixture()).error() == pgoutput_error::stream_state);
    CHECK(d.decode(stream_abort_fixture()).error() == pgoutput_error::stream_state);
    CHECK(d.decode(begin_fixture()).error() == pgoutput_error::stream_state);
    CHECK(d.decode(commit_fixture()).error() == pgoutput_error::stream_state);
    CHECK(d.in_stream());
    d.reset_stream();
    CHECK(d.decode(begin_fixture()).has_value());
}

TEST_CASE("pgoutput decoder rejects every message kind truncated at any byte offset", "[pgoutput]") {
    struct fixture {
        const char* name;
        std::string bytes;
        bool streamed;
    };
    const std::vector<fixture> fixtures = {
        {"Begin", begin_fixture(), false},           {"Commit", commit_fixture(), false},
        {"Origin", origin_fixture(), false},         {"Relation", relation_fixture(), false},
        {"Type", type_fixture(), false},             {"Insert", insert_fixture(), false},
        {"Update", update_fixture(0), false},        {"Update K", update_fixture('K'), false},
        {"Update O", update_fixture('O'), false},    {"Delete K", delete_fixture('K'), false},
        {"Delete O", delete_fixture('O'), false},    {"Truncate", truncate_fixture(), false},
        {"Message", message_fixture(), false},       {"Stream Start", stream_start_fixture(), false},
        {"Stream Commit", stream_commit_fixture(), false}, {"Stream Abort", stream_abort_fixture(), false},
        {"streamed Relation", relation_fixture(900), true}, {"streamed Type", type_fixture(900), true},
        {"streamed Insert", insert_fixture(900), true},     {"streamed Update", update_fixture('O', 900), true},
        {"streamed Delete", delete_fixture('K', 900), true}, {"streamed Truncate", truncate_fixture(900), true},
        {"streamed Message", message_fixture(900), true},
    };
    for (const auto& f : fixtures) {
        auto d = primed(2);
        if (f.streamed) REQUIRE(d.decode(stream_start_fixture()));
        const auto schema = d.relation(relid);
        for (std::size_t n = 0; n < f.bytes.size(); ++n) {
            INFO(f.name << " cut to " << n << " of " << f.bytes.size() << " bytes");
            auto r = d.decode(std::string_view(f.bytes).substr(0, n));
            REQUIRE(r.has_error());
            CHECK(r.error() == pgoutput_error::truncated);
        }
        // Nothing a failed decode saw changed the state.
        CHECK(d.relation(relid) == schema);
        CHECK(d.in_stream() == f.streamed);
        INFO(f.name << " whole");
        CHECK(d.decode(f.bytes).has_value());
    }
}

TEST_CASE("pgoutput decoder rejects a truncated Relation message", "[pgoutput]") {
    pgoutput_decoder d;
    const std::string rel = relation_fixture();
    CHECK(d.decode(std::string_view(rel).substr(0, rel.size() - 1)).error() == pgoutput_error::truncated);
    CHECK(d.decode(msg('R').u32(relid).raw("public").s).error() == pgoutput_error::truncated);  // no NUL
    CHECK(d.relation(relid) == nullptr);
}

TEST_CASE("pgoutput decoder rejects an unknown message tag", "[pgoutput]") {
    pgoutput_decoder d(2);
    for (char tag : {'Z', '\0', 'b', 'P', 'K', 'r', 'p', 'w'}) {
        INFO("tag " << int(tag));
        CHECK(d.decode(msg(tag).u64(0).s).error() == pgoutput_error::unknown_message);
    }
}

TEST_CASE("pgoutput decoder rejects changes for an unknown relation", "[pgoutput]") {
    pgoutput_decoder d;
    for (const auto& m : {insert_fixture(), update_fixture('K'), delete_fixture('O'), truncate_fixture()})
        CHECK(d.decode(m).error() == pgoutput_error::unknown_relation);
    REQUIRE(d.decode(relation_fixture()));
    CHECK(d.decode(truncate_fixture()).error() == pgoutput_error::unknown_relation);  // the second one
}

TEST_CASE("pgoutput decoder rejects a tuple whose column count differs from its relation", "[pgoutput]") {
    auto d = primed();
    CHECK(d.decode(msg('I').u32(relid).u8('N').tuple({"n", "n"}).s).error() == pgoutput_error::column_count_mismatch);
    CHECK(d.decode(msg('I').u32(relid).u8('N').tuple({"n", "n", "n", "n"}).s).error() ==
          pgoutput_error::column_count_mismatch);
    CHECK(d.decode(msg('U').u32(relid).u8('K').tuple({"n"}).u8('N').tuple({"n", "n", "n"}).s).error() ==
          pgoutput_error::column_count_mismatch);
    CHECK(d.decode(msg('D').u32(other_relid).u8('O').tuple({"n"}).s).error() == pgoutput_error::column_count_mismatch);
}

TEST_CASE("pgoutput decoder rejects bad tuple kinds, markers, lengths and replica identities", "[pgoutput]") {
    auto d = primed();
    CHECK(d.decode(msg('I').u32(relid).u8('N').tuple({"n", "x", "n"}).s).error() == pgoutput_error::bad_tuple_kind);
    CHECK(d.decode(msg('I').u32(relid).u8('K').tuple({"n", "n", "n"}).s).error() == pgoutput_error::bad_tuple_marker);
    CHECK(d.decode(msg('U').u32(relid).u8('X').s).error() == pgoutput_error::bad_tuple_marker);
    CHECK(d.decode(msg('U').u32(relid).u8('K').tuple({"n", "n", "n"}).u8('O').tuple({"n", "n", "n"}).s).error() ==
          pgoutput_error::bad_tuple_marker);
    CHECK(d.decode(msg('D').u32(relid).u8('N').tuple({"n", "n", "n"}).s).error() == pgoutput_error::bad_tuple_marker);
    CHECK(d.decode(msg('I').u32(relid).u8('N').u16(3).u8('t').u32(0x80000000).s).error() == pgoutput_error::bad_value);
    CHECK(d.decode(msg('I').u32(relid).u8('N').u16(0xffff).s).error() == pgoutput_error::bad_value);
    CHECK(d.decode(msg('R').u32(1).str("s").str("t").u8('x').u16(0).s).error() == pgoutput_error::bad_value);
    CHECK(d.decode(msg('R').u32(1).str("s").str("t").u8('f').u16(0x8000).s).error() == pgoutput_error::bad_value);
}

TEST_CASE("pgoutput decoder rejects hostile counts and lengths before allocating for them", "[pgoutput]") {
    auto d = primed();
    CHECK(d.decode(msg('R').u32(1).str("s").str("t").u8('f').u16(0x7fff).u8(0).str("a").s).error() ==
          pgoutput_error::truncated);
    CHECK(d.decode(msg('T').u32(0xffffffff).u8(0).u32(relid).s).error() == pgoutput_error::truncated);
    CHECK(d.decode(msg('I').u32(relid).u8('N').u16(3).u8('t').u32(0x7fffffff).raw("ab").s).error() ==
          pgoutput_error::truncated);
    CHECK(d.decode(msg('M').u8(1).u64(0).str("p").u32(0xffffffff).raw("ab").s).error() == pgoutput_error::truncated);
}

TEST_CASE("pgoutput decoder rejects trailing bytes after a complete message", "[pgoutput]") {
    auto d = primed(2);
    for (const auto& m : {begin_fixture(), commit_fixture(), insert_fixture(), update_fixture('K'), delete_fixture('K'),
                          truncate_fixture(), origin_fixture(), type_fixture(), stream_commit_fixture()})
        CHECK(d.decode(m + "x").error() == pgoutput_error::trailing_data);
    CHECK(d.decode(stream_start_fixture() + "x").error() == pgoutput_error::trailing_data);
    CHECK_FALSE(d.in_stream());
    auto changed = relation_fixture();
    changed[changed.size() - 10] = 'X';  // rename a column...
    CHECK(d.decode(changed + "x").error() == pgoutput_error::trailing_data);
    CHECK(d.relation(relid)->version == 1);  // ...but the message was rejected
}

TEST_CASE("pgoutput decoder bumps the version when a relation is redefined and keeps the old schema valid",
          "[pgoutput]") {
    pgoutput_decoder d;
    auto first = d.decode(relation_fixture());
    const auto v1 = as<relation_msg>(first).table;
    auto ins = d.decode(insert_fixture());
    const auto row_schema = as<insert_msg>(ins).table;

    // ALTER TABLE items ADD COLUMN note text
    auto second = d.decode(msg('R').u32(relid).str("public").str("items").u8('f').u16(4)
                               .u8(1).str("id").u32(23).u32(0xffffffff)
                               .u8(0).str("name").u32(25).u32(0xffffffff)
                               .u8(0).str("payload").u32(17).u32(0xffffffff)
                               .u8(0).str("note").u32(25).u32(0xffffffff).s);
    const auto& v2 = as<relation_msg>(second);
    CHECK(v2.changed);
    CHECK(v2.table != v1);
    CHECK(v2.table->version == 2);
    CHECK(v2.table->replica_identity == 'f');
    CHECK(v2.table->columns.size() == 4);
    CHECK(d.relation(relid) == v2.table);
    // Holders of the first definition still see it as it was.
    CHECK(v1->version == 1);
    CHECK(v1->columns.size() == 3);
    CHECK(row_schema == v1);
    // Rows now need four columns.
    CHECK(d.decode(insert_fixture()).error() == pgoutput_error::column_count_mismatch);
    CHECK(as<insert_msg>(d.decode(msg('I').u32(relid).u8('N').tuple({"t:1", "n", "n", "t:x"}).s)).table->version == 2);
}

TEST_CASE("pgoutput decoder keeps the cached schema when a relation is re-sent unchanged", "[pgoutput]") {
    pgoutput_decoder d;
    auto first = d.decode(relation_fixture());
    auto again = d.decode(relation_fixture());
    CHECK_FALSE(as<relation_msg>(again).changed);
    CHECK(as<relation_msg>(again).table == as<relation_msg>(first).table);
    CHECK(d.relation(relid)->version == 1);
    // A key flag alone is a change.
    auto rekeyed = relation_fixture();
    rekeyed[rekeyed.find(std::string("name\0", 5)) - 1] = 1;  // the flags byte of "name"
    auto third = d.decode(rekeyed);
    CHECK(as<relation_msg>(third).changed);
    CHECK(as<relation_msg>(third).table->columns[1].key);
    CHECK(as<relation_msg>(third).table->version == 2);
}
