#pragma once
// One libpq connection driven in non-blocking mode from Asio: the readiness
// adaptor (PQsocket + PQconnectPoll / PQconsumeInput). No libpq call here ever
// blocks the io_context thread.
//
// Lifecycle: created by connect(); closed by the destructor. One operation in
// flight at a time; the caller serialises (a strand or a single coroutine).
// Cancellation: every await honours the caller's cancellation slot; a
// cancelled operation leaves the connection unusable (drop it).
#include "connectors/common/fd_readiness.hpp"
#include "connectors/pg/pg_error.hpp"
#include "connectors/pg/pg_handles.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace datavor::connectors::pg {

using pg_params = std::vector<std::optional<std::string>>;

class pg_session {
public:
    pg_session(pg_session&&) noexcept;
    pg_session& operator=(pg_session&&) noexcept;
    ~pg_session();

    // Connects with libpq keyword/value options (host, port, dbname, user,
    // password, sslmode, replication, …). Throws pg_error on failure or when
    // `timeout` passes; every later query gets the same timeout.
    static boost::asio::awaitable<pg_session> connect(std::map<std::string, std::string> options,
                                                      std::chrono::milliseconds timeout);

    // Runs one statement with text parameters; returns its last result.
    // Throws pg_error (with SQLSTATE) when the statement fails.
    boost::asio::awaitable<pg_result_ptr> query(std::string sql, pg_params params = {});

    // Simple-query protocol (the only one a walsender accepts); returns the last result.
    boost::asio::awaitable<pg_result_ptr> simple_query(std::string sql);

    // COPY: starts a COPY … TO STDOUT or a START_REPLICATION (CopyBoth) command.
    boost::asio::awaitable<void> start_copy(std::string sql);
    // The next CopyData message, waiting for it; nullopt once the copy ended
    // (the command's final result is then checked and thrown on error).
    boost::asio::awaitable<std::optional<std::string>> read_copy();
    // Like read_copy but never waits: `data` fills `out`; `none` when nothing
    // is buffered yet; `ended` when the server ended the copy (read its result
    // with finish_copy). Throws pg_error when the connection failed.
    enum class copy_poll { data, none, ended };
    copy_poll poll_copy(std::string& out);
    // After `ended`: reads the command's result and throws if it failed.
    boost::asio::awaitable<void> finish_copy();
    // Waits until the socket is readable or `max` passes; false on timeout.
    boost::asio::awaitable<bool> wait_readable(std::chrono::milliseconds max);
    // Sends one CopyData message (CopyBoth) and flushes it.
    boost::asio::awaitable<void> send_copy(std::string bytes);

    // COPY … FROM STDIN. `sql` is a simple query whose statements run up to
    // its COPY (statements after the COPY run once the data has ended); throws
    // pg_error when one before the COPY fails or the query has no COPY FROM STDIN.
    boost::asio::awaitable<void> start_copy_in(std::string sql);
    // Queues COPY data (rows may span calls) and sends it, waiting while the
    // socket is full: the server's pace bounds what libpq buffers.
    boost::asio::awaitable<void> put_copy_data(std::string_view bytes);
    // Ends the data, then reads the results of the COPY and of the statements
    // after it. A statement that failed comes back as its error (SQLSTATE),
    // not thrown, so that the caller can recover (roll back to a savepoint);
    // a broken connection throws.
    boost::asio::awaitable<std::optional<pg_error>> end_copy_in();

    // Pipeline mode: statements with text parameters are queued without
    // waiting for each other (the session enters pipeline mode at the first);
    // pipeline_sync sends them, reads every result (one round trip in all),
    // leaves pipeline mode and throws the first failure. After a failure the
    // server skips the rest up to the sync. No other operation (query, COPY)
    // may run while statements are queued. `values` are NUL-terminated text,
    // nullptr for NULL; libpq copies them before these return.
    void pipeline_prepare(const std::string& name, const std::string& sql);
    void pipeline_exec(const std::string& sql, int count, const char* const* values);
    void pipeline_exec_prepared(const std::string& name, int count, const char* const* values);
    boost::asio::awaitable<void> pipeline_sync();
    bool in_pipeline() const noexcept;

    PGconn* native() const noexcept { return conn_.get(); }
    bool tls_in_use() const noexcept;

private:
    pg_session(pg_conn_ptr conn, boost::asio::any_io_executor ex, std::chrono::milliseconds timeout);
    // Waits for the socket until `deadline`; throws pg_error on timeout.
    boost::asio::awaitable<void> wait(bool read, bool write, std::chrono::steady_clock::time_point deadline);

    // Destroyed before conn_ (declared after it), so the socket is released before PQfinish closes it.
    pg_conn_ptr conn_;
    fd_readiness ready_;
    std::chrono::milliseconds timeout_;
    boost::asio::awaitable<pg_result_ptr> collect_results(std::chrono::steady_clock::time_point deadline);
    // Like collect_results, without throwing when the last result is an error.
    boost::asio::awaitable<pg_result_ptr> collect_last(std::chrono::steady_clock::time_point deadline);
    void enter_pipeline();
    boost::asio::awaitable<void> flush(std::chrono::steady_clock::time_point deadline);
};

}  // namespace datavor::connectors::pg
