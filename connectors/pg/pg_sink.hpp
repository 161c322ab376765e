#pragma once
// PostgreSQL as a target. Each batch is one target transaction that also
// upserts the stream's position in `_datavor_offsets` (exactly-once), sent as
// one multi-statement simple query: a single round trip per batch.
//
// Types: a built-in source type (OID below 16384, arrays of them included) is
// created with the same type (format_type); a user-defined type (enum,
// domain, composite) becomes text, since the target may not have that type.
// Values travel as literals in PostgreSQL's text form, always quoted
// (standard_conforming_strings=on), so nothing is reinterpreted on the way.
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
    boost::asio::awaitable<void> commit_position(lsn position) override;
    boost::asio::awaitable<void> close() override;

    static std::string column_type(const column_def& c);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace datavor::connectors::pg
