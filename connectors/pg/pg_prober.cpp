#include "connectors/pg/pg_prober.hpp"

#include "connectors/common/sql_quote.hpp"
#include "connectors/pg/pg_error.hpp"
#include "connectors/pg/pg_session.hpp"

#include <boost/asio/use_awaitable.hpp>

#include <optional>

namespace asio = boost::asio;

namespace datavor::connectors::pg {
namespace {

bool is_loopback(const std::string& host) {
    return host == "localhost" || host == "::1" || host.starts_with("127.") || host.starts_with("/");
}

std::string value(PGresult* r, int row, int col) {
    return PQgetisnull(r, row, col) ? std::string{} : std::string(PQgetvalue(r, row, col));
}
bool truthy(PGresult* r, int row, int col) { return value(r, row, col) == "t"; }

constexpr const char* settings_sql = R"sql(
SELECT current_setting('server_version_num')::int,
       current_setting('server_version'),
       current_setting('wal_level'),
       current_setting('max_replication_slots')::int,
       (SELECT count(*) FROM pg_replication_slots),
       current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'),
       current_setting('max_slot_wal_keep_size'),
       r.rolreplication, r.rolsuper, current_user, current_database(),
       has_database_privilege(current_database(), 'CREATE'),
       (SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()),
       (SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid())
FROM pg_roles r WHERE r.rolname = current_user)sql";

constexpr const char* table_sql = R"sql(
SELECT n.nspname, c.relname,
       has_table_privilege(c.oid, 'SELECT'),
       pg_has_role(c.relowner, 'USAGE'),
       c.relreplident,
       EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary),
       has_schema_privilege(n.oid, 'USAGE')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1))sql";

}  // namespace

std::map<std::string, std::string> libpq_options(const connection_spec& spec,
                                                 const std::optional<std::string>& password) {
    std::map<std::string, std::string> o;
    for (const auto& [k, v] : spec.params) o[k] = v;
    if (!spec.host.empty()) o["host"] = spec.host;
    if (spec.port) o["port"] = std::to_string(spec.port);
    if (!spec.user.empty()) o["user"] = spec.user;
    if (!spec.database.empty()) o["dbname"] = spec.database;
    if (password) o["password"] = *password;
    o.emplace("application_name", "datavor");
    return o;
}

