#pragma once
// The embedded SQLite target. Applies each batch in one SQLite transaction
// together with the stream's position in `_datavor_offsets`, so a crash at any
// moment leaves the target at a transaction boundary it knows (exactly-once).
//
// Type mapping (PostgreSQL -> SQLite column), chosen so values round-trip exactly:
//   smallint/integer/bigint/oid -> INTEGER; boolean -> INTEGER 0/1;
//   real/double -> REAL (NaN, Infinity, -Infinity kept as their text);
//   numeric -> TEXT (decimal text: never through a double); bytea -> BLOB;
//   everything else (text, varchar, char, date, time(tz), timestamp(tz) in UTC,
//   interval, uuid, json, jsonb, arrays, enums, inet, cidr, domains) -> TEXT in
//   PostgreSQL's text form.
// Table names: a table in schema public keeps its name; others become "schema.table".
//
// Threads: SQLite calls are local and short (one batch); they run on the
// stream's strand. Not thread-safe: one stream owns one sink.
#include "connectors/common/stream_parts.hpp"

#include <filesystem>
#include <memory>

namespace datavor::connectors::sqlite {

class sqlite_sink final : public change_sink {
public:
    explicit sqlite_sink(std::filesystem::path path);
    ~sqlite_sink() override;

    sink_capabilities capabilities() const override { return {}; }
    boost::asio::awaitable<std::optional<lsn>> open(std::string stream) override;
    boost::asio::awaitable<void> prepare_table(std::shared_ptr<const table_schema> table, bool truncate) override;
    boost::asio::awaitable<void> apply_snapshot(snapshot_batch batch) override;
    boost::asio::awaitable<void> apply(const std::vector<transaction>& txns, lsn position) override;
    boost::asio::awaitable<void> begin_transaction(const transaction& header) override;
    boost::asio::awaitable<void> apply_changes(std::vector<change_event> changes) override;
    boost::asio::awaitable<void> commit_transaction(lsn position) override;
    boost::asio::awaitable<void> savepoint() override;
    boost::asio::awaitable<void> rollback_to_savepoint() override;
    boost::asio::awaitable<void> release_savepoint() override;
    boost::asio::awaitable<void> commit_position(lsn position) override;
    boost::asio::awaitable<void> forget_position() override;
    boost::asio::awaitable<void> close() override;

    static std::string target_table_name(const table_schema& t);
    static std::string column_type(const column_def& c);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace datavor::connectors::sqlite
