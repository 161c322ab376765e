#include "connectors/pg/snapshot_reader.hpp"

#include "connectors/common/sql_quote.hpp"
#include "connectors/pg/copy_text.hpp"
#include "connectors/pg/pg_error.hpp"
#include "connectors/pg/pg_session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <mutex>
#include <thread>

namespace asio = boost::asio;

namespace datavor::connectors::pg {
namespace {
using channel_t = asio::experimental::concurrent_channel<void(boost::system::error_code, snapshot_batch)>;
}

struct snapshot_reader::state {
    snapshot_reader_options opts;
    // Both destroyed explicitly once the thread is joined: the channel first
    // (it belongs to a service of the io_context), then the io_context, which
    // takes the workers' frames and their connections with it.
    std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
    std::unique_ptr<channel_t> channel_ptr;
    channel_t& channel;
    std::atomic<std::size_t> next_table{0};
    std::atomic<std::size_t> workers_left{0};
    std::atomic<bool> stopping{false};
    std::mutex mu;
    std::exception_ptr failure;  // the first worker's error (guarded by mu)
    bool finished = false;       // the consumer saw the end (consumer only)
    std::thread thread;

    explicit state(snapshot_reader_options o)
        : opts(std::move(o)),
          channel_ptr(std::make_unique<channel_t>(io->get_executor(), std::max<std::size_t>(1, opts.queue_batches))),
          channel(*channel_ptr) {}

    asio::awaitable<void> copy_table(pg_session& db, const std::shared_ptr<const table_schema>& t) {
        std::string cols;
        for (const auto& c : t->columns) cols += (cols.empty() ? "" : ", ") + quote_pg_ident(c.name);
        co_await db.start_copy("COPY (SELECT " + cols + " FROM " + quote_pg_ident(t->schema) + "." +
                               quote_pg_ident(t->name) + ") TO STDOUT");
        snapshot_batch batch;
        batch.table = t;
        for (;;) {
            auto line = co_await db.read_copy();
            if (!line) break;
            batch.bytes += line->size();
            row r;
            if (auto ok = parse_copy_text_row(*line, t->columns.size(), r); !ok)
                throw pg_error("COPY of " + t->qualified() + ": " + ok.error().message(), "XX000", false);
            batch.rows.push_back(std::move(r));
            if (batch.rows.size() >= opts.batch_rows) {
                snapshot_batch full = std::exchange(batch, {});
                batch.table = t;
                co_await channel.async_send(boost::system::error_code{}, std::move(full), asio::use_awaitable);
            }
        }
        batch.table_done = true;
        co_await channel.async_send(boost::system::error_code{}, std::move(batch), asio::use_awaitable);
    }

    asio::awaitable<void> worker() {
        bool failed = false;
        try {
            auto db = co_await pg_session::connect(opts.connection, std::chrono::seconds(15));
            co_await db.simple_query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
            if (opts.snapshot) co_await db.simple_query("SET TRANSACTION SNAPSHOT " + quote_pg_literal(*opts.snapshot));
            for (;;) {
                const auto i = next_table++;
                if (i >= opts.tables.size() || stopping) break;
                co_await copy_table(db, opts.tables[i]);
            }
            co_await db.simple_query("COMMIT");
        } catch (const std::exception&) {
            failed = true;
            std::lock_guard lock(mu);
            if (!failure) failure = std::current_exception();
        }
        // The last worker out, or a failed one at once, tells the consumer.
        const bool last = --workers_left == 0;
        if (!last && !failed) co_return;
        try {
            co_await channel.async_send(boost::system::error_code{}, snapshot_batch{}, asio::use_awaitable);
        } catch (const std::exception&) {
            // The reader is closing: nobody is waiting.
        }
    }
};

snapshot_reader::snapshot_reader(snapshot_reader_options options)
    : state_(std::make_shared<state>(std::move(options))) {
    auto& s = *state_;
    const std::size_t n = std::min(std::max<std::size_t>(1, s.opts.workers), s.opts.tables.size());
    if (n == 0) {
        s.finished = true;
        return;
    }
    s.workers_left = n;
    for (std::size_t i = 0; i < n; ++i) asio::co_spawn(*s.io, s.worker(), asio::detached);
    s.thread = std::thread([st = state_.get()] { st->io->run(); });
}

snapshot_reader::~snapshot_reader() {
    auto& s = *state_;
    s.stopping = true;
    s.channel.close();  // a worker waiting to send gives up
    s.io->stop();       // one waiting for the server is dropped
    if (s.thread.joinable()) s.thread.join();
    s.channel_ptr.reset();  // before its io_context
    s.io.reset();           // destroys the workers' frames: their connections close
}

asio::awaitable<std::optional<snapshot_batch>> snapshot_reader::next() {
    auto& s = *state_;
    if (s.finished) co_return std::nullopt;
    auto batch = co_await s.channel.async_receive(asio::use_awaitable);
    if (!batch.table) {
        s.finished = true;
        std::exception_ptr failure;
        {
            std::lock_guard lock(s.mu);
            failure = s.failure;
        }
        if (failure) std::rethrow_exception(failure);
        co_return std::nullopt;
    }
    co_return batch;
}

}  // namespace datavor::connectors::pg
