#pragma once
// The changes of one transaction kept on disk instead of in memory.
//
// A source spills a transaction here once it grows past what a stream may
// hold (PostgreSQL: every streamed in-progress transaction of pgoutput
// protocol 2, and a protocol-1 transaction past a threshold). The stream
// engine reads it back in chunks at commit time and applies the chunks inside
// one target transaction, so memory stays bounded whatever the transaction's
// size.
//
// The file is anonymous: created in `dir` and unlinked at once, so it
// vanishes when the spool is destroyed or the process dies. Writes go through
// a buffer; a full disk is an error (std::runtime_error naming the folder),
// never a silently shortened transaction.
//
// Subtransactions: mark() before a subtransaction's first change, and
// truncate(mark) when it aborts, drops its changes and everything after them.
//
// Not thread-safe: one strand owns a spool at a time.
#include "connectors/common/change.hpp"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <vector>

namespace datavor::connectors {

class change_spool {
public:
    struct mark_t {
        std::uint64_t offset = 0;
        std::uint64_t changes = 0;
    };

    explicit change_spool(const std::filesystem::path& dir);
    ~change_spool();
    change_spool(const change_spool&) = delete;
    change_spool& operator=(const change_spool&) = delete;

    void append(const change_event& change);
    mark_t mark() const { return {bytes_, changes_}; }
    void truncate(mark_t at);

    std::uint64_t changes() const { return changes_; }
    std::uint64_t bytes() const { return bytes_; }

    // Reading back, from the start: up to `max_changes` changes per call;
    // empty when everything was read. rewind() starts over.
    std::vector<change_event> read(std::size_t max_changes);
    void rewind();
    // Where reading is, to read a part again (the engine's row fallback).
    mark_t read_mark() const { return {read_offset_, read_changes_}; }
    void seek_read(mark_t at) {
        read_offset_ = at.offset;
        read_changes_ = at.changes;
    }

private:
    void flush();
    std::uint32_t table_index(const std::shared_ptr<const table_schema>& t);
    std::FILE* file_ = nullptr;
    std::filesystem::path dir_;
    std::string buffer_;  // pending writes
    std::uint64_t bytes_ = 0, changes_ = 0;
    std::uint64_t read_offset_ = 0, read_changes_ = 0;
    std::vector<std::shared_ptr<const table_schema>> tables_;
    std::map<const table_schema*, std::uint32_t> table_ids_;
};

}  // namespace datavor::connectors
