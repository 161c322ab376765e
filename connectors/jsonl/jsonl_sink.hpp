#pragma once
// JSON lines target: one Debezium-style envelope per change, for pipes, log
// shippers and anything that reads newline-delimited JSON (jsonl:PATH, or
// jsonl:- for standard output).
//
//   {"before":{…}|null,"after":{…}|null,
//    "source":{"connector":"datavor","name":STREAM,"db":…,"schema":…,"table":…,"lsn":"0/16B3F28","txId":…,"ts_ms":…},
//    "op":"c|u|d|r|t","ts_ms":…}
//
// Values: integers and floats as JSON numbers (NaN and ±Infinity as strings),
// booleans as true/false, numeric as a string (exact), bytea as base64 (as
// Debezium does), everything else as PostgreSQL's text. A TOASTed value the log
// did not carry is left out of "after" (the consumer keeps what it has), and
// "before" holds what the log carried: the key only, under the default replica
// identity; the whole old row under REPLICA IDENTITY FULL.
//
// Delivery: at-least-once. A file gets a sidecar PATH.offset, rewritten after
// each batch is written and flushed; after a crash the batch in flight may be
// written again, so consumers de-duplicate by source.lsn. Standard output has
// no position (nor does a device such as /dev/null): a restart resumes from the slot.
//
// Threads: one stream's strand; writes are buffered stdio (no blocking waits
// beyond the write itself).
#include "connectors/common/prerequisites.hpp"
#include "connectors/common/stream_parts.hpp"

#include <cstdio>
#include <filesystem>
#include <memory>

namespace datavor::connectors::jsonl {

class jsonl_sink final : public change_sink {
public:
    explicit jsonl_sink(std::string path, std::string database);
    ~jsonl_sink() override;

    sink_capabilities capabilities() const override { return {false, false, false, keeps_position_}; }
    boost::asio::awaitable<std::optional<lsn>> open(std::string stream) override;
    boost::asio::awaitable<void> prepare_table(std::shared_ptr<const table_schema>, bool) override { co_return; }
    boost::asio::awaitable<void> apply_snapshot(snapshot_batch batch) override;
    boost::asio::awaitable<void> apply(const std::vector<transaction>& txns, lsn position) override;
    boost::asio::awaitable<void> begin_transaction(const transaction& header) override;
    boost::asio::awaitable<void> apply_changes(std::vector<change_event> changes) override;
    boost::asio::awaitable<void> commit_transaction(lsn position) override;
    boost::asio::awaitable<void> commit_position(lsn position) override;
    boost::asio::awaitable<void> forget_position() override;
    boost::asio::awaitable<void> close() override;

    // One envelope (exposed for tests).
    static std::string envelope(const change_event& c, const std::string& stream, const std::string& database,
                                const transaction* txn, std::int64_t now_ms);

private:
    void write_position(lsn position);
    std::string path_, database_, stream_;
    std::FILE* out_ = nullptr;
    bool owns_ = false;
    bool keeps_position_ = false;  // a regular file: PATH.offset records the position
    transaction open_txn_;         // header of the transaction being written in parts
};

// A JSON-lines target needs a writable folder.
class jsonl_prober final : public prerequisite_prober {
public:
    boost::asio::awaitable<probe_report> run_checks(probe_request req, probe_progress progress) override;
};

}  // namespace datavor::connectors::jsonl
