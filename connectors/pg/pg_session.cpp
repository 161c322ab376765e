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
    int fd = PQsocket(conn_.get());
    if (fd < 0) throw pg_error("PostgreSQL connection has no socket: " + trim_message(PQerrorMessage(conn_.get())), "", true);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() < 0 || co_await ready_.wait(fd, read, write, left) == fd_readiness::timed_out)
        throw pg_error("timed out after " + std::to_string(timeout_.count()) + " ms waiting for PostgreSQL", "", true);
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

asio::awaitable<pg_result_ptr> pg_session::query(std::string sql, pg_params params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    PGconn* c = conn_.get();
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    if (!PQsendQueryParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr,
                           0))
        throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    for (;;) {
        int f = PQflush(c);
        if (f == 0) break;
        if (f < 0) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        co_await wait(true, true, deadline);
        if (!PQconsumeInput(c)) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
    }
    pg_result_ptr last;
    for (;;) {
        while (PQisBusy(c)) {
            co_await wait(true, false, deadline);
            if (!PQconsumeInput(c)) throw pg_error(trim_message(PQerrorMessage(c)), "", true);
        }
        pg_result_ptr r(PQgetResult(c));
        if (!r) break;
        last = std::move(r);
    }
    if (!last) throw pg_error("PostgreSQL returned no result", "", true);
    auto st = PQresultStatus(last.get());
    if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
        const char* state = PQresultErrorField(last.get(), PG_DIAG_SQLSTATE);
        std::string sqlstate = state ? state : "";
        throw pg_error(trim_message(PQresultErrorMessage(last.get())), sqlstate, retryable_state(sqlstate));
    }
    co_return last;
}

}  // namespace datavor::connectors::pg
