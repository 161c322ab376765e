#include "connectors/pg/pg_session.hpp"

#include "connectors/pg/pg_error.hpp"

#include <boost/asio/this_coro.hpp>

namespace asio = boost::asio;

namespace datavor::connectors::pg {
namespace {

std::string trim_message(const char* m) {
    std::string s = m ? m : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Connection-level failures (08xxx), admin shutdown (57P01..03), too many
// connections (53300), serialization failure and deadlock may succeed later.
bool retryable_state(const std::string& s) {
    return s.empty() || s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "53300" ||
           s == "40001" || s == "40P01";
}

}  // namespace

pg_session::pg_session(pg_conn_ptr conn, asio::any_io_executor ex, std::chrono::milliseconds timeout)
    : conn_(std::move(conn)), ready_(std::move(ex)), timeout_(timeout) {}
pg_session::pg_session(pg_session&&) noexcept = default;
pg_session& pg_session::operator=(pg_session&&) noexcept = default;
pg_session::~pg_session() = default;

bool pg_session::tls_in_use() const noexcept { return conn_ && PQsslInUse(conn_.get()) == 1; }

asio::awaitable<void> pg_session::wait(bool read, bool write, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        int fd = PQsocket(conn_.get());
        if (fd < 0)
            throw pg_error("PostgreSQL connection has no socket: " + trim_message(PQerrorMessage(conn_.get())), "", true);
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline)
            throw pg_error("timed out after " + std::to_string(timeout_.count()) + " ms waiting for PostgreSQL", "", true);
        // Waits are sliced so that a far deadline (none) never overflows the timer.
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::min<std::chrono::steady_clock::duration>(deadline - now, std::chrono::hours(1)));
        if (co_await ready_.wait(fd, read, write, left) != fd_readiness::timed_out) co_return;
    }
}

asio::awaitable<pg_session> pg_session::connect(std::map<std::string, std::string> options,
                                                std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    std::vector<const char*> keys, values;
    for (const auto& [k, v] : options) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    pg_conn_ptr conn(PQconnectStartParams(keys.data(), values.data(), 0));
    if (!conn) throw pg_error("out of memory creating a PostgreSQL connection", "", false);
    if (PQstatus(conn.get()) == CONNECTION_BAD)
        throw pg_error(trim_message(PQerrorMessage(conn.get())), "", false);

    pg_session s(std::move(conn), ex, timeout);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    auto poll = PGRES_POLLING_WRITING;
    for (;;) {
        if (poll == PGRES_POLLING_OK) break;
        if (poll == PGRES_POLLING_FAILED) {
            throw pg_error(trim_message(PQerrorMessage(s.conn_.get())), "", true);
        }
        co_await s.wait(poll == PGRES_POLLING_READING, poll == PGRES_POLLING_WRITING, deadline);
        poll = PQconnectPoll(s.conn_.get());
    }
    if (PQsetnonblocking(s.conn_.get(), 1) != 0)
        throw pg_error(trim_message(PQerrorMessage(s.conn_.get())), "", false);
    co_return s;
}

asio::awaitable<void> pg_session::flush(std::chrono::steady_clock::time_point deadline) {
    PGconn* c = conn_.get();
    for (;;) {
        int f = PQflush(c);
        if (f == 0) co_return;
        if (f < 0) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        co_await wait(true, true, deadline);
        if (!PQconsumeInput(c)) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    }
}

namespace {
std::optional<pg_error> error_of(const PGresult* r) {
    auto st = PQresultStatus(r);
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        std::string sqlstate = state ? state : "";
        return pg_error(trim_message(PQresultErrorMessage(r)), sqlstate, retryable_state(sqlstate));
    }
    return std::nullopt;
}
void throw_if_failed(const PGresult* r) {
    if (auto e = error_of(r)) throw std::move(*e);
}
}  // namespace

// Reads every result of the command in flight and returns the last one; a
// COPY result ends the loop (the copy data follows).
asio::awaitable<pg_result_ptr> pg_session::collect_results(std::chrono::steady_clock::time_point deadline) {
    auto last = co_await collect_last(deadline);
    throw_if_failed(last.get());
    co_return last;
}

asio::awaitable<pg_result_ptr> pg_session::collect_last(std::chrono::steady_clock::time_point deadline) {
    PGconn* c = conn_.get();
    pg_result_ptr last;
    for (;;) {
        while (PQisBusy(c)) {
            co_await wait(true, false, deadline);
            if (!PQconsumeInput(c)) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        }
        pg_result_ptr r(PQgetResult(c));
        if (!r) break;
        auto st = PQresultStatus(r.get());
        last = std::move(r);
        if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH || st == PGRES_COPY_IN) break;
    }
    if (!last) throw pg_error("PostgreSQL returned no result", "", true);
    co_return last;
}

asio::awaitable<pg_result_ptr> pg_session::query(std::string sql, pg_params params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PGconn* c = conn_.get();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    if (!PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                           0))
        throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    co_await flush(deadline);
    co_return co_await collect_results(deadline);
}

asio::awaitable<pg_result_ptr> pg_session::simple_query(std::string sql) {
    PGconn* c = conn_.get();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    if (!PQsendQuery(c, sql.c_str())) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    co_await flush(deadline);
    co_return co_await collect_results(deadline);
}

asio::awaitable<void> pg_session::start_copy(std::string sql) {
    auto r = co_await simple_query(std::move(sql));
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COPY_OUT && st != PGRES_COPY_BOTH)
        throw pg_error("expected COPY data from: " + std::string(PQresStatus(st)), "", false);
}

