#include "connectors/pg/replication_protocol.hpp"

#include <limits>

namespace datavor::connectors::pg {
namespace {

class replication_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "datavor.pg.replication"; }
    std::string message(int ev) const override {
        switch (static_cast<replication_error>(ev)) {
            case replication_error::truncated: return "replication message is truncated";
            case replication_error::trailing_data: return "replication message has unexpected trailing bytes";
            case replication_error::unknown_message: return "unknown replication message type";
        }
        return "unknown replication error";
    }
};

constexpr auto i64_max = std::numeric_limits<std::int64_t>::max();
constexpr auto i64_min = std::numeric_limits<std::int64_t>::min();

}  // namespace

const boost::system::error_category& replication_category() {
    static const replication_category_impl c;
    return c;
}

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

void put_u32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

void put_u64(std::string& out, std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::int64_t pg_to_unix_us(std::int64_t pg_us) {
    if (pg_us == i64_min) return i64_min;  // -infinity
    if (pg_us > i64_max - pg_epoch_unix_us) return i64_max;
    return pg_us + pg_epoch_unix_us;
}

std::int64_t unix_to_pg_us(std::int64_t unix_us) {
    if (unix_us == i64_max) return i64_max;  // +infinity
    if (unix_us < i64_min + pg_epoch_unix_us) return i64_min;
    return unix_us - pg_epoch_unix_us;
}

boost::system::result<server_copy_message> parse_server_copy_data(std::string_view copy_data) {
    wire_reader r(copy_data);
    const auto tag = static_cast<char>(r.u8());
    if (!r.ok()) return replication_error::unknown_message;
    switch (tag) {
        case 'w': {
            xlog_data x;
            x.wal_start = lsn{r.u64()};
            x.wal_end = lsn{r.u64()};
            x.send_time_us = pg_to_unix_us(r.i64());
            if (!r.ok()) return replication_error::truncated;
            x.payload = r.rest();
            return x;
        }
        case 'k': {
            primary_keepalive k;
            k.wal_end = lsn{r.u64()};
            k.send_time_us = pg_to_unix_us(r.i64());
            k.reply_requested = r.u8() != 0;
            if (!r.ok()) return replication_error::truncated;
            if (!r.at_end()) return replication_error::trailing_data;
            return k;
        }
        default: return replication_error::unknown_message;
    }
}

std::string build_standby_status_update(const standby_status_update& s) {
    std::string out;
    out.reserve(34);
    put_u8(out, 'r');
    put_u64(out, s.written.v);
    put_u64(out, s.flushed.v);
    put_u64(out, s.applied.v);
    put_u64(out, static_cast<std::uint64_t>(unix_to_pg_us(s.client_time_us)));
    put_u8(out, s.reply_requested ? 1 : 0);
    return out;
}

}  // namespace datavor::connectors::pg
