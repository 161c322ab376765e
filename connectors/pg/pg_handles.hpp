#pragma once
// RAII owners for libpq handles. Private to the pg connector: nothing outside
// connectors/pg includes libpq-fe.h.
#include <libpq-fe.h>

#include <memory>

namespace datavor::connectors::pg {

struct pg_conn_deleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct pg_result_deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using pg_conn_ptr = std::unique_ptr<PGconn, pg_conn_deleter>;
using pg_result_ptr = std::unique_ptr<PGresult, pg_result_deleter>;

}  // namespace datavor::connectors::pg