pg_session::copy_poll pg_session::poll_copy(std::string& out) {
    PGconn* c = conn_.get();
    char* buf = nullptr;
    int n = PQgetCopyData(c, &buf, 1);
    if (n == 0) {
        if (!PQconsumeInput(c)) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        n = PQgetCopyData(c, &buf, 1);
    }
    if (n > 0) {
        out.assign(buf, static_cast<std::size_t>(n));
        PQfreemem(buf);
        return copy_poll::data;
    }
    if (n == 0) return copy_poll::none;
    if (n == -2) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    return copy_poll::ended;
}

asio::awaitable<void> pg_session::finish_copy() {
    co_await collect_results(std::chrono::steady_clock::now() + timeout_);
}

asio::awaitable<std::optional<std::string>> pg_session::read_copy() {
    std::string out;
    for (;;) {
        switch (poll_copy(out)) {
            case copy_poll::data: co_return out;
            case copy_poll::ended: co_await finish_copy(); co_return std::nullopt;
            case copy_poll::none: break;
        }
        co_await wait(true, false, std::chrono::steady_clock::time_point::max());
    }
}

asio::awaitable<bool> pg_session::wait_readable(std::chrono::milliseconds max) {
    int fd = PQsocket(conn_.get());
    if (fd < 0) throw pg_error("PostgreSQL connection has no socket", "", true);
    co_return co_await ready_.wait(fd, true, false, max) != fd_readiness::timed_out;
}

asio::awaitable<void> pg_session::send_copy(std::string bytes) {
    PGconn* c = conn_.get();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
        int r = PQputCopyData(c, bytes.data(), static_cast<int>(bytes.size()));
        if (r == 1) break;
        if (r < 0) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        co_await wait(false, true, deadline);
    }
    co_await flush(deadline);
}

// ---------------------------------------------------------------- COPY FROM STDIN

asio::awaitable<void> pg_session::start_copy_in(std::string sql) {
    auto r = co_await simple_query(std::move(sql));
    if (PQresultStatus(r.get()) != PGRES_COPY_IN)
        throw pg_error("expected COPY FROM STDIN, got " + std::string(PQresStatus(PQresultStatus(r.get()))), "", false);
}

asio::awaitable<void> pg_session::put_copy_data(std::string_view bytes) {
    PGconn* c = conn_.get();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
        int r = PQputCopyData(c, bytes.data(), static_cast<int>(bytes.size()));
        if (r == 1) break;
        if (r < 0) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        co_await wait(true, true, deadline);
        if (!PQconsumeInput(c)) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    }
    co_await flush(deadline);
}

asio::awaitable<std::optional<pg_error>> pg_session::end_copy_in() {
    PGconn* c = conn_.get();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
        int r = PQputCopyEnd(c, nullptr);
        if (r == 1) break;
        if (r < 0) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        co_await wait(true, true, deadline);
        if (!PQconsumeInput(c)) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    }
    co_await flush(deadline);
    auto last = co_await collect_last(deadline);
    if (PQresultStatus(last.get()) == PGRES_COPY_IN)
        throw pg_error("a second COPY FROM STDIN in one query is not supported", "", false);
    co_return error_of(last.get());
}

// ---------------------------------------------------------------- pipeline mode

bool pg_session::in_pipeline() const noexcept { return PQpipelineStatus(conn_.get()) != PQ_PIPELINE_OFF; }

void pg_session::enter_pipeline() {
    PGconn* c = conn_.get();
    if (PQpipelineStatus(c) == PQ_PIPELINE_OFF && PQenterPipelineMode(c) != 1)
        throw pg_error(trim_message(PQerrorMessage(c)), "", false);
}

void pg_session::pipeline_prepare(const std::string& name, const std::string& sql) {
    enter_pipeline();
    if (PQsendPrepare(conn_.get(), name.c_str(), sql.c_str(), 0, nullptr) != 1)
        throw pg_error(trim_message(PQerrorMessage(conn_.get())), "", true);
}

void pg_session::pipeline_exec(const std::string& sql, int count, const char* const* values) {
    enter_pipeline();
    if (PQsendQueryParams(conn_.get(), sql.c_str(), count, nullptr, values, nullptr, nullptr, 0) != 1)
        throw pg_error(trim_message(PQerrorMessage(conn_.get())), "", true);
}

void pg_session::pipeline_exec_prepared(const std::string& name, int count, const char* const* values) {
    enter_pipeline();
    if (PQsendQueryPrepared(conn_.get(), name.c_str(), count, values, nullptr, nullptr, 0) != 1)
        throw pg_error(trim_message(PQerrorMessage(conn_.get())), "", true);
}

asio::awaitable<void> pg_session::pipeline_sync() {
    PGconn* c = conn_.get();
    if (PQpipelineStatus(c) == PQ_PIPELINE_OFF) co_return;
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    if (PQpipelineSync(c) != 1) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    co_await flush(deadline);
    std::optional<pg_error> first;
    // Each statement's results end with a NULL; the sync's own result ends
    // the pipeline. Two NULLs in a row mean nothing is pending any more.
    int nulls = 0;
    for (;;) {
        while (PQisBusy(c)) {
            co_await wait(true, false, deadline);
            if (!PQconsumeInput(c)) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        }
        pg_result_ptr r(PQgetResult(c));
        if (!r) {
            if (++nulls > 1) throw pg_error("PostgreSQL pipeline ended without its sync", "", true);
            continue;
        }
        nulls = 0;
        const auto st = PQresultStatus(r.get());
        if (st == PGRES_PIPELINE_SYNC) break;
        if (!first) first = error_of(r.get());
    }
    if (PQexitPipelineMode(c) != 1) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    if (first) throw std::move(*first);
}

}  // namespace datavor::connectors::pg
