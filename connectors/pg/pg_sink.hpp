#pragma once
// PostgreSQL as a target. Each batch is one target transaction that also
// upserts the stream's position in `public._datavor_offsets` (exactly-once).
//
// Apply: the batch's changes become writes in commit order, with the same
// semantic as the SQLite sink (apply_plan.hpp: upsert, UPDATE of the carried
// columns, delete, move, truncate), grouped into runs of one table and kind.
// pg_writer sends a run of 64+ inserts by COPY straight into the table
// inside a savepoint (a key the table holds already rolls it back), a run of
// 256+ upserts, updates or deletes by COPY into a temporary staging table and
// one merge statement, and everything else as prepared statements with bound
// text parameters in libpq's pipeline mode. A batch of one-row changes is one
// round trip; a batch of long runs two per run plus one. The initial
// snapshot is one COPY per table (REPLICA IDENTITY FULL: per batch, where a
// duplicate row is kept once).
//
// Failures: after a data error (connector_error of kind data) the sink stays
// usable: the next begin_transaction or apply rolls the failed transaction
// back, and savepoint / rollback_to_savepoint / release_savepoint isolate the
// parts the stream engine retries change by change.
//
// Types: a built-in source type (OID below 16384, arrays of them included) is
// created with the same type (format_type); a user-defined type (enum,
// domain, composite) becomes text, since the target may not have that type.
// Values travel in PostgreSQL's text form, as COPY text or bound parameters,
// so nothing is reinterpreted on the way; identifiers are always quoted.
//
// Threads: the stream's strand; one pg_session, one operation at a time.
#include "connectors/common/connection_spec.hpp"
#include "connectors/common/stream_parts.hpp"

#include <memory>

namespace datavor::connectors::pg {

class pg_sink final : public change_sink {
public:
    pg_sink(connection_spec spec, std::optional<std::string> password);
    ~pg_sink() override;

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
    boost::asio::awaitable<void> alter_column_type(std::shared_ptr<const table_schema> table, std::string column) override;
    boost::asio::awaitable<std::vector<std::string>> widen_columns(std::shared_ptr<const table_schema> table) override;
    boost::asio::awaitable<void> close() override;

    static std::string column_type(const column_def& c);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace datavor::connectors::pg
