#pragma once
// The CopyBoth framing of PostgreSQL's streaming replication protocol
// (docs: "Streaming Replication Protocol", START_REPLICATION ... LOGICAL):
// the server's CopyData payloads ('w' XLogData, 'k' Primary keepalive) and the
// client's 'r' Standby status update. Sans-I/O: bytes in, values out; the
// caller owns the connection (PQgetCopyData / PQputCopyData).
//
// All integers on the wire are big-endian. Times on the wire are microseconds
// since 2000-01-01 (the PostgreSQL epoch); every time in this API is unix
// microseconds, converted at the wire boundary so that callers never mix the two.
//
// Also home of wire_reader, the bounds-checked big-endian reader that both
// protocol cores here (this framing and pgoutput_decoder) use.
#include "connectors/common/change.hpp"

#include <boost/system/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace datavor::connectors::pg {

// Reads big-endian fields from a byte view. Every read is bounds-checked: a
// read past the end returns 0 (or an empty view) and makes the reader fail
// for good, so a decoder can read a group of fields and check ok() once at a
// decision point. Never reads outside `in`; does not own it.
class wire_reader {
public:
    explicit wire_reader(std::string_view in) : in_(in) {}

    std::uint8_t u8() { return static_cast<std::uint8_t>(uint_be(1)); }
    std::uint16_t u16() { return static_cast<std::uint16_t>(uint_be(2)); }
    std::uint32_t u32() { return static_cast<std::uint32_t>(uint_be(4)); }
    std::uint64_t u64() { return uint_be(8); }
    // Two's complement conversions are defined behaviour in C++20.
    std::int16_t i16() { return static_cast<std::int16_t>(u16()); }
    std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
    std::int64_t i64() { return static_cast<std::int64_t>(u64()); }

    // The next n bytes as a view into the input.
    std::string_view bytes(std::size_t n) {
        if (!ok_ || n > in_.size() - pos_) return fail();
        auto v = in_.substr(pos_, n);
        pos_ += n;
        return v;
    }
    // A NUL-terminated string (PostgreSQL's String): the view excludes the
    // NUL; a string without one is a truncated message.
    std::string_view cstring() {
        if (!ok_) return {};
        const auto nul = in_.find('\0', pos_);
        if (nul == std::string_view::npos) return fail();
        auto v = in_.substr(pos_, nul - pos_);
        pos_ = nul + 1;
        return v;
    }
    // The unread rest of the input.
    std::string_view rest() { return bytes(remaining()); }

    bool ok() const { return ok_; }
    bool at_end() const { return ok_ && pos_ == in_.size(); }
    std::size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }

private:
    std::uint64_t uint_be(std::size_t n) {
        if (!ok_ || n > in_.size() - pos_) {
            fail();
            return 0;
        }
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(in_[pos_ + i]);
        pos_ += n;
        return v;
    }
    std::string_view fail() {
        ok_ = false;
        return {};
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

// Appends big-endian fields to a byte string (the client side of the framing).
void put_u8(std::string& out, std::uint8_t v);
void put_u32(std::string& out, std::uint32_t v);
void put_u64(std::string& out, std::uint64_t v);

// 2000-01-01T00:00:00Z in unix microseconds.
inline constexpr std::int64_t pg_epoch_unix_us = 946'684'800'000'000;

// Epoch conversions. They saturate instead of overflowing, so a hostile
// timestamp cannot cause undefined behaviour; PostgreSQL's +-infinity
// (INT64_MAX / INT64_MIN) stay infinity.
std::int64_t pg_to_unix_us(std::int64_t pg_us);
std::int64_t unix_to_pg_us(std::int64_t unix_us);

enum class replication_error {
    truncated = 1,    // the payload ends before a field its kind must carry
    trailing_data,    // bytes after a complete keepalive
    unknown_message,  // a first byte other than 'w' or 'k' (or an empty payload)
};

const boost::system::error_category& replication_category();
inline boost::system::error_code make_error_code(replication_error e) {
    return {static_cast<int>(e), replication_category()};
}

// 'w': a chunk of the logical stream. `payload` is one pgoutput message and
// views the input passed to parse_server_copy_data: keep that buffer alive.
struct xlog_data {
    lsn wal_start;                // where the payload starts in the WAL
    lsn wal_end;                  // the server's current end of WAL
    std::int64_t send_time_us = 0;  // unix microseconds
    std::string_view payload;
};

// 'k': the server's heartbeat. reply_requested asks for a status update now
// (the server disconnects clients that stay silent past wal_sender_timeout).
struct primary_keepalive {
    lsn wal_end;
    std::int64_t send_time_us = 0;  // unix microseconds
    bool reply_requested = false;
};

using server_copy_message = std::variant<xlog_data, primary_keepalive>;

// Parses one CopyData payload received from the server during CopyBoth.
boost::system::result<server_copy_message> parse_server_copy_data(std::string_view copy_data);

// 'r': what the client has durably handled. The server may recycle WAL up to
// `flushed`, so send only what the target has committed.
struct standby_status_update {
    lsn written;
    lsn flushed;
    lsn applied;
    std::int64_t client_time_us = 0;  // unix microseconds
    bool reply_requested = false;
};

// The CopyData payload for a status update (34 bytes, 'r' first).
std::string build_standby_status_update(const standby_status_update& s);

}  // namespace datavor::connectors::pg

template <>
struct boost::system::is_error_code_enum<datavor::connectors::pg::replication_error> : std::true_type {};
