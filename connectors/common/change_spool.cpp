#include "connectors/common/change_spool.hpp"

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include <unistd.h>

namespace datavor::connectors {
namespace {

// Record layout (host byte order: the file never outlives the process):
//   u32 table index, u8 op, u8 has_before, [row before], row after
//   row: u32 count, then per value u8 state and, for text/binary, u32 length + bytes
constexpr std::size_t flush_at = 1 << 20;

template <typename T>
void put(std::string& out, T v) {
    out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_row(std::string& out, const row& r) {
    put<std::uint32_t>(out, static_cast<std::uint32_t>(r.size()));
    for (const auto& v : r) {
        put<std::uint8_t>(out, static_cast<std::uint8_t>(v.st));
        if (v.st == value::state::text || v.st == value::state::binary) {
            put<std::uint32_t>(out, static_cast<std::uint32_t>(v.data.size()));
            out.append(v.data);
        }
    }
}

std::runtime_error io_error(const std::string& what, const std::filesystem::path& dir) {
    return std::runtime_error(what + " in " + dir.string() + ": " + std::strerror(errno) +
                              " (a large transaction is spilled there: free some space or set DATAVOR_HOME to a "
                              "folder with room)");
}

class file_reader {
public:
    file_reader(std::FILE* f, const std::filesystem::path& dir) : f_(f), dir_(dir) {}
    template <typename T>
    T get() {
        T v;
        bytes(reinterpret_cast<char*>(&v), sizeof v);
        return v;
    }
    void bytes(char* p, std::size_t n) {
        if (n && std::fread(p, 1, n, f_) != n) throw io_error("cannot read the spill file", dir_);
        consumed += n;
    }
    row get_row() {
        row r(get<std::uint32_t>());
        for (auto& v : r) {
            v.st = static_cast<value::state>(get<std::uint8_t>());
            if (v.st == value::state::text || v.st == value::state::binary) {
                v.data.resize(get<std::uint32_t>());
                bytes(v.data.data(), v.data.size());
            }
        }
        return r;
    }
    std::uint64_t consumed = 0;

private:
    std::FILE* f_;
    const std::filesystem::path& dir_;
};

}  // namespace

change_spool::change_spool(const std::filesystem::path& dir) : dir_(dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string name = (dir / "txn-XXXXXX").string();
    const int fd = ::mkstemp(name.data());
    if (fd < 0) throw io_error("cannot create a spill file", dir);
    ::unlink(name.c_str());
    file_ = ::fdopen(fd, "w+b");
    if (!file_) {
        ::close(fd);
        throw io_error("cannot open a spill file", dir);
    }
    buffer_.reserve(flush_at + 4096);
}

change_spool::~change_spool() {
    if (file_) std::fclose(file_);
}

std::uint32_t change_spool::table_index(const std::shared_ptr<const table_schema>& t) {
    auto [it, added] = table_ids_.emplace(t.get(), static_cast<std::uint32_t>(tables_.size()));
    if (added) tables_.push_back(t);
    return it->second;
}

void change_spool::append(const change_event& c) {
    const auto before = buffer_.size();
    put<std::uint32_t>(buffer_, table_index(c.table));
    put<std::uint8_t>(buffer_, static_cast<std::uint8_t>(c.op));
    put<std::uint8_t>(buffer_, c.before ? 1 : 0);
    if (c.before) put_row(buffer_, *c.before);
    put_row(buffer_, c.after);
    bytes_ += buffer_.size() - before;
    ++changes_;
    if (buffer_.size() >= flush_at) flush();
}

void change_spool::flush() {
    if (buffer_.empty()) return;
    const auto at = static_cast<off_t>(bytes_ - buffer_.size());
    if (::fseeko(file_, at, SEEK_SET) != 0 || std::fwrite(buffer_.data(), 1, buffer_.size(), file_) != buffer_.size() ||
        std::fflush(file_) != 0)
        throw io_error("cannot write the spill file", dir_);
    buffer_.clear();
}

void change_spool::truncate(mark_t at) {
    if (at.offset > bytes_) return;
    const std::uint64_t flushed = bytes_ - buffer_.size();
    if (at.offset >= flushed) {
        buffer_.resize(at.offset - flushed);
    } else {
        buffer_.clear();
        if (std::fflush(file_) != 0 || ::ftruncate(::fileno(file_), static_cast<off_t>(at.offset)) != 0)
            throw io_error("cannot truncate the spill file", dir_);
    }
    bytes_ = at.offset;
    changes_ = at.changes;
    read_offset_ = std::min(read_offset_, bytes_);
    read_changes_ = std::min(read_changes_, changes_);
}

void change_spool::rewind() {
    read_offset_ = 0;
    read_changes_ = 0;
}

std::vector<change_event> change_spool::read(std::size_t max_changes) {
    std::vector<change_event> out;
    if (read_changes_ >= changes_) return out;
    flush();
    if (::fseeko(file_, static_cast<off_t>(read_offset_), SEEK_SET) != 0)
        throw io_error("cannot seek in the spill file", dir_);
    file_reader in(file_, dir_);
    out.reserve(std::min<std::uint64_t>(max_changes, changes_ - read_changes_));
    while (out.size() < max_changes && read_changes_ < changes_) {
        change_event c;
        const auto idx = in.get<std::uint32_t>();
        if (idx >= tables_.size()) throw std::runtime_error("corrupt spill file in " + dir_.string());
        c.table = tables_[idx];
        c.op = static_cast<change_op>(in.get<std::uint8_t>());
        if (in.get<std::uint8_t>()) c.before = in.get_row();
        c.after = in.get_row();
        out.push_back(std::move(c));
        ++read_changes_;
    }
    read_offset_ += in.consumed;
    return out;
}

}  // namespace datavor::connectors
