#include "server/composition.hpp"

#include "connectors/mariadb/mariadb_prober.hpp"
#include "connectors/pg/pg_prober.hpp"
#include "connectors/sqlite/sqlite_prober.hpp"
#include "engines/context/context_store.hpp"
#include "engines/context/secret_store.hpp"

#ifndef DATAVOR_VERSION
#define DATAVOR_VERSION "0.0.0"
#endif

namespace datavor::server {

struct application::parts {
    explicit parts(const std::filesystem::path& home) : context(home), secrets(home) {}
    engines::context::context_store context;
    engines::context::secret_store secrets;
    connectors::pg::pg_prober pg;
    connectors::mariadb::mariadb_prober mariadb;
    connectors::sqlite::sqlite_prober sqlite;
};

application::application(const std::filesystem::path& home)
    : home_(home), parts_(std::make_unique<parts>(home)) {}
application::~application() = default;

connection_deps application::connections() {
    return connection_deps{parts_->context,
                           parts_->secrets,
                           {{connectors::db_kind::postgresql, &parts_->pg},
                            {connectors::db_kind::mariadb, &parts_->mariadb},
                            {connectors::db_kind::sqlite, &parts_->sqlite}}};
}

void application::register_product(mcp_server& server) { register_connection_tools(server, connections()); }

server_info product_info() {
    server_info i;
    i.name = "datavor";
    i.title = "Datavor change data capture";
    i.version = DATAVOR_VERSION;
    i.instructions =
        "Datavor streams changes from PostgreSQL and MariaDB/MySQL into other databases. Start with "
        "list_connections; add databases with add_connection (passwords are stored locally and never shown); "
        "check a source with test_connection, which returns the exact SQL that fixes each missing prerequisite.";
    return i;
}

}  // namespace datavor::server
