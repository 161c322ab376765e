#pragma once
// PostgreSQL as a change source: logical replication with the pgoutput
// plugin, read natively (no wal2json, no triggers, no polling).
//
// open():  resolves the tables from the catalog; creates or extends the
//          publication (exactly the tables asked for, or reuses a named one);
//          creates the stream's slot with an exported snapshot when the stream
//          is new, or resumes from the target's committed position.
// read_snapshot(): COPY of the tables inside the exported snapshot, so the
//          handover to streaming has no gap and no duplicate; up to
//          snapshot_workers tables at once, read and parsed on a thread of
//          their own (snapshot_reader) while the sink applies.
// read_transactions(): START_REPLICATION, decodes pgoutput (protocol 2 with
//          streaming on, from PostgreSQL 14; protocol 1 before), answers
//          keepalives at once and reports as flushed only what
//          confirm() was told; on an idle source the keepalive's WAL end is
//          handed out as a transaction without changes (at most once a
//          second), so the target records it before it is confirmed and a
//          quiet database never pins WAL.
//
// Large transactions: a streamed in-progress transaction (protocol 2: the
// server sends it in blocks once it passes logical_decoding_work_mem, blocks
// of concurrent transactions interleaved) is spilled to an anonymous file in
// spool_dir as it arrives, per top-level xid; a subtransaction abort truncates
// its changes away, a stream abort drops the file, a stream commit delivers it
// as a spooled transaction in commit order. A regular transaction that grows
// past spill_after_changes is spilled the same way. Memory stays bounded by
// the batch size, whatever the transaction's size.
//
// Lifecycle: open once, then snapshot and/or transactions, then close. One
// strand. Cancellation: every wait honours the caller's slot.
#include "connectors/common/connection_spec.hpp"
#include "connectors/common/stream_parts.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace datavor::connectors::pg {

struct pg_source_options {
    connection_spec spec;
    std::optional<std::string> password;
    std::string stream;                 // names the slot and the default publication
    std::vector<std::string> tables;    // "schema.table" or "table" (schema public)
    std::string publication;            // empty: "datavor_<stream>", created for the tables
    std::string slot;                   // empty: "datavor_<stream>"
    std::size_t snapshot_batch_rows = 5000;
    std::size_t snapshot_workers = 4;   // tables copied at once (each on its own connection)
    std::filesystem::path spool_dir;    // where large transactions spill (required to stream)
    std::size_t spill_after_changes = 20000;  // a regular transaction larger than this spills
    int protocol_version = 0;           // 0: the highest the server supports (2 from PostgreSQL 14, else 1)
};

// Slot and publication names Datavor derives from a stream name.
std::string default_slot_name(std::string_view stream);

class pg_source final : public change_source {
public:
    explicit pg_source(pg_source_options options);
    ~pg_source() override;

    boost::asio::awaitable<source_open_result> open(source_open_request request) override;
    boost::asio::awaitable<std::optional<snapshot_batch>> read_snapshot() override;
    boost::asio::awaitable<std::vector<transaction>> read_transactions(std::size_t max_changes) override;
    boost::asio::awaitable<table_snapshot> start_table_snapshot(std::string table) override;
    boost::asio::awaitable<void> heartbeat() override;
    void confirm(lsn applied) override;
    source_health health() const override;
    boost::asio::awaitable<void> close() override;

    // Drops the stream's slot (stop_stream with drop_slot).
    static boost::asio::awaitable<void> drop_slot(pg_source_options options);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace datavor::connectors::pg
