#include "connectors/jsonl/jsonl_sink.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <fstream>
#include <stdexcept>
#include <unistd.h>

namespace datavor::connectors::jsonl {
namespace {

enum : std::uint32_t {
    oid_bool = 16, oid_bytea = 17, oid_int8 = 20, oid_int2 = 21, oid_int4 = 23, oid_oid = 26,
    oid_float4 = 700, oid_float8 = 701,
};

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string base64(std::string_view bytes) {
    static constexpr char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                     static_cast<unsigned char>(bytes[i + 2]);
        out += {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
    }
    if (i < bytes.size()) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        out += tbl[v >> 18];
        out += tbl[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? tbl[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string unhex_bytea(const std::string& text) {
    std::string out;
    auto hv = [](char c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; };
    for (std::size_t i = 2; i + 1 < text.size(); i += 2) out.push_back(static_cast<char>(hv(text[i]) * 16 + hv(text[i + 1])));
    return out;
}

void write_value(writer& w, const column_def& col, const value& v) {
    if (v.is_null()) {
        w.Null();
        return;
    }
    const std::string& s = v.data;
    switch (col.type_oid) {
        case oid_int2: case oid_int4: case oid_int8: case oid_oid:
            w.RawValue(s.data(), s.size(), rapidjson::kNumberType);
            return;
        case oid_float4: case oid_float8:
            if (s == "NaN" || s == "Infinity" || s == "-Infinity") w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
            else w.RawValue(s.data(), s.size(), rapidjson::kNumberType);
            return;
        case oid_bool: w.Bool(s == "t"); return;
        case oid_bytea: {
            auto b = base64(v.st == value::state::binary ? s : unhex_bytea(s));
            w.String(b.data(), static_cast<rapidjson::SizeType>(b.size()));
            return;
        }
        default: w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
    }
}

void write_row(writer& w, const table_schema& t, const std::optional<row>& r) {
    if (!r || r->empty()) {
        w.Null();
        return;
    }
    w.StartObject();
    for (std::size_t i = 0; i < t.columns.size() && i < r->size(); ++i) {
        if ((*r)[i].is_unchanged()) continue;
        const auto& n = t.columns[i].name;
        w.Key(n.data(), static_cast<rapidjson::SizeType>(n.size()));
        write_value(w, t.columns[i], (*r)[i]);
    }
    w.EndObject();
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

jsonl_sink::jsonl_sink(std::string path, std::string database) : path_(std::move(path)), database_(std::move(database)) {}

jsonl_sink::~jsonl_sink() {
    if (out_ && owns_) std::fclose(out_);
}

std::string jsonl_sink::envelope(const change_event& c, const std::string& stream, const std::string& database,
                                 const transaction* txn, std::int64_t now) {
    rapidjson::StringBuffer buf;
    writer w(buf);
    w.StartObject();
    w.Key("before");
    if (c.op == change_op::update || c.op == change_op::erase) write_row(w, *c.table, c.before);
    else w.Null();
    w.Key("after");
    if (c.op == change_op::erase || c.op == change_op::truncate) w.Null();
    else write_row(w, *c.table, c.after);
    w.Key("source");
    w.StartObject();
    w.Key("connector");
    w.String("datavor");
    w.Key("name");
    w.String(stream.c_str());
    w.Key("db");
    w.String(database.c_str());
    w.Key("schema");
    w.String(c.table->schema.c_str());
    w.Key("table");
    w.String(c.table->name.c_str());
    if (txn) {
        auto l = txn->commit_lsn.to_string();
        w.Key("lsn");
        w.String(l.c_str());
        w.Key("txId");
        w.Uint(txn->xid);
        w.Key("ts_ms");
        w.Int64(txn->commit_time_us / 1000);
    } else {
        w.Key("snapshot");
        w.Bool(true);
    }
    w.EndObject();
    w.Key("op");
    const char op[2] = {static_cast<char>(c.op), 0};
    w.String(op);
    w.Key("ts_ms");
    w.Int64(now);
    w.EndObject();
    return {buf.GetString(), buf.GetSize()};
}

void jsonl_sink::write_position(lsn position) {
    if (!owns_ || !keeps_position_) return;
    const std::string side = path_ + ".offset", tmp = side + ".tmp";
    {
        std::ofstream o(tmp, std::ios::trunc);
        o << stream_ << " " << position.to_string() << "\n";
        if (!o) throw std::runtime_error("cannot write " + tmp + ": check the folder's permissions and free space");
    }
    std::filesystem::rename(tmp, side);
}

boost::asio::awaitable<std::optional<lsn>> jsonl_sink::open(std::string stream) {
    stream_ = std::move(stream);
    if (path_ == "-") {
        out_ = stdout;
        co_return std::nullopt;
    }
    out_ = std::fopen(path_.c_str(), "ae");
    if (!out_) throw std::runtime_error("cannot open " + path_ + " for appending: check the path and permissions");
    owns_ = true;
    // A device or a pipe (jsonl:/dev/null, a FIFO) has no place for a position.
    std::error_code ec;
    keeps_position_ = std::filesystem::is_regular_file(path_, ec);
    if (!keeps_position_) co_return std::nullopt;
    std::ifstream side(path_ + ".offset");
    std::string name, pos;
    if (side >> name >> pos && name == stream_) co_return lsn::parse(pos);
    co_return std::nullopt;
}

boost::asio::awaitable<void> jsonl_sink::apply_snapshot(snapshot_batch batch) {
    const auto now = now_ms();
    for (const auto& r : batch.rows) {
        change_event c{batch.table, change_op::read, std::nullopt, r};
        auto line = envelope(c, stream_, database_, nullptr, now);
        line.push_back('\n');
        std::fwrite(line.data(), 1, line.size(), out_);
    }
    if (std::fflush(out_) != 0) throw std::runtime_error("writing " + path_ + " failed: disk full?");
    co_return;
}

boost::asio::awaitable<void> jsonl_sink::apply(const std::vector<transaction>& txns, lsn position) {
    const auto now = now_ms();
    for (const auto& t : txns)
        for (const auto& c : t.changes) {
            auto line = envelope(c, stream_, database_, &t, now);
            line.push_back('\n');
            std::fwrite(line.data(), 1, line.size(), out_);
        }
    if (std::fflush(out_) != 0) throw std::runtime_error("writing " + path_ + " failed: disk full?");
    write_position(position);
    co_return;
}

boost::asio::awaitable<void> jsonl_sink::begin_transaction(const transaction& header) {
    open_txn_ = header;
    open_txn_.changes.clear();
    open_txn_.spooled.reset();
    co_return;
}

boost::asio::awaitable<void> jsonl_sink::apply_changes(std::vector<change_event> changes) {
    const auto now = now_ms();
    for (const auto& c : changes) {
        // A re-snapshot's rows are snapshot reads, not part of a source transaction.
        auto line = envelope(c, stream_, database_, c.op == change_op::read ? nullptr : &open_txn_, now);
        line.push_back('\n');
        std::fwrite(line.data(), 1, line.size(), out_);
    }
    if (std::ferror(out_)) throw std::runtime_error("writing " + path_ + " failed: disk full?");
    co_return;
}

boost::asio::awaitable<void> jsonl_sink::commit_transaction(lsn position) {
    if (std::fflush(out_) != 0) throw std::runtime_error("writing " + path_ + " failed: disk full?");
    write_position(position);
    co_return;
}

boost::asio::awaitable<void> jsonl_sink::commit_position(lsn position) {
    write_position(position);
    co_return;
}

boost::asio::awaitable<void> jsonl_sink::forget_position() {
    if (owns_ && keeps_position_) {
        std::error_code ec;
        std::filesystem::remove(path_ + ".offset", ec);
    }
    co_return;
}

boost::asio::awaitable<void> jsonl_sink::close() {
    if (out_) std::fflush(out_);
    if (out_ && owns_) std::fclose(out_);
    out_ = nullptr;
    owns_ = false;
    co_return;
}

boost::asio::awaitable<probe_report> jsonl_prober::run_checks(probe_request req, probe_progress progress) {
    probe_report rep;
    check_recorder add(rep, std::move(progress));
    if (req.spec.path == "-") {
        add("writable", "Standard output can be written", check_status::pass, "jsonl:- writes to standard output");
        co_return rep;
    }
    std::filesystem::path p(req.spec.path);
    auto dir = p.has_parent_path() ? p.parent_path() : std::filesystem::path(".");
    std::error_code ec;
    const bool ok = std::filesystem::is_directory(dir, ec) && ::access(dir.c_str(), W_OK) == 0;
    add("writable", "The target folder exists and is writable", ok ? check_status::pass : check_status::fail,
        dir.string(), "mkdir -p " + dir.string() + " and make it writable by the user running Datavor");
    co_return rep;
}

}  // namespace datavor::connectors::jsonl
