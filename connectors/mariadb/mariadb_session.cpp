#include "connectors/mariadb/mariadb_session.hpp"

#include <mysql.h>

#include <boost/asio/this_coro.hpp>

namespace asio = boost::asio;

namespace datavor::connectors::mariadb {
namespace {
struct result_freer {
    void operator()(MYSQL_RES* r) const noexcept { mysql_free_result(r); }
};
// Client-side connection errors (2000-2999 range: CR_*) and server shutdown
// or lock conflicts may succeed later.
bool retryable_errno(unsigned e) {
    return (e >= 2000 && e < 3000) || e == 1053 || e == 1205 || e == 1213 || e == 1040;
}
}  // namespace

void mariadb_session::mysql_closer::operator()(st_mysql* m) const noexcept { mysql_close(m); }

mariadb_session::mariadb_session(asio::any_io_executor ex) : ready_(std::move(ex)) {}
mariadb_session::mariadb_session(mariadb_session&&) noexcept = default;
mariadb_session& mariadb_session::operator=(mariadb_session&&) noexcept = default;
mariadb_session::~mariadb_session() = default;

void mariadb_session::fail(const std::string& what) const {
    unsigned e = mysql_errno(mysql_.get());
    throw mariadb_error(what + ": " + mysql_error(mysql_.get()), e, retryable_errno(e));
}

bool mariadb_session::tls_in_use() const noexcept { return mysql_ && mysql_get_ssl_cipher(mysql_.get()) != nullptr; }
std::string mariadb_session::server_version() const { return mysql_get_server_info(mysql_.get()); }

asio::awaitable<int> mariadb_session::wait(int status) {
    const int fd = static_cast<int>(mysql_get_socket(mysql_.get()));
    auto ms = (status & MYSQL_WAIT_TIMEOUT) ? std::chrono::milliseconds(mysql_get_timeout_value_ms(mysql_.get()))
                                            : timeout_;
    switch (co_await ready_.wait(fd, status & MYSQL_WAIT_READ, status & MYSQL_WAIT_WRITE, ms)) {
        case fd_readiness::readable: co_return MYSQL_WAIT_READ;
        case fd_readiness::writable: co_return MYSQL_WAIT_WRITE;
        case fd_readiness::timed_out: break;
    }
    co_return MYSQL_WAIT_TIMEOUT;
}

asio::awaitable<mariadb_session> mariadb_session::connect(mariadb_connect_options o) {
    mariadb_session s(co_await asio::this_coro::executor);
    s.timeout_ = o.timeout;
    s.mysql_.reset(mysql_init(nullptr));
    if (!s.mysql_) throw mariadb_error("out of memory creating a MariaDB connection", 0, false);
    MYSQL* m = s.mysql_.get();
    mysql_options(m, MYSQL_OPT_NONBLOCK, nullptr);
    unsigned secs = static_cast<unsigned>(std::max<long long>(1, o.timeout.count() / 1000));
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &secs);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &secs);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &secs);
    mysql_optionsv(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (!o.ssl_mode.empty() && o.ssl_mode != "disable") {
        my_bool enforce = 1;
        mysql_optionsv(m, MYSQL_OPT_SSL_ENFORCE, &enforce);
        my_bool verify = (o.ssl_mode == "verify-full" || o.ssl_mode == "verify-ca") ? 1 : 0;
        mysql_optionsv(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
        if (!o.ssl_ca.empty()) mysql_optionsv(m, MYSQL_OPT_SSL_CA, o.ssl_ca.c_str());
    }
    MYSQL* ret = nullptr;
    int status = mysql_real_connect_start(&ret, m, o.host.c_str(), o.user.empty() ? nullptr : o.user.c_str(),
                                          o.password ? o.password->c_str() : nullptr,
                                          o.database.empty() ? nullptr : o.database.c_str(), o.port, nullptr, 0);
    while (status) {
        int ready = co_await s.wait(status);
        status = mysql_real_connect_cont(&ret, m, ready);
    }
    if (!ret) s.fail("cannot connect to MariaDB");
    co_return s;
}

asio::awaitable<mariadb_rows> mariadb_session::query(std::string sql) {
    MYSQL* m = mysql_.get();
    int err = 0;
    int status = mysql_real_query_start(&err, m, sql.data(), sql.size());
    while (status) status = mysql_real_query_cont(&err, m, co_await wait(status));
    if (err) fail("query failed");
    MYSQL_RES* raw = nullptr;
    status = mysql_store_result_start(&raw, m);
    while (status) status = mysql_store_result_cont(&raw, m, co_await wait(status));
    mariadb_rows rows;
    if (!raw) {
        if (mysql_field_count(m) != 0) fail("reading the result failed");
        co_return rows;
    }
    std::unique_ptr<MYSQL_RES, result_freer> res(raw);
    const unsigned n = mysql_num_fields(raw);
    // Rows are already buffered client-side by store_result: fetch_row does no I/O.
    while (MYSQL_ROW row = mysql_fetch_row(raw)) {
        unsigned long* lens = mysql_fetch_lengths(raw);
        auto& out = rows.emplace_back();
        for (unsigned i = 0; i < n; ++i) {
            if (row[i]) out.emplace_back(std::string(row[i], lens[i]));
            else out.emplace_back(std::nullopt);
        }
    }
    co_return rows;
}

}  // namespace datavor::connectors::mariadb