asio::awaitable<probe_report> pg_prober::run_checks(probe_request req, probe_progress progress) {
    probe_report rep;
    check_recorder add(rep, std::move(progress));
    const auto& spec = req.spec;

    std::optional<pg_session> session;
    std::string connect_error;
    try {
        session.emplace(co_await pg_session::connect(libpq_options(spec, req.password), req.timeout));
    } catch (const pg_error& e) {
        connect_error = e.what();
    }
    if (!session) {
        add("reachable", "Server is reachable and accepts the credentials", check_status::fail, connect_error,
                "Check host, port and database in the URL, that the server listens on that address "
                "(listen_addresses), that pg_hba.conf has a line for this client (e.g. `host " +
                    (spec.database.empty() ? std::string("all") : spec.database) + " " +
                    (spec.user.empty() ? std::string("all") : spec.user) +
                    " <client-ip>/32 scram-sha-256` plus a `replication` line), and that the password source is right.");
        co_return rep;
    }
    add("reachable", "Server is reachable and accepts the credentials", check_status::pass,
            "connected to " + spec.host + (spec.port ? ":" + std::to_string(spec.port) : std::string{}));

    auto res = co_await session->query(settings_sql);
    PGresult* r = res.get();
    if (PQntuples(r) != 1) {
        add("role", "Current role is visible in pg_roles", check_status::fail, "pg_roles has no row for current_user",
                "Connect as a role that exists.");
        co_return rep;
    }
    const int version_num = std::stoi(value(r, 0, 0));
    rep.server_version = value(r, 0, 1);
    const std::string wal_level = value(r, 0, 2);
    const int slots_max = std::stoi(value(r, 0, 3)), slots_used = std::stoi(value(r, 0, 4));
    const int senders_max = std::stoi(value(r, 0, 5)), senders_used = std::stoi(value(r, 0, 6));
    const std::string keep_size = value(r, 0, 7);
    const bool rolreplication = truthy(r, 0, 8), rolsuper = truthy(r, 0, 9);
    const std::string role = value(r, 0, 10), database = value(r, 0, 11);
    const bool can_create_in_db = truthy(r, 0, 12);
    const bool ssl = truthy(r, 0, 13) || session->tls_in_use();
    const std::string ssl_version = value(r, 0, 14);
    const std::string qrole = quote_pg_ident(role);

    // TLS
    const std::string tls_fix =
        "On the server set `ssl = on` with a certificate (ALTER SYSTEM SET ssl = on; SELECT pg_reload_conf();), "
        "then add `?sslmode=verify-full&sslrootcert=/path/to/ca.pem` to the connection URL.";
    if (ssl) {
        add("tls", "Connection is encrypted (TLS)", check_status::pass, "TLS in use (" + ssl_version + ")");
    } else if (is_loopback(spec.host)) {
        add("tls", "Connection is encrypted (TLS)", check_status::warn,
                "not encrypted; acceptable on loopback only", tls_fix);
    } else {
        add("tls", "Connection is encrypted (TLS)", check_status::fail,
                "not encrypted over the network: credentials and data travel in clear", tls_fix);
    }

    // Version
    if (version_num >= 140000) {
        add("version", "PostgreSQL 14 or later (pgoutput protocol 2, streaming)", check_status::pass,
                "PostgreSQL " + rep.server_version);
    } else if (version_num >= 100000) {
        add("version", "PostgreSQL 14 or later (pgoutput protocol 2, streaming)", check_status::warn,
                "PostgreSQL " + rep.server_version + ": large transactions are buffered whole before they are sent",
                "Upgrade to PostgreSQL 14 or later to stream large transactions in chunks.");
    } else {
        add("version", "PostgreSQL 14 or later (pgoutput protocol 2, streaming)", check_status::fail,
                "PostgreSQL " + rep.server_version + " has no pgoutput logical decoding",
                "Upgrade to PostgreSQL 10 or later (14+ recommended).");
    }

    // wal_level
    add("wal_level", "wal_level = logical", wal_level == "logical" ? check_status::pass : check_status::fail,
            "wal_level is " + wal_level, "ALTER SYSTEM SET wal_level = logical; -- then restart PostgreSQL");

    // Slots and senders
    const int slots_free = slots_max - slots_used;
    add("replication_slots", "A free replication slot (max_replication_slots)",
            slots_free > 0 ? check_status::pass : check_status::fail,
            std::to_string(slots_used) + " of " + std::to_string(slots_max) + " slots in use",
            "ALTER SYSTEM SET max_replication_slots = " + std::to_string(slots_used + 4) +
                "; -- then restart PostgreSQL (or drop an unused slot: SELECT pg_drop_replication_slot('name');)");
    const int senders_free = senders_max - senders_used;
    add("wal_senders", "A free WAL sender (max_wal_senders)", senders_free > 0 ? check_status::pass : check_status::fail,
            std::to_string(senders_used) + " of " + std::to_string(senders_max) + " WAL senders in use",
            "ALTER SYSTEM SET max_wal_senders = " + std::to_string(senders_used + 4) + "; -- then restart PostgreSQL");

    // REPLICATION attribute
    if (rolreplication || rolsuper) {
        add("replication_role", "Role has the REPLICATION attribute", check_status::pass,
                "role " + role + (rolsuper ? " is a superuser" : " has REPLICATION") +
                    (rolsuper ? " (least privilege: a dedicated role with REPLICATION is enough)" : ""));
    } else {
        add("replication_role", "Role has the REPLICATION attribute", check_status::fail,
                "role " + role + " lacks the REPLICATION attribute, so it cannot create a replication slot",
                "ALTER ROLE " + qrole + " REPLICATION;");
    }

    // Tables: SELECT, publication rights, replica identity.
    bool all_owned = true;
    std::vector<std::string> quoted_tables, missing, no_select, no_identity;
    std::string select_fix, identity_fix;
    for (const auto& t : req.tables) {
        auto qn = split_qualified(t, "public");
        std::string regclass = quote_pg_ident(qn.schema) + "." + quote_pg_ident(qn.name);
        pg_params params;  // not a braced list inside co_await: GCC 12 miscompiles that
        params.emplace_back(regclass);
        auto tr = co_await session->query(table_sql, std::move(params));
        if (PQntuples(tr.get()) != 1) {
            missing.push_back(t);
            continue;
        }
        std::string qualified = quote_pg_ident(value(tr.get(), 0, 0)) + "." + quote_pg_ident(value(tr.get(), 0, 1));
        quoted_tables.push_back(qualified);
        if (!truthy(tr.get(), 0, 2)) {
            no_select.push_back(t);
            if (!truthy(tr.get(), 0, 6))
                select_fix += "GRANT USAGE ON SCHEMA " + quote_pg_ident(value(tr.get(), 0, 0)) + " TO " + qrole + "; ";
            select_fix += "GRANT SELECT ON TABLE " + qualified + " TO " + qrole + "; ";
        }
        if (!truthy(tr.get(), 0, 3)) all_owned = false;
        const std::string replident = value(tr.get(), 0, 4);
        const bool has_pk = truthy(tr.get(), 0, 5);
        if (replident == "n" || (replident == "d" && !has_pk)) {
            no_identity.push_back(t);
            identity_fix += "ALTER TABLE " + qualified + " REPLICA IDENTITY FULL; ";
        }
    }
    if (req.tables.empty()) {
        add("tables_exist", "Tables exist", check_status::skip, "no tables named; pass tables to check them");
        add("select_privilege", "SELECT on the tables (initial snapshot)", check_status::skip, "no tables named");
        add("publication", "May create a publication for the tables", check_status::skip, "no tables named");
    } else {
        auto join = [](const std::vector<std::string>& v) {
            std::string s;
            for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
            return s;
        };
        add("tables_exist", "Tables exist", missing.empty() ? check_status::pass : check_status::fail,
                missing.empty() ? "all " + std::to_string(req.tables.size()) + " tables found"
                                : "not found: " + join(missing),
                "Check the table names (schema.table); create the tables or remove them from the list.");
        add("select_privilege", "SELECT on the tables (initial snapshot)",
                no_select.empty() ? check_status::pass : check_status::fail,
                no_select.empty() ? "SELECT granted" : "no SELECT on: " + join(no_select), select_fix);
        std::string pub_detail;
        bool can_publish = rolsuper || (can_create_in_db && all_owned);
        if (rolsuper) pub_detail = "superuser";
        else if (can_publish) pub_detail = "role owns the tables and has CREATE on the database";
        else if (!can_create_in_db) pub_detail = "role lacks CREATE on database " + database;
        else pub_detail = "role does not own every table (CREATE PUBLICATION … FOR TABLE needs ownership)";
        std::string pub_fix;
        if (!can_create_in_db) pub_fix += "GRANT CREATE ON DATABASE " + quote_pg_ident(database) + " TO " + qrole + "; ";
        if (!all_owned || !can_create_in_db) {
            pub_fix += "Or, least privilege: have the tables' owner run CREATE PUBLICATION " +
                       quote_pg_ident("datavor_pub") + " FOR TABLE " + join(quoted_tables) +
                       "; and give the stream that publication name.";
        }
        add("publication", "May create a publication for the tables",
                can_publish ? check_status::pass : check_status::fail, pub_detail, pub_fix);
        if (!no_identity.empty())
            add("replica_identity", "Each table has a primary key or REPLICA IDENTITY FULL", check_status::fail,
                    "no primary key and no replica identity: updates and deletes cannot be identified on " +
                        join(no_identity),
                    identity_fix + "-- or add a primary key");
        else
            add("replica_identity", "Each table has a primary key or REPLICA IDENTITY FULL", check_status::pass,
                    "every table can identify its rows");
    }

    // WAL retention guard
    if (keep_size == "-1") {
        add("max_slot_wal_keep_size", "WAL retained by a stalled slot is bounded (max_slot_wal_keep_size)",
                check_status::warn, "max_slot_wal_keep_size = -1: a stopped stream can fill the source's disk",
                "ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf();");
    } else {
        add("max_slot_wal_keep_size", "WAL retained by a stalled slot is bounded (max_slot_wal_keep_size)",
                check_status::pass, "max_slot_wal_keep_size = " + keep_size);
    }
    co_return rep;
}

}  // namespace datavor::connectors::pg
